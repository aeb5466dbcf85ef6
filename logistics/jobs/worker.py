"""The arq worker: two functions, both "run what is due". A cron tick is the sweeper that guarantees
progress; ``process_due`` jobs enqueued by the API are the fast path."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.worker import Worker, func

from logistics.config import Settings
from logistics.gongshi import refresh as refresh_gongshi
from logistics.gongshi.store import REFRESH_SECONDS, refreshed_at
from logistics.jobs import carrier as handlers
from logistics.jobs import labels as _label  # noqa: F401  (registers the label task and its ordered hook)
from logistics.jobs import runner, webhook_delivery
from logistics.jobs.overdue import mark_overdue
from logistics.jobs.purge import purge_finished, purge_idempotency
from logistics.redis.queue import PROCESS_DUE, WorkSignal, connect, deserialize, redis_settings, serialize
from logistics.storage.background import stop_task
from logistics.storage.db import Database

log = logging.getLogger("logistics.worker")


def build_runtime(settings: Settings, db: Database | None = None) -> runner.Runtime:
    database = db or Database(settings.resolved_database_url)
    redis = connect(settings.redis_url or "redis://127.0.0.1:6379", settings.queue_name)
    rt = runner.Runtime(settings=settings, db=database, signal=WorkSignal(redis))
    handlers.setup(rt)
    webhook_delivery.setup(rt)
    return rt


def create_worker(settings: Settings, rt: runner.Runtime | None = None, **overrides: Any) -> Worker:
    runtime = rt or build_runtime(settings)

    async def process_due(_ctx: dict[str, Any]) -> int:
        return await runner.process_due(runtime)

    async def sweep(_ctx: dict[str, Any]) -> int:
        return await runner.sweep(runtime)

    async def purge(_ctx: dict[str, Any]) -> int:
        window = timedelta(hours=settings.idempotency_retention_hours)
        replays = await purge_idempotency(runtime.db, after=window)
        return replays + await purge_finished(runtime.db, after=timedelta(days=settings.purge_after_days))

    async def overdue(_ctx: dict[str, Any]) -> int:
        return await mark_overdue(runtime.db)

    async def shutdown(_ctx: dict[str, Any]) -> None:
        if rt is None:
            await handlers_close(runtime)

    interval = max(1, int(settings.sweep_interval_seconds))
    options: dict[str, Any] = {
        "functions": [func(process_due, name=PROCESS_DUE, max_tries=1)],
        "cron_jobs": [
            cron(
                sweep, name="sweep", second=set(range(0, 60, interval)), run_at_startup=True, max_tries=1, unique=True
            ),
            cron(purge, name="purge", minute=17, second=0, max_tries=1, unique=True),
            # Deadlines are whole Beijing days: a check every 10 minutes marks a shipment soon after midnight.
            cron(overdue, name="overdue", minute=set(range(3, 60, 10)), second=0, max_tries=1, unique=True),
        ],
        "redis_settings": redis_settings(settings.redis_url or "redis://127.0.0.1:6379"),
        "queue_name": settings.queue_name,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": settings.job_timeout_seconds * 4,
        "keep_result": 0,
        "on_shutdown": shutdown,
        "handle_signals": False,
    }
    options.update(overrides)
    return Worker(**options)


def gongshi_wait(refreshed: datetime | None, now: datetime, every: float = REFRESH_SECONDS) -> float:
    """Seconds until the stored 公示 figures are due for a refresh: none when they never were or are ``every``
    old, the rest of the period when another worker refreshed them lately (so N workers refresh about once
    per period, not N times), never longer than ``every`` whatever the clocks say."""
    if refreshed is None:
        return 0.0
    return max(0.0, min(every, every - (now - refreshed).total_seconds()))


async def handlers_close(rt: runner.Runtime) -> None:
    await handlers.close(rt)
    await rt.signal.close()
    if rt.signal.redis is not None:
        await rt.signal.redis.aclose()
    await rt.db.dispose()


async def run_forever(settings: Settings) -> None:
    """Run the worker and restart it when it stops (arq exits when its Redis connection drops)."""
    rt = build_runtime(settings)
    sweeper = asyncio.create_task(_sweep_forever(rt, max(1.0, settings.sweep_interval_seconds)), name="sweeper")
    gongshi = asyncio.create_task(_gongshi_forever(rt), name="gongshi")
    try:
        while True:
            worker = create_worker(settings, rt)
            try:
                await worker.async_run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis unreachable or dropped: wait and start again
                log.warning("worker_stopped", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            finally:
                try:
                    await worker.close()
                except asyncio.CancelledError:
                    # arq's close() cancels the running jobs and then gathers them, which raises their
                    # CancelledError here: only a cancellation of this task (shutdown) may end the loop.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
                    log.warning("worker_close_failed", extra={"error": "CancelledError from the cancelled jobs"})
                except Exception as exc:  # close() settles jobs in Redis, the very thing that may have gone away
                    log.warning("worker_close_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            await asyncio.sleep(2)
    finally:
        await stop_task(gongshi)
        await stop_task(sweeper)
        await handlers_close(rt)


async def _sweep_forever(rt: runner.Runtime, interval: float) -> None:
    """The sweep, apart from arq. arq's cron needs a readable queue: a SIGKILLed worker's jobs keep their
    in-progress keys for the whole job timeout and take up every read of the queue (arq reads max_jobs ids per
    poll), so for minutes no job starts, the cron's included. This loop needs only the
    database, so due work is done whatever state Redis and the queue are in."""
    while True:
        await asyncio.sleep(interval)
        try:
            await runner.sweep(rt)
        except Exception as exc:  # the database away for a moment: the next round tries again
            log.warning("sweep_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})


async def _gongshi_forever(rt: runner.Runtime, every: float = REFRESH_SECONDS) -> None:
    """The public 公示 figures' refresh, apart from arq as the sweep is: behind a busy queue a cron job waits for
    a free slot, and the page promises figures under 60 seconds old however many orders are waiting."""
    while True:
        try:
            wait = gongshi_wait(await refreshed_at(rt.db), datetime.now(UTC), every)
            if wait == 0:
                started = datetime.now(UTC)
                await refresh_gongshi(rt.db, started)
                wait = gongshi_wait(started, datetime.now(UTC), every)
        except Exception as exc:  # the database away for a moment: try again soon
            log.warning("gongshi_refresh_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            wait = min(every, 5.0)
        # A little jitter, so that workers started together do not all find the figures due at once.
        await asyncio.sleep(max(wait, 0.5) + random.uniform(0, 1))
