"""What the console's lists count: a parcel is "picked up today" on the day it was first handed to the post, and
a parcel that came back waits in the exception queue only until the hall decides (resent or resolved); on
PostgreSQL the queue finds those through their own index, not through the department's decided returns."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from console_support import MARKET, TAX, create, explain, move
from sqlalchemy import event, text, update

from logistics.accounts import clients
from logistics.console import exceptions, queries
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import shipments, utcnow
from logistics.storage.db import Database

LIMITS = exceptions.Limits(awaiting_days=3, pickup_hours=24, warn_days=2)


async def _returned(api: TestClient, db: Database, hall: clients.Credentials, waybill: str, **body: str) -> str:
    made = await create(api, hall, **body)
    await move(db, made["id"], "ordered", "picked_up", "returning", "returned", waybill=waybill)
    return str(made["id"])


async def _captured(db: Database, marker: str, call: Awaitable[object]) -> tuple[str, object]:
    """The one statement containing ``marker`` that ``call`` runs, with its parameters."""
    captured: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await call
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    [found] = [c for c in captured if marker in c[0]]
    return found


async def test_a_parcel_is_picked_up_today_only_when_it_was_first_handed_over_today(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    yesterday = (await create(api, hall))["id"]
    await move(db, yesterday, "ordered", waybill="1151263812345")
    await move(db, yesterday, "picked_up", occurred_at=utcnow() - timedelta(days=1))
    await move(db, yesterday, "picked_up")  # scanned again today
    today = (await create(api, hall))["id"]
    await move(db, today, "ordered", "picked_up", waybill="1151263812346")
    windows = await queries.today(db, MARKET, beijing_today(utcnow()))
    listed = [row["id"] for day in windows.values() for row in day.sections["picked_up"]]
    assert listed == [today]


async def test_returns_waiting_for_a_decision_are_chased_and_decided_ones_are_not(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    waiting = await _returned(api, db, hall, "1151263812345")
    resolved = await _returned(api, db, hall, "1151263812346")
    resent = await _returned(api, db, hall, "1151263812347")
    elsewhere = await _returned(api, db, hall, "1151263812348", department=TAX)
    async with db.write() as conn:
        await conn.execute(
            update(shipments).where(shipments.c.id == resolved).values(resolution={"action": "window_pickup"})
        )
        await conn.execute(update(shipments).where(shipments.c.id == resent).values(resent_as=waiting))
    chased = await exceptions.to_chase(db, [MARKET], utcnow(), LIMITS)
    assert [(c.rule.code, c.shipment["id"]) for c in chased] == [("returned", waiting)]
    assert [c.shipment["id"] for c in await exceptions.to_chase(db, [TAX], utcnow(), LIMITS)] == [elsewhere]


async def test_postgresql_finds_the_undecided_returns_through_their_index(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite reads a department's returns by status: the index and its statistics are PostgreSQL's")
    for n in range(3):
        await _returned(api, db, hall, f"115126381230{n}")
    decided = [await _returned(api, db, hall, f"115126381231{n}") for n in range(6)]
    async with db.write() as conn:
        await conn.execute(
            update(shipments).where(shipments.c.id.in_(decided)).values(resolution={"action": "closed"})
        )
    async with db.write() as conn:
        await conn.execute(text("ANALYZE shipments"))  # the statistics on the expression, as 0021 leaves them
    statement, parameters = await _captured(db, "AS chase", exceptions.to_chase(db, [MARKET], utcnow(), LIMITS))
    plan = await explain(db, statement, parameters)
    assert "ix_shipments_undecided" in plan, plan


async def test_todays_pickups_and_deliveries_are_read_from_what_moved_today(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    """Not from every parcel of a status in the department's history (its delivered parcels are most of it), with
    SQLite's statistics those of a department's year (benchmarks/seed.py, 200,000 shipments)."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL plans by statistics a test's few rows cannot give: its plan is in benchmarks/REPORT.md")
    made = await create(api, hall)
    await move(db, made["id"], "ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")
    async with db.write() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.execute(text("DELETE FROM sqlite_stat1 WHERE tbl = 'shipments'"))
        await conn.execute(
            text(
                "INSERT INTO sqlite_stat1 VALUES ('shipments', 'ix_shipments_department_moved', '192844 6429 1'),"
                " ('shipments', 'ix_shipments_status_department', '200000 16667 629 1')"
            )
        )
        await conn.execute(text("ANALYZE sqlite_schema"))  # the planner reads the statistics again
    statement, parameters = await _captured(db, "AS today", queries.today(db, MARKET, beijing_today(utcnow())))
    plan = await explain(db, statement, parameters)
    assert plan.count("ix_shipments_department_moved") == 2, plan
