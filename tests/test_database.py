"""A transaction cut short by a cancellation (a job's timeout) must give its locks back at once.

Found by the 10,000-shipment chaos run: after one job timed out inside a SQLite write transaction, the
connection SQLAlchemy "closed" kept the write lock, and every writer of every process failed with "database is
locked" for minutes. Garbage collection is switched off here because a collection can release such a
connection by chance and hide the bug.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.storage.db import Database


async def _slow(conn: AsyncConnection, dialect: str) -> None:
    """Something that takes a second inside the transaction, for the cancellation to land in.

    On PostgreSQL a statement: the cancellation lands while the server runs it. SQLite statements run on the
    event loop (logistics.storage.sqlite_driver), where no cancellation can land mid-statement; there it lands where
    the transaction awaits something else, as a job's timeout would. A cancellation while a SQLite call waits
    for a lock in its thread is tested in test_sqlite_driver.py."""
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_sleep(1)"))
    else:
        await asyncio.sleep(1)


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _cancelled_update(db: Database, table: str) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), db.write() as conn:
            await conn.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
            await _slow(conn, db.dialect)


async def test_a_cancelled_write_leaves_the_database_writable_for_other_processes(
    db: Database, database_url: str, probe: str, no_gc: None
) -> None:
    await _cancelled_update(db, probe)
    other = Database(database_url)  # engines of its own, as another process has
    try:
        async with asyncio.timeout(10), other.write() as conn:
            await conn.execute(text(f"UPDATE {probe} SET n = n + 10 WHERE id = 1"))
        async with other.read() as conn:
            assert (await conn.execute(text(f"SELECT n FROM {probe}"))).scalar_one() == 10  # the cut one rolled back
    finally:
        await other.dispose()


async def test_a_cancelled_write_leaves_the_same_process_able_to_write(
    db: Database, probe: str, no_gc: None
) -> None:
    await _cancelled_update(db, probe)
    async with asyncio.timeout(10), db.write() as conn:
        await conn.execute(text(f"UPDATE {probe} SET n = n + 10 WHERE id = 1"))
    async with db.read() as conn:
        assert (await conn.execute(text(f"SELECT n FROM {probe}"))).scalar_one() == 10
