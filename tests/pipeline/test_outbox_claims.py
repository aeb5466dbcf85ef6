"""Which due tasks a claim takes: carrier work first, but low-priority work is never starved."""

from __future__ import annotations

from datetime import timedelta

from logistics.db import Database
from logistics.models import utcnow
from logistics.outbox import claim_due, insert_tasks, retry_later, task_row


async def _queue(db: Database, kind: str, count: int, *, waited: float) -> None:
    due = utcnow() - timedelta(seconds=waited)
    async with db.write() as conn:
        await insert_tasks(conn, [task_row(kind, f"shp_{kind}_{i}", due_at=due) for i in range(count)])


async def test_carrier_work_is_claimed_before_labels(db: Database) -> None:
    await _queue(db, "label", 10, waited=1)
    await _queue(db, "order", 3, waited=1)
    claimed = await claim_due(db, limit=4, lease_seconds=30)
    assert [t.kind for t in claimed].count("order") == 3


async def test_labels_that_waited_longest_are_claimed_while_webhooks_keep_coming(db: Database) -> None:
    # Found by the chaos run: with a batch's worth of webhook work always due, strict priority never reached
    # the label tasks queued long before.
    await _queue(db, "label", 5, waited=120)
    await _queue(db, "webhook", 20, waited=1)
    claimed = await claim_due(db, limit=8, lease_seconds=30)
    kinds = [t.kind for t in claimed]
    assert len(claimed) == 8 and len({t.id for t in claimed}) == 8
    assert kinds.count("webhook") == 6 and kinds.count("label") == 2
    again = await claim_due(db, limit=8, lease_seconds=30)
    assert not {t.id for t in again} & {t.id for t in claimed}  # a claimed task is leased, never handed out twice


async def test_a_claim_lost_to_a_killed_worker_does_not_count_as_an_attempt(db: Database) -> None:
    # Found by the chaos run: counting claims let SIGKILLs push an order that had failed once into the longest
    # backoff. Here the first two leases simply run out, as when the worker holding them is killed.
    await _queue(db, "order", 1, waited=1)
    now = utcnow()
    for lost in range(2):
        (task,) = await claim_due(db, limit=1, lease_seconds=30, now=now + timedelta(minutes=lost))
        assert task.attempts == 1
    (task,) = await claim_due(db, limit=1, lease_seconds=30, now=now + timedelta(minutes=2))
    async with db.write() as conn:
        assert await retry_later(conn, task, now, "S0001 系统繁忙")
    (task,) = await claim_due(db, limit=1, lease_seconds=30, now=now + timedelta(minutes=3))
    assert task.attempts == 2
