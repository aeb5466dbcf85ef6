"""Runs due outbox tasks. arq only says "look now"; what to do comes from the database, so a flushed Redis or
a killed worker costs a delay, never a task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from logistics import logs, metrics
from logistics.config import Settings
from logistics.domain.tables import utcnow
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database, is_lock_conflict
from logistics.storage.outbox import Task, claim_due, count_due, renew_leases, retry_later

log = logging.getLogger("logistics.jobs")


@dataclass
class Runtime:
    """What every task handler may use; built once per worker process."""

    settings: Settings
    db: Database
    signal: WorkSignal
    services: dict[str, Any] = field(default_factory=dict)  # carrier, label store, webhook sender…
    lanes: dict[str, Lane] = field(default_factory=dict)  # background runners of slow kinds, by kind
    claiming: int = 0  # process_due loops running in this process
    wanted: bool = False  # a wake-up came while every loop was busy: they look once more before they stop


Handler = Callable[[Runtime, Task], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
BatchHandler = Callable[[Runtime, list[Task]], Awaitable[None]]
# Kinds whose tasks are cheaper together (one read, one write per wave instead of one per task).
BATCH_HANDLERS: dict[str, BatchHandler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def handles_batch(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    def register(fn: BatchHandler) -> BatchHandler:
        BATCH_HANDLERS[kind] = fn
        return fn

    return register


# Kinds that run in a lane of their own, by how many of them one claim takes (from the settings). They are
# slow (label PDFs: CPU in a render process, a blob write each) and nobody is waiting on them, so the arq
# jobs that run carrier and webhook work never claim them: a job that waits for a batch to finish is held up
# by the slowest label in it, and with every job slot so held, new orders wait unclaimed (worst with a slow
# carrier). A lane works in the background of the worker process instead.
LANES: dict[str, Callable[[Settings], int]] = {}
# Claims each lane works on at once: one is rendering while the other is writing its results.
LANE_RUNNERS = 2


def in_lane(kind: str, chunk: Callable[[Settings], int]) -> None:
    LANES[kind] = chunk


def backoff(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> timedelta:
    """Full-jitter exponential backoff for tasks that failed unexpectedly."""
    return timedelta(seconds=random.uniform(0, min(cap, base * 2 ** min(attempts, 20))))


def failed_retry_delay(exc: BaseException, attempts: int) -> timedelta:
    """When to run a task again after ``exc`` ended its run. A lock conflict (a deadlock victim on PostgreSQL)
    is over once the other transaction ends, so it is tried again within a second. Backing it off by the task's
    attempts, which count every scheduled webhook retry too, would leave a shipment's webhooks waiting
    minutes."""
    if is_lock_conflict(exc):
        return timedelta(seconds=random.uniform(0.1, 1.0))
    return backoff(attempts)


async def run_task(rt: Runtime, task: Task) -> None:
    token = logs.request_id.set(task.request_id)
    try:
        handler = HANDLERS.get(task.kind)
        if handler is None:
            raise LookupError(f"no handler for task kind {task.kind!r}")
        async with asyncio.timeout(rt.settings.job_timeout_seconds):
            await handler(rt, task)
        metrics.TASKS.labels(task.kind, "ok").inc()
    except Exception as exc:
        metrics.TASKS.labels(task.kind, "error").inc()
        log.warning(
            "task_failed",
            extra={
                "task_id": task.id,
                "kind": task.kind,
                "shipment_id": task.shipment_id,
                "attempts": task.attempts,
                "error": f"{type(exc).__name__}: {exc}"[:300],
            },
        )
        async with rt.db.write() as conn:
            await retry_later(
                conn, task, utcnow() + failed_retry_delay(exc, task.attempts), f"{type(exc).__name__}: {exc}"
            )
    finally:
        logs.request_id.reset(token)


async def run_batch(rt: Runtime, kind: str, tasks: list[Task]) -> None:
    """Tasks of one kind through its batch handler. The handler settles each task itself (finish or
    retry_later); whatever it left unsettled when it failed is retried later, like a failed single task."""
    try:
        async with asyncio.timeout(rt.settings.job_timeout_seconds):
            await BATCH_HANDLERS[kind](rt, tasks)
        metrics.TASKS.labels(kind, "ok").inc(len(tasks))
    except Exception as exc:
        metrics.TASKS.labels(kind, "error").inc(len(tasks))
        log.warning(
            "task_batch_failed",
            extra={"kind": kind, "tasks": len(tasks), "error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        async with rt.db.write() as conn:
            # A task the handler already finished or deferred no longer carries our claim token: untouched.
            for task in tasks:
                due = utcnow() + failed_retry_delay(exc, task.attempts)
                await retry_later(conn, task, due, f"{type(exc).__name__}: {exc}")


class Lane:
    """Runs the due tasks of one slow kind in the background, a few at a time, until none are left.

    Woken by every ``process_due`` (so by every signal and sweep); safe to wake while it runs. Its tasks are
    claimed with leases like any other, so a worker that dies mid-lane loses nothing.
    """

    def __init__(self, rt: Runtime, kind: str) -> None:
        self.rt, self.kind = rt, kind
        self.chunk = max(1, LANES[kind](rt.settings))
        self._runners: list[asyncio.Task[None]] = []
        self._wanted = False

    def wake(self) -> None:
        self._wanted = True
        self._runners = [r for r in self._runners if not r.done()]
        while len(self._runners) < LANE_RUNNERS:
            self._runners.append(asyncio.create_task(self._drain()))

    async def _drain(self) -> None:
        while True:
            self._wanted = False
            tasks = await claim_due(
                self.rt.db, limit=self.chunk, lease_seconds=self.rt.settings.lease_seconds, kinds=(self.kind,)
            )
            if tasks:
                await _run_claimed(self.rt, tasks)
            elif not self._wanted:  # nothing due, and no wake-up came while we looked
                return

    async def idle(self) -> None:
        """Until the lane has run out of due work (tests)."""
        while running := [r for r in self._runners if not r.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what is running; its leases run out and a later sweep runs it again."""
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        self._runners = []


