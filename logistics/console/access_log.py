"""The access log's rows written together: every view of personal data waits until its row is stored, and the
views of one moment share one write transaction.

On SQLite a write transaction waits for the process's one writer, and each hand-over of that turn from one
waiting page to the next costs a pass of the event loop over every other request in flight: three clerks
searching by phone at once waited some 80 ms for well under a millisecond of writing each
(benchmarks/console.py). Here the views that arrive while a write is being prepared or runs join the next one.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import insert

from logistics.domain.tables import personal_data_access
from logistics.storage.db import Database


class AccessLog:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._rows: list[dict[str, Any]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, rows: list[dict[str, Any]]) -> None:
        """Store these rows; returns once they are committed, raises what the write raised."""
        stored = asyncio.get_running_loop().create_future()
        self._rows.extend(rows)
        self._waiting.append(stored)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="access-log")
        await stored

    async def _write_pending(self) -> None:
        # Rows are taken only once this task runs: the views of the current pass of the loop are in them.
        while self._rows:
            rows, waiting = self._rows, self._waiting
            self._rows, self._waiting = [], []
            try:
                await self._db.write_alone(insert(personal_data_access).values(rows))
            except Exception as exc:  # each waiting view fails as its own write would have
                for stored in waiting:
                    if not stored.done():
                        stored.set_exception(exc)
            else:
                for stored in waiting:
                    if not stored.done():  # a page cancelled meanwhile: its view is logged all the same
                        stored.set_result(None)


_LOGS: weakref.WeakKeyDictionary[Database, AccessLog] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> AccessLog:
    log = _LOGS.get(db)
    if log is None:
        log = _LOGS[db] = AccessLog(db)
    return log
