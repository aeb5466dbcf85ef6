"""Storing labels beside the worker's other writers on PostgreSQL: no transaction waits for a shipment lock
while holding another shipment's, so none is aborted as a deadlock (SQLite has one writer at a time).

The lockers here stand for a webhook batch or a wave of carrier events, which lock their shipments in id
order. A label write holding the second shipment while it waits for the first closes a circle with them, and
PostgreSQL aborts one of the two."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from labels_app_support import create, mark_ordered
from sqlalchemy import select, text

from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.domain.events import lock_shipments
from logistics.domain.tables import label_renders, shipments
from logistics.label_store import ensure_printed_at, get_rendered_many
from logistics.storage.db import Database

WAYBILLS = ("1295780512503", "1295780512517")


@pytest.fixture(autouse=True)
def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite runs one write transaction at a time")


async def _two_ordered(api: TestClient, db: Database, hall: Credentials) -> list[dict[str, Any]]:
    """Two ordered shipments, by id. The first is ordered last, so its row version lies after the second's in
    the table: a plan that reads the table in its physical order meets them second-first."""
    ids = sorted([(await create(api, hall))["id"] for _ in WAYBILLS])
    await mark_ordered(db, ids[1], WAYBILLS[1])
    await mark_ordered(db, ids[0], WAYBILLS[0])
    async with db.read() as conn:
        rows = await conn.execute(select(shipments).where(shipments.c.id.in_(ids)).order_by(shipments.c.id))
        return [dict(r._mapping) for r in rows]


async def _waiting_or_done(db: Database, write: asyncio.Task[Any]) -> None:
    """Until ``write`` has finished or some session of this database waits for a row lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    while not write.done():
        async with db.read() as conn:
            if (await conn.execute(waiting)).scalar_one():
                return
        await asyncio.sleep(0.01)  # a lock wait announces itself nowhere but in pg_stat_activity


async def _beside_lockers(db: Database, first: str, second: str, write: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``write`` while a transaction locks ``first``, then ``second``; returns what ``write`` returned."""
    async with db.write() as conn:
        await lock_shipments(conn, [first])
        running = asyncio.create_task(write())
        await _waiting_or_done(db, running)
        # Bounded: a write that holds ``second`` makes this wait until PostgreSQL breaks the circle.
        await asyncio.wait_for(lock_shipments(conn, [second]), 30)
    return await running


async def test_storing_labels_waits_for_no_shipment_lock(
    api: TestClient, db: Database, hall: Credentials, settings: Settings
) -> None:
    # A label row's foreign key takes a key-share lock on its shipment. Under FOR UPDATE that waited for the
    # shipment's locker, and a claim's labels, stored second first, held the second while waiting for the first.
    first, second = await _two_ordered(api, db, hall)
    await ensure_printed_at(db, [first, second])

    async with db.write() as conn:
        await lock_shipments(conn, [first["id"], second["id"]])  # as a webhook batch or a wave of events does
        # Bounded: a write that waits for these locks would wait for this transaction, which waits for it.
        rendered = await asyncio.wait_for(get_rendered_many(db, settings, [second, first]), 30)

    assert sorted(rendered) == [first["id"], second["id"]]
    async with db.read() as conn:
        stored = await conn.execute(select(label_renders.c.shipment_id).order_by(label_renders.c.shipment_id))
        assert list(stored.scalars()) == [first["id"], second["id"]]


async def test_first_print_times_are_stored_taking_the_shipments_in_id_order(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    # One UPDATE for many shipments locks them in the order its plan meets them: here second first.
    first, second = await _two_ordered(api, db, hall)
    rows = [second, first]

    await _beside_lockers(db, first["id"], second["id"], lambda: ensure_printed_at(db, rows))

    assert rows[0]["label_printed_at"] is not None
    assert rows[0]["label_printed_at"] == rows[1]["label_printed_at"]