def wake_lanes(rt: Runtime) -> None:
    for kind in LANES:
        lane = rt.lanes.get(kind)
        if lane is None:
            lane = rt.lanes[kind] = Lane(rt, kind)
        lane.wake()


async def lanes_idle(rt: Runtime) -> None:
    await asyncio.gather(*(lane.idle() for lane in list(rt.lanes.values())))


async def stop_lanes(rt: Runtime) -> None:
    await asyncio.gather(*(lane.stop() for lane in list(rt.lanes.values())))


async def _keep_leases(rt: Runtime, tasks: list[Task], done: asyncio.Event) -> None:
    """Renew the claim's leases until ``done``. A claim that outlived its lease (a busy worker, a slow carrier)
    is handed to the next worker while it still runs, and both do the work (order and webhook batches twice
    over). Stopped by an event rather than cancelled, so that a
    renewal is never cut off inside its write transaction."""
    lease = rt.settings.lease_seconds
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), lease / 3)
        if done.is_set():
            return
        try:
            async with rt.db.write() as conn:
                await renew_leases(conn, tasks, utcnow() + timedelta(seconds=lease))
        except Exception as exc:  # the database away for a moment: the next round tries again
            log.warning("lease_renewal_failed", extra={"tasks": len(tasks), "error": type(exc).__name__})


async def _run_claimed(rt: Runtime, tasks: list[Task]) -> None:
    """Run claimed tasks: kinds with a batch handler together, the others one by one, all concurrently, their
    leases renewed while they run."""
    grouped: dict[str, list[Task]] = {}
    singles: list[Task] = []
    for task in tasks:
        if task.kind in BATCH_HANDLERS:
            grouped.setdefault(task.kind, []).append(task)
        else:
            singles.append(task)
    done = asyncio.Event()
    keeper = asyncio.create_task(_keep_leases(rt, tasks, done))
    try:
        await asyncio.gather(
            *(run_batch(rt, kind, group) for kind, group in grouped.items()),
            *(run_task(rt, t) for t in singles),
        )
    finally:
        done.set()
        await asyncio.shield(keeper)


async def process_due(rt: Runtime, *, batch: int = 200) -> int:
    """Claim and run due tasks until none are left; returns how many ran. Lane kinds are left to their lanes,
    which this wakes (they carry on in the background after it returns).

    At most ``worker_claim_loops`` of these run in a process; a wake-up beyond them only asks the running ones
    to look once more before they stop. Were every wake-up (up to ten a second under load, each an arq job) to
    start a loop of its own, under a flood one worker would run dozens of 200-task claims at once: each taking
    minutes of a saturated event loop, until their job timeouts cut them short."""
    wake_lanes(rt)
    if rt.claiming >= rt.settings.worker_claim_loops:
        rt.wanted = True
        return 0
    rt.claiming += 1
    done = 0
    try:
        while True:
            rt.wanted = False
            tasks = await claim_due(rt.db, limit=batch, lease_seconds=rt.settings.lease_seconds, exclude=tuple(LANES))
            if not tasks:
                if rt.wanted:
                    continue
                return done
            if len(tasks) == batch:
                rt.signal.poke()  # more waiting: let other workers share the load
            await _run_claimed(rt, tasks)
            done += len(tasks)
    finally:
        rt.claiming -= 1


async def sweep(rt: Runtime) -> int:
    metrics.OUTBOX_DUE.set(await count_due(rt.db))
    return await process_due(rt)
