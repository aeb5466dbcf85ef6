"""Outbox rows from concurrent requests, stored in one transaction.

The carrier's tracking pushes each carry an event or two that must be durable before we acknowledge them, but
they come several at a time and one transaction each was the slowest part of a push on SQLite: the write lock
is shared with the worker, and a process waiting for it polls with sleeps of up to 100 ms while the worker
takes it again at once (the chaos run drained 50,000 pushes at 36 a second). Requests hand their rows to one
writer task and wait; it stores whatever is waiting in one transaction and wakes them all.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from logistics.storage.background import stop_task
from logistics.storage.db import Database
from logistics.storage.outbox import insert_tasks


@dataclass(slots=True)
class _Waiting:
    rows: list[dict[str, Any]]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class TaskBatcher:
    def __init__(self, db: Database, *, max_rows: int = 1000) -> None:
        self.db = db
        self.max_rows = max_rows
        self._waiting: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-batcher")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        waiting, self._waiting = list(self._waiting), deque()
        _settle(waiting, RuntimeError("service is shutting down"))

    async def insert(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed; raise what the transaction raised if it failed."""
        if not rows:
            return
        if self._task is None:
            raise RuntimeError("service is shutting down")
        item = _Waiting(rows)
        self._waiting.append(item)
        self._wakeup.set()
        await item.done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            batch: list[_Waiting] = []
            count = 0
            while self._waiting and (not batch or count + len(self._waiting[0].rows) <= self.max_rows):
                item = self._waiting.popleft()
                batch.append(item)
                count += len(item.rows)
            if not self._waiting:
                self._wakeup.clear()
            try:
                async with self.db.write() as conn:
                    await insert_tasks(conn, [row for item in batch for row in item.rows])
            except asyncio.CancelledError:
                _settle(batch, RuntimeError("service is shutting down"))
                raise
            except Exception as exc:  # every waiter answers failure and the carrier pushes again
                _settle(batch, exc)
                continue
            _settle(batch, None)


def _settle(items: list[_Waiting], error: BaseException | None) -> None:
    """Wake the waiters: committed when ``error`` is None, else failed with it."""
    for item in items:
        if item.done.done():
            continue
        if error is None:
            item.done.set_result(None)
        else:
            item.done.set_exception(error)
