"""Slow task kinds run in lanes of their own: the jobs that run carrier work never wait for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from logistics.config import Settings
from logistics.domain.tables import outbox
from logistics.jobs import runner
from logistics.jobs.runner import Runtime, lanes_idle, process_due, stop_lanes
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database
from logistics.storage.outbox import Task, claim_due, finish, insert_tasks, retry_later, task_row

FAST, SLOW = "test_fast", "test_slow"


@pytest.fixture
def kinds() -> Iterator[dict[str, list[str]]]:
    """A fast kind and a slow one that waits for ``release``; each records what it ran."""
    ran: dict[str, list[str]] = {FAST: [], SLOW: []}
    release = asyncio.Event()

    async def fast(rt: Runtime, task: Task) -> None:
        async with rt.db.write() as conn:
            await finish(conn, task)
        ran[FAST].append(str(task.shipment_id))

    async def slow(rt: Runtime, task: Task) -> None:
        await release.wait()
        async with rt.db.write() as conn:
            await finish(conn, task)
        ran[SLOW].append(str(task.shipment_id))

    runner.HANDLERS.update({FAST: fast, SLOW: slow})
    runner.in_lane(SLOW, lambda _settings: 2)
    ran["release"] = release  # type: ignore[assignment]
    try:
        yield ran
    finally:
        for kind in (FAST, SLOW):
            runner.HANDLERS.pop(kind, None)
        runner.LANES.pop(SLOW, None)


async def _queue(db: Database, kind: str, count: int) -> None:
    async with db.write() as conn:
        await insert_tasks(conn, [task_row(kind, f"shp_{kind}_{i}") for i in range(count)])


async def _left(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(outbox.c.kind).order_by(outbox.c.id))).scalars())


async def test_fast_work_is_done_while_the_slow_lane_is_still_busy(
    settings: Settings, db: Database, kinds: dict[str, list[str]]
) -> None:
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    try:
        await _queue(db, SLOW, 5)
        await _queue(db, FAST, 3)
        # process_due returns once the fast work is done, although no slow task can finish yet.
        assert await asyncio.wait_for(process_due(rt), 10) == 3
        assert sorted(kinds[FAST]) == [f"shp_{FAST}_{i}" for i in range(3)]
        await asyncio.sleep(0.1)
        # The lane works a claim at a time (two runners of two here): the rest of its kind stays unclaimed.
        leased = await claim_due(db, limit=10, lease_seconds=30, kinds=(SLOW,))
        assert len(leased) == 1
        async with db.write() as conn:  # give it back
            for task in leased:
                await retry_later(conn, task, task.created_at, "test")
        kinds["release"].set()  # type: ignore[attr-defined]
        await asyncio.wait_for(lanes_idle(rt), 10)
        assert sorted(kinds[SLOW]) == [f"shp_{SLOW}_{i}" for i in range(5)]
        assert await _left(db) == []
    finally:
        await stop_lanes(rt)


async def test_a_stopped_lane_leaves_its_tasks_to_a_later_claim(
    settings: Settings, db: Database, kinds: dict[str, list[str]]
) -> None:
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    await _queue(db, SLOW, 3)
    await process_due(rt)
    await asyncio.sleep(0.1)
    await stop_lanes(rt)  # a shutdown mid-task: nothing was finished, nothing is lost
    assert kinds[SLOW] == []
    assert await _left(db) == [SLOW] * 3
