"""SQLite calls run on the event loop, and wait for another process's lock in their own thread.

SQLite only: this is the SQLite driver under the Database's engines (PostgreSQL goes through asyncpg).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from logistics import sqlite_driver
from logistics.db import Database, SqliteBatchWriter, is_lock_conflict


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "logistics.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE parcels (waybill_no TEXT PRIMARY KEY, status TEXT NOT NULL)")
        conn.execute("INSERT INTO parcels VALUES ('1151234567890', 'ordered')")
    return path


@pytest.fixture
async def db(path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.dispose()


@pytest.fixture
def other_process_writing(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction: it holds the write lock until the test commits it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE parcels SET status = 'collected' WHERE waybill_no = '1151234567890'")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def _status(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT status FROM parcels").fetchone()[0])


async def test_a_statement_runs_on_the_event_loop_thread(path: Path) -> None:
    conn = await sqlite_driver.connect(path)
    try:
        await conn.create_function("thread_id", 0, threading.get_ident)
        async with conn.execute("SELECT thread_id()") as cursor:
            row = await cursor.fetchone()
        assert row is not None and row[0] == threading.get_ident()
        assert conn.waits == 0
    finally:
        await conn.close()


async def test_a_write_waits_for_another_process_without_stopping_the_event_loop(
    db: Database, path: Path, other_process_writing: sqlite3.Connection
) -> None:
    async def write() -> None:
        async with db.write() as conn:
            await conn.execute(text("UPDATE parcels SET status = 'delivered' WHERE waybill_no = '1151234567890'"))

    writing = asyncio.create_task(write())
    await asyncio.sleep(0.2)  # the loop runs meanwhile: this sleep ends while the write is still waiting
    assert not writing.done()
    other_process_writing.execute("COMMIT")
    await asyncio.wait_for(writing, 10)
    assert _status(path) == "delivered"  # after the other process's 'collected'


async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_behind(
    db: Database, path: Path, other_process_writing: sqlite3.Connection
) -> None:
    # The other process commits soon after the cancellation, as a writer does: the cancelled BEGIN IMMEDIATE
    # then gets the lock in its thread, and the rollback queued behind it must give the lock back.
    asyncio.get_running_loop().call_later(0.5, other_process_writing.execute, "COMMIT")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), db.write() as conn:
            await conn.execute(text("UPDATE parcels SET status = 'returned' WHERE waybill_no = '1151234567890'"))
    after = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        after.execute("BEGIN IMMEDIATE")
        after.execute("UPDATE parcels SET status = 'delivered' WHERE waybill_no = '1151234567890'")
        after.execute("COMMIT")
    finally:
        after.close()
    assert _status(path) == "delivered"
    async with db.write() as conn:  # and this process's writer is usable again
        await conn.execute(text("UPDATE parcels SET status = 'signed' WHERE waybill_no = '1151234567890'"))
    assert _status(path) == "signed"


async def test_a_lock_held_past_the_busy_timeout_is_an_error(
    path: Path, other_process_writing: sqlite3.Connection
) -> None:
    conn = await sqlite_driver.connect(path, busy_timeout_ms=200, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked") as raised:
            await conn.execute("BEGIN IMMEDIATE")
        assert conn.waits == 1
        assert is_lock_conflict(raised.value)  # a task that met it is tried again at once, not backed off
    finally:
        await conn.close()


def _deliver(conn: sqlite3.Connection, threaded: bool) -> tuple[int, bool, bool]:
    """Delivers the parcel; returns the rows changed, whether the writer said it ran in its thread, and whether
    it really did."""
    changed = conn.execute("UPDATE parcels SET status = 'delivered' WHERE waybill_no = '1151234567890'").rowcount
    return changed, threaded, threading.current_thread() is not threading.main_thread()


async def test_a_group_commit_runs_on_the_event_loop_thread_when_nobody_else_writes(path: Path) -> None:
    writer = SqliteBatchWriter(str(path), asyncio.Lock())
    try:
        assert await writer.transaction(_deliver) == (1, False, False)
        assert _status(path) == "delivered"
    finally:
        await writer.close()


async def test_the_group_commit_waits_for_another_process_without_stopping_the_event_loop(
    path: Path, other_process_writing: sqlite3.Connection
) -> None:
    writer = SqliteBatchWriter(str(path), asyncio.Lock())
    try:
        writing = asyncio.create_task(writer.transaction(_deliver))
        await asyncio.sleep(0.2)  # the loop runs meanwhile
        assert not writing.done()
        other_process_writing.execute("COMMIT")
        assert await asyncio.wait_for(writing, 10) == (1, True, True)  # told so: it keeps to few, large calls
        assert _status(path) == "delivered"
    finally:
        await writer.close()


async def test_a_group_commit_after_a_cancelled_one_waits_for_it_and_both_keep_their_outcome(
    path: Path, other_process_writing: sqlite3.Connection
) -> None:
    writer = SqliteBatchWriter(str(path), asyncio.Lock())
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await writer.transaction(_deliver)  # cancelled while its thread waits for the lock
        asyncio.get_running_loop().call_later(0.3, other_process_writing.execute, "COMMIT")

        def sign(conn: sqlite3.Connection, _threaded: bool) -> str:
            conn.execute("UPDATE parcels SET status = 'signed' WHERE status = 'delivered'")
            return str(conn.execute("SELECT status FROM parcels").fetchone()[0])

        # Runs after the cancelled transaction, which still committed in the thread once it had the lock.
        assert await asyncio.wait_for(writer.transaction(sign), 10) == "signed"
    finally:
        await writer.close()
