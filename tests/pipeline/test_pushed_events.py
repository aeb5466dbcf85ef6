"""Pushed carrier events are applied a claim at a time; one that cannot be applied holds back only itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, select, text

from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import outbox, shipments, utcnow
from logistics.jobs import carrier as handlers
from logistics.jobs.runner import Runtime, lanes_idle, process_due
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database
from logistics.storage.outbox import claim_due, insert_tasks, task_row

from support import auth, delivery_body

WAYBILLS = ("1151263808012", "1151263808026")


async def _ordered(api: TestClient, db: Database, creds: Credentials, waybill: str) -> str:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    shipment_id = (await resp.json())["id"]
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        assert row is not None
        await apply_event(conn, row, status="ordered", source="system", updates={"waybill_no": waybill})
    return str(shipment_id)


def _pushed(waybill: str, code: str, name: str, status: str, minutes: int) -> dict[str, Any]:
    return {
        "waybill_no": waybill,
        "order_no": None,
        "code": code,
        "name": name,
        "description": f"【郑州市上街区揽投部】{name}",
        "occurred_at": (utcnow() - timedelta(minutes=60 - minutes)).isoformat(),
        "status": status,
        "location": "河南省郑州市上街区",
        "reason_code": None,
        "source": "carrier_push",
    }


async def _apply_pushed(rt: Runtime) -> None:
    await process_due(rt)  # wakes the lane that pushed events have to themselves
    await lanes_idle(rt)


async def _statuses(db: Database, ids: list[str]) -> list[str]:
    async with db.read() as conn:
        rows = dict((await conn.execute(select(shipments.c.id, shipments.c.status))).all())
    return [rows[i] for i in ids]


async def _outbox(db: Database) -> list[tuple[str, str | None]]:
    async with db.read() as conn:
        return [tuple(r) for r in (await conn.execute(select(outbox.c.kind, outbox.c.last_error))).all()]


async def test_events_pushed_for_several_shipments_are_all_applied_in_time_order(
    api: TestClient, db: Database, hall: Credentials, settings: Settings
) -> None:
    ids = [await _ordered(api, db, hall, waybill) for waybill in WAYBILLS]
    first, second = WAYBILLS
    events = [  # the later event first, as reordered pushes arrive
        _pushed(first, "954", "到达处理中心", "in_transit", 20),
        _pushed(first, "203", "收寄", "picked_up", 10),
        _pushed(second, "203", "收寄", "picked_up", 12),
    ]
    async with db.write() as conn:
        await insert_tasks(conn, [task_row("carrier_event", None, e) for e in events])
    await _apply_pushed(Runtime(settings=settings, db=db, signal=WorkSignal(None)))
    assert await _statuses(db, ids) == ["in_transit", "picked_up"]
    assert [kind for kind, _ in await _outbox(db) if kind == "carrier_event"] == []


async def test_an_event_that_cannot_be_applied_is_retried_alone(
    api: TestClient, db: Database, hall: Credentials, settings: Settings
) -> None:
    ids = [await _ordered(api, db, hall, waybill) for waybill in WAYBILLS]
    broken = _pushed(WAYBILLS[0], "203", "收寄", "picked_up", 10)
    del broken["occurred_at"]  # no time: it cannot be placed in the history
    good = _pushed(WAYBILLS[1], "203", "收寄", "picked_up", 12)
    async with db.write() as conn:
        await insert_tasks(conn, [task_row("carrier_event", None, broken), task_row("carrier_event", None, good)])
    await _apply_pushed(Runtime(settings=settings, db=db, signal=WorkSignal(None)))
    assert await _statuses(db, ids) == ["ordered", "picked_up"]
    left = [(kind, error) for kind, error in await _outbox(db) if kind == "carrier_event"]
    assert len(left) == 1 and "KeyError" in str(left[0][1])


async def test_two_workers_applying_the_same_parcels_in_opposite_orders_do_not_deadlock(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    # Each transaction meets the parcels in the opposite time order. Locking them in that order, each held one
    # parcel while it waited for the other's, and PostgreSQL aborted one as a deadlock (SQLite has one writer).
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite runs one write transaction at a time")
    ids = [await _ordered(api, db, hall, waybill) for waybill in WAYBILLS]
    first, second = WAYBILLS
    one = [_pushed(first, "203", "收寄", "picked_up", 10), _pushed(second, "954", "到达处理中心", "in_transit", 20)]
    other = [_pushed(second, "203", "收寄", "picked_up", 11), _pushed(first, "954", "到达处理中心", "in_transit", 21)]
    both_open = asyncio.Barrier(2)

    async def apply(events: list[dict[str, Any]]) -> dict[str, int]:
        async with db.write() as conn:
            await conn.execute(text("SELECT 1"))
            await both_open.wait()  # both transactions under way before either locks anything
            return await handlers.apply_carrier_events(conn, events, source="carrier_push")

    assert await asyncio.gather(apply(one), apply(other)) == [{ids[0]: 1, ids[1]: 1}] * 2
    assert await _statuses(db, ids) == ["in_transit", "in_transit"]


async def test_a_claim_of_pushes_is_applied_a_few_shipments_per_transaction(
    api: TestClient, db: Database, hall: Credentials, settings: Settings
) -> None:
    # One transaction per claim held the row locks of up to 200 shipments while its events were applied one by
    # one; every other worker's work on those shipments waited behind it.
    waybills = [f"11512638{n:05d}" for n in range(handlers.PUSH_TRANSACTION + 5)]
    ids = [await _ordered(api, db, hall, waybill) for waybill in waybills]
    async with db.write() as conn:
        rows = [task_row("carrier_event", None, _pushed(w, "203", "收寄", "picked_up", 10)) for w in waybills]
        await insert_tasks(conn, rows)
    tasks = await claim_due(db, limit=handlers.PUSH_CHUNK, lease_seconds=60, kinds=("carrier_event",))
    commits: list[int] = []
    engine = db._write_engine.sync_engine
    listener = lambda conn: commits.append(id(conn))  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        await handlers.carrier_event_batch(Runtime(settings=settings, db=db, signal=WorkSignal(None)), tasks)
    finally:
        event.remove(engine, "commit", listener)
    assert len(tasks) == len(waybills)
    assert len(commits) == 2  # 30 events: a transaction of 25, then one of 5
    assert await _statuses(db, ids) == ["picked_up"] * len(ids)
