"""SQLite calls run on the event loop, and wait for another process's lock in their own thread.

SQLite only: this is the SQLite driver under the Database's engines (PostgreSQL goes through asyncpg).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from logistics.domain import ids
from logistics.storage import sqlite_driver
from logistics.storage.db import Database, SqliteBatchWriter, is_lock_conflict


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


_ADDRESS = "河南省郑州市上街区新安路街道济源路8号院3号楼2单元501室，收件人王秀英，电话13803712345"


def _receive(rows: int) -> Callable[[sqlite3.Connection, bool], None]:
    """A batch of parcels, like the group commit's: many rows per transaction."""

    def work(conn: sqlite3.Connection, _threaded: bool) -> None:
        conn.executemany(
            "INSERT INTO parcels (waybill_no, status) VALUES (?, ?)",
            [(f"{ids.ulid()}", f"已收寄 {_ADDRESS}") for _ in range(rows)],
        )

    return work


def _wal_bytes(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def _unchecked_frames(reader: sqlite3.Connection) -> int:
    """Frames in the WAL that a checkpoint has not copied into the database file (copying them now)."""
    _busy, log_frames, checkpointed = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(log_frames - checkpointed)


async def test_group_commits_leave_checkpoints_to_the_writer_which_copies_the_whole_wal(path: Path) -> None:
    reader = sqlite3.connect(path)  # open throughout, so the WAL is never removed on a last close
    writer = SqliteBatchWriter(str(path), asyncio.Lock(), checkpoint_interval=3600)
    try:
        for _ in range(100):
            await writer.transaction(_receive(200))
        # ≈ 7 MB of WAL; SQLite's automatic checkpoint would have started it over after 1,000 pages (4 MiB).
        assert _wal_bytes(path) > 5 * 1024 * 1024
        await writer.checkpoint()
        assert _unchecked_frames(reader) == 0
        await writer.transaction(_receive(1))
        _busy, frames, _copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert 0 < frames < 20  # the commit after a full checkpoint starts the WAL from its beginning
        assert reader.execute("SELECT count(*) FROM parcels").fetchone()[0] == 1 + 100 * 200 + 1
    finally:
        await writer.close()
        reader.close()


async def test_checkpoints_keep_up_with_commits_in_the_background(path: Path) -> None:
    reader = sqlite3.connect(path)
    writer = SqliteBatchWriter(str(path), asyncio.Lock(), checkpoint_interval=0)
    try:
        for _ in range(150):
            await writer.transaction(_receive(200))
            await asyncio.sleep(0)  # batch after batch: a checkpoint never finds the WAL still
        # Never checkpointed, these batches make ≈ 10 MB of WAL; caught up, each commit starts it over.
        assert _wal_bytes(path) < 2 * 1024 * 1024
        assert _unchecked_frames(reader) < 20
    finally:
        await writer.close()
        reader.close()
