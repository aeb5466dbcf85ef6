"""Tasks and the transactions of other tasks on PostgreSQL: a task that lost a lock conflict runs again at once,
and renewing leases never waits for a row another transaction holds (SQLite has one writer at a time; its
"database is locked" is covered with the driver in tests/test_sqlite_driver.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.domain.tables import outbox, utcnow
from logistics.jobs.runner import BATCH_HANDLERS, HANDLERS, Runtime, process_due
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database, is_lock_conflict
from logistics.storage.outbox import Task, claim_due, insert_tasks, renew_leases, task_row

SHIPMENT_ID = "shp_01JDX4M8Q0ZB6N5YJ2W3T7K9RA"
# A webhook task that has waited out many retries of its deliveries: each counts as an attempt.
ATTEMPTS_SO_FAR = 12


@pytest.fixture(autouse=True)
def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite runs one write transaction at a time")


async def _touch_client(rt: Runtime, client_id: str) -> None:
    """What a handler's transaction does when another one holds the row it needs: NOWAIT turns the wait into the
    error a deadlock victim or a lock timeout gets (another SQLSTATE of the same family)."""
    async with rt.db.write() as conn:
        await conn.execute(text("SELECT id FROM clients WHERE id = :id FOR UPDATE NOWAIT"), {"id": client_id})


@pytest.mark.parametrize("handler_kind", ["single", "batch"])
async def test_a_task_that_lost_a_lock_conflict_runs_again_within_a_second(
    db: Database, settings: Settings, hall: Credentials, monkeypatch: pytest.MonkeyPatch, handler_kind: str
) -> None:
    # Backed off by its attempts like any failure, a webhook task waited up to five minutes for a conflict
    # that was over in milliseconds: CI's chaos run timed out draining the webhooks.
    async def one(rt: Runtime, task: Task) -> None:
        await _touch_client(rt, hall.id)

    async def many(rt: Runtime, tasks: list[Task]) -> None:
        await _touch_client(rt, hall.id)

    if handler_kind == "single":
        monkeypatch.setitem(HANDLERS, "client_report", one)
    else:
        monkeypatch.setitem(BATCH_HANDLERS, "client_report", many)
    async with db.write() as conn:
        await insert_tasks(conn, [task_row("client_report", SHIPMENT_ID, due_at=utcnow() - timedelta(seconds=1))])
        await conn.execute(update(outbox).values(attempts=ATTEMPTS_SO_FAR))

    async with db.write() as holder:
        await holder.execute(text("SELECT id FROM clients WHERE id = :id FOR UPDATE"), {"id": hall.id})
        before = utcnow()
        assert await process_due(Runtime(settings=settings, db=db, signal=WorkSignal(None))) == 1

    async with db.read() as conn:
        stored = await conn.execute(select(outbox.c.due_at, outbox.c.attempts, outbox.c.last_error))
        due_at, attempts, error = stored.one()
    assert before < due_at <= utcnow() + timedelta(seconds=1)
    assert attempts == ATTEMPTS_SO_FAR + 1 and "could not obtain lock" in error


async def test_a_lock_conflict_is_told_apart_from_other_database_errors(
    db: Database, settings: Settings, hall: Credentials
) -> None:
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    async with db.write() as holder:
        await holder.execute(text("SELECT id FROM clients WHERE id = :id FOR UPDATE"), {"id": hall.id})
        with pytest.raises(Exception) as conflict:
            await _touch_client(rt, hall.id)
    with pytest.raises(Exception) as broken:  # a constraint broken: trying again at once changes nothing
        async with db.write() as conn:
            await conn.execute(text("UPDATE clients SET id = NULL WHERE id = :id"), {"id": hall.id})
    assert is_lock_conflict(conflict.value)
    assert not is_lock_conflict(broken.value)


async def test_renewing_leases_skips_a_task_another_transaction_holds_and_renews_the_rest(db: Database) -> None:
    # The handler finishing a task, or a transaction making a shipment's webhook task due sooner, holds its row:
    # a renewal waiting for it while holding the claim's other rows could close a circle with that transaction.
    now = utcnow()
    async with db.write() as conn:
        await insert_tasks(conn, [task_row("webhook", f"{SHIPMENT_ID}{i}", due_at=now) for i in range(2)])
    held, free = await claim_due(db, limit=2, lease_seconds=30, now=now)
    until = now + timedelta(minutes=10)

    async with db.write() as holder:
        await holder.execute(select(outbox.c.id).where(outbox.c.id == held.id).with_for_update())
        async with db.write() as conn:
            # Bounded: a renewal that waits for the holder would wait for this test, which waits for it.
            await asyncio.wait_for(renew_leases(conn, [held, free], until), 30)

    async with db.read() as conn:
        leases = {r.id: r.lease_until for r in await conn.execute(select(outbox.c.id, outbox.c.lease_until))}
    assert leases[free.id] == until
    assert leases[held.id] == now + timedelta(seconds=30)  # left for the next renewal, a third of a lease later
