"""Runs due outbox tasks. arq only says "look now"; what to do comes from the database, so a flushed Redis or
a killed worker costs a delay, never a task."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from logistics import logs, metrics
from logistics.config import Settings
from logistics.db import Database
from logistics.models import utcnow
from logistics.outbox import Task, claim_due, count_due, retry_later
from logistics.queue import WorkSignal

log = logging.getLogger("logistics.jobs")


@dataclass
class Runtime:
    """What every task handler may use; built once per worker process."""

    settings: Settings
    db: Database
    signal: WorkSignal
    services: dict[str, Any] = field(default_factory=dict)  # carrier, label store, webhook sender…


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


def backoff(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> timedelta:
    """Full-jitter exponential backoff for tasks that failed unexpectedly."""
    return timedelta(seconds=random.uniform(0, min(cap, base * 2 ** min(attempts, 20))))


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
            await retry_later(conn, task, utcnow() + backoff(task.attempts), f"{type(exc).__name__}: {exc}")
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
                await retry_later(conn, task, utcnow() + backoff(task.attempts), f"{type(exc).__name__}: {exc}")


async def process_due(rt: Runtime, *, batch: int = 200) -> int:
    """Claim and run due tasks until none are left; returns how many ran."""
    done = 0
    while True:
        tasks = await claim_due(rt.db, limit=batch, lease_seconds=rt.settings.lease_seconds)
        if not tasks:
            return done
        if len(tasks) == batch:
            rt.signal.poke()  # more waiting: let other workers share the load
        grouped: dict[str, list[Task]] = {}
        singles: list[Task] = []
        for task in tasks:
            if task.kind in BATCH_HANDLERS:
                grouped.setdefault(task.kind, []).append(task)
            else:
                singles.append(task)
        await asyncio.gather(
            *(run_batch(rt, kind, group) for kind, group in grouped.items()),
            *(run_task(rt, t) for t in singles),
        )
        done += len(tasks)


async def sweep(rt: Runtime) -> int:
    metrics.OUTBOX_DUE.set(await count_due(rt.db))
    return await process_due(rt)
