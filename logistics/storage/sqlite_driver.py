"""SQLite for asyncio without a thread round trip per call, except when SQLite makes us wait.

aiosqlite runs every call (cursor, execute, fetch, close: four per statement) in the connection's thread and
wakes the event loop with the answer. Our statements take microseconds; the round trips took tens of
microseconds each and were the largest share of a worker's CPU time (the pipeline benchmark measured 2.6 ms
of event-loop CPU per order through aiosqlite, 1.4 ms with this driver).

The one slow case is a lock held by another process (a writer elsewhere, a checkpoint): SQLite's busy handler
sleeps, and on the event loop's thread that sleep would stop every other task. So a call runs on the loop with
no busy timeout at all, and if SQLite answers SQLITE_BUSY the same call is made again in the connection's
thread, where it waits with the configured busy timeout while the loop goes on. A statement that returned BUSY
changed nothing, so repeating it is safe. Once a call is in the thread, the calls after it go there too until
it is done, so a connection's calls keep their order (a rollback queued behind a BEGIN still waiting for the
lock, when its task is cancelled, is what ends that transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 15000
_SQLITE_BUSY = 5


def is_busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == _SQLITE_BUSY


@contextlib.contextmanager
def waiting_for_locks(conn: sqlite3.Connection, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Iterator[None]:
    """Let SQLite wait for another process's lock, for calls made off the event loop; then no waiting again."""
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    try:
        yield
    finally:
        conn.execute("PRAGMA busy_timeout=0")


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop unless SQLite makes them wait (see above).

    The sqlite3 connection must be made with ``check_same_thread=False`` and a busy timeout of 0: it is used
    from the loop's thread and, one call at a time, from its own."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        super().__init__(connector, iter_chunk_size=64)
        self._busy_timeout_ms = busy_timeout_ms
        # Calls handed to the thread and calls it has finished, each counted by one thread only. Not the
        # futures: a cancelled caller's future is done while its call still runs in the thread.
        self._handed = 0
        self._finished = 0
        self.waits = 0  # calls that had to wait for a lock in the thread

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if self._handed == self._finished:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            self.waits += 1
            return await self._thread_call(self._waiting, fn, args, kwargs)
        return await self._thread_call(fn, *args, **kwargs)

    def _thread_call(self, fn: Any, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        # Queued now, not when awaited: a cancellation cannot take the call back once it is ordered here.
        future = asyncio.get_running_loop().create_future()
        self._handed += 1
        self._tx.put_nowait((future, lambda: self._in_thread(fn, args, kwargs)))
        return future

    def _in_thread(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            self._finished += 1

    def _waiting(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with waiting_for_locks(self._conn, self._busy_timeout_ms):
            return fn(*args, **kwargs)


async def connect(*args: Any, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any) -> InlineConnection:
    """``sqlite3.connect(*args, **kwargs)`` behind an ``InlineConnection`` (for SQLAlchemy's ``async_creator``).

    Set ``isolation_level`` here if needed: setting it later goes round this class's ordering of calls."""
    kwargs |= {"check_same_thread": False, "timeout": 0}
    return await InlineConnection(lambda: sqlite3.connect(*args, **kwargs), busy_timeout_ms=busy_timeout_ms)
