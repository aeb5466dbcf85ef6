"""Which due tasks a claim takes: carrier work first, but low-priority work is never starved."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from logistics.config import Settings
from logistics.domain.tables import utcnow
from logistics.jobs import carrier as handlers  # noqa: F401  (puts pushed carrier events in a lane of their own)
from logistics.jobs.runner import HANDLERS, LANES, Runtime, process_due
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database
from logistics.storage.outbox import Task, claim_due, finish, insert_tasks, renew_leases, retry_later, task_row


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


@pytest.fixture
def slow_reports(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A task kind "slow_report" whose handler sets the first event when it starts and finishes its task once
    the second is set."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(rt: Runtime, task: Task) -> None:
        started.set()
        await release.wait()
        async with rt.db.write() as conn:
            await finish(conn, task)

    monkeypatch.setitem(HANDLERS, "slow_report", slow)
    return started, release


async def test_renewing_a_lease_keeps_a_task_from_the_next_claim(db: Database) -> None:
    await _queue(db, "order", 2, waited=1)
    now = utcnow()
    kept, finished = await claim_due(db, limit=2, lease_seconds=30, now=now)
    async with db.write() as conn:
        assert await finish(conn, finished)
        await renew_leases(conn, [kept, finished], now + timedelta(minutes=10))
    assert await claim_due(db, limit=2, lease_seconds=30, now=now + timedelta(minutes=5)) == []
    (again,) = await claim_due(db, limit=2, lease_seconds=30, now=now + timedelta(minutes=11))
    assert again.id == kept.id  # the finished task stays finished: renewing never brings a task back


async def test_a_task_that_runs_longer_than_its_lease_is_not_claimed_by_another_worker(
    db: Database, settings: Settings, slow_reports: tuple[asyncio.Event, asyncio.Event]
) -> None:
    # Found by the chaos run: with a 10 s lease, busy workers' claims ran out while they still worked on them.
    started, release = slow_reports
    settings.lease_seconds = 0.3
    await _queue(db, "slow_report", 1, waited=1)
    running = asyncio.create_task(process_due(Runtime(settings=settings, db=db, signal=WorkSignal(None))))
    await started.wait()
    await asyncio.sleep(1.0)  # the point of the test: time passes, three leases' worth
    assert await claim_due(db, limit=10, lease_seconds=30) == []
    release.set()
    assert await running == 1


async def test_webhooks_are_claimed_while_pushed_events_keep_coming(db: Database) -> None:
    # Found by the chaos run: pushes, as urgent as orders and many times more numerous, filled every claim and
    # 10 webhooks went out in 20 minutes. They now have a lane of their own, which the shared claims skip.
    await _queue(db, "carrier_event", 500, waited=60)
    await _queue(db, "webhook", 5, waited=1)
    claimed = await claim_due(db, limit=200, lease_seconds=30, exclude=tuple(LANES))
    assert [t.kind for t in claimed] == ["webhook"] * 5
    assert len(await claim_due(db, limit=200, lease_seconds=30, kinds=("carrier_event",))) == 200


async def test_a_wake_up_while_the_claim_loops_are_busy_leaves_the_work_to_them(
    db: Database, settings: Settings, slow_reports: tuple[asyncio.Event, asyncio.Event]
) -> None:
    # Found by the chaos run: every wake-up started a claim loop of its own, and one worker ran dozens of
    # 200-task claims at once, none finishing within its job timeout.
    started, release = slow_reports
    settings.worker_claim_loops = 1
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    await _queue(db, "slow_report", 1, waited=1)
    busy = asyncio.create_task(process_due(rt))
    await started.wait()
    await _queue(db, "slow_report", 1, waited=1)
    assert await asyncio.wait_for(process_due(rt), 5) == 0  # at once: the running loop takes the new task
    release.set()
    assert await busy == 2
