"""``logistics worker`` restarts itself when Redis drops, even when closing the dead worker fails too."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from logistics.config import Settings
from logistics.domain.tables import outbox
from logistics.jobs import worker as worker_module
from logistics.storage.db import Database
from logistics.storage.outbox import insert_tasks, task_row

from support import eventually


class _LostRedis:
    """An arq worker whose Redis went away mid-job: the run fails, and so does settling the job in close()."""

    async def async_run(self) -> None:
        raise RedisConnectionError("Error 2 connecting to redis.sock. No such file or directory.")

    async def close(self) -> None:
        raise RedisConnectionError("Error 2 connecting to redis.sock. No such file or directory.")


async def test_a_failing_close_does_not_end_the_worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by the chaos run: a Redis restart while jobs ran made close() raise from run_forever's finally,
    # and the worker process exited instead of starting again.
    made: list[_LostRedis] = []

    def create(*_: object, **__: object) -> _LostRedis:
        made.append(_LostRedis())
        return made[-1]

    monkeypatch.setattr(worker_module, "create_worker", create)
    running = asyncio.create_task(worker_module.run_forever(settings))
    try:

        async def restarted() -> bool:
            assert not running.done(), running.exception()
            return len(made) >= 2

        await eventually(restarted, timeout=15)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


class _CancelledJobs(_LostRedis):
    """arq's close() cancels the running jobs, then gathers them: the jobs' CancelledError comes out of close()."""

    async def close(self) -> None:
        raise asyncio.CancelledError


async def test_jobs_cancelled_by_close_do_not_end_the_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the chaos run: after a Redis restart the worker process exited with status 0 instead of
    # starting again, because that CancelledError was taken for a shutdown.
    made: list[_LostRedis] = []

    def create(*_: object, **__: object) -> _LostRedis:
        made.append(_CancelledJobs())
        return made[-1]

    monkeypatch.setattr(worker_module, "create_worker", create)
    running = asyncio.create_task(worker_module.run_forever(settings))
    try:

        async def restarted() -> bool:
            assert not running.done()
            return len(made) >= 2

        await eventually(restarted, timeout=15)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert running.cancelled()  # a real shutdown still ends it


class _StarvedQueue(_LostRedis):
    """An arq worker that never starts a job: its queue reads are full of a killed worker's in-progress jobs."""

    async def async_run(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


async def test_due_work_is_done_while_the_queue_starts_no_job(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the chaos run: after SIGKILLs the new worker sat idle for minutes, its sweep being an arq cron job.
    from sqlalchemy import func, select

    async with db.write() as conn:  # a label task of a shipment that is gone: the handler just finishes it
        await insert_tasks(conn, [task_row("label", "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C")])
    monkeypatch.setattr(worker_module, "create_worker", lambda *_, **__: _StarvedQueue())
    running = asyncio.create_task(worker_module.run_forever(settings))
    try:

        async def done() -> bool:
            async with db.read() as conn:
                return (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 0

        await eventually(done, timeout=15)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
