"""What a read and a write are, on each database: a write is one transaction, whole or not at all; on
PostgreSQL a plain read holds no transaction (its statements are each their own, so a page pays no BEGIN and
no ROLLBACK), and a snapshot read is one transaction from first statement to last."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from logistics.storage.db import Database


async def _count(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text(f"SELECT n FROM {table} WHERE id = 1"))).scalar_one())


async def test_a_write_that_fails_half_way_leaves_nothing_behind(db: Database, probe: str) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(text(f"UPDATE {probe} SET n = n + 1 WHERE id = 1"))
            raise RuntimeError("the second half of the work failed")
    assert await _count(db, probe) == 0


async def test_a_write_is_seen_whole_once_it_returns(db: Database, probe: str) -> None:
    async with db.write() as conn:
        await conn.execute(text(f"UPDATE {probe} SET n = n + 1 WHERE id = 1"))
        await conn.execute(text(f"UPDATE {probe} SET n = n + 1 WHERE id = 1"))
    assert await _count(db, probe) == 2


async def test_a_write_on_postgresql_runs_in_a_read_committed_transaction(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite writes are BEGIN IMMEDIATE transactions (test_sqlite_driver.py)")
    async with db.write() as conn:
        level = (await conn.execute(text("SHOW transaction_isolation"))).scalar_one()
        first = (await conn.execute(text("SELECT now()"))).scalar_one()
        second = (await conn.execute(text("SELECT now()"))).scalar_one()
    assert level == "read committed"
    assert first == second  # now() is the transaction's start: one transaction


async def _one_transaction(db: Database, *, snapshot: bool = False) -> bool:
    """Did a read's statements share one transaction (now() is the transaction's start)?"""
    async with db.read(snapshot=snapshot) as conn:
        first = (await conn.execute(text("SELECT now()"))).scalar_one()
        await conn.execute(text("SELECT pg_sleep(0.01)"))
        return first == (await conn.execute(text("SELECT now()"))).scalar_one()


async def test_a_plain_read_on_postgresql_holds_no_transaction_between_statements(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("a SQLite read is one deferred transaction, which costs no round trip")
    assert not await _one_transaction(db)


async def test_a_snapshot_read_on_postgresql_is_one_repeatable_read_transaction(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("a SQLite read is always one snapshot")
    async with db.read(snapshot=True) as conn:
        assert (await conn.execute(text("SHOW transaction_isolation"))).scalar_one() == "repeatable read"
    assert await _one_transaction(db, snapshot=True)


async def test_a_connection_back_from_a_write_reads_without_a_transaction_again(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's isolation settings")
    for _ in range(3):  # the pool hands the same connections round
        async with db.write() as conn:
            await conn.execute(text("SELECT 1"))
    assert not await _one_transaction(db)


async def test_postgresql_connections_never_compile_statements_with_jit(db: Database) -> None:
    # The console's queue, priced high by its correlated subqueries, spent 125 ms compiling and 2 ms running.
    if db.is_sqlite:
        pytest.skip("PostgreSQL's JIT")
    async with db.read() as conn:
        assert (await conn.execute(text("SHOW jit"))).scalar_one() == "off"


async def test_a_statement_written_alone_is_whole_or_not_at_all(db: Database, probe: str) -> None:
    # One multi-row INSERT: on PostgreSQL it runs in autocommit, with no BEGIN or COMMIT round trip.
    rows = text(f"INSERT INTO {probe} (id, n) VALUES (2, 1), (3, 1), (1, 1)")  # id 1 is taken
    with pytest.raises(IntegrityError):
        await db.write_alone(rows)
    async with db.read() as conn:
        assert (await conn.execute(text(f"SELECT count(*) FROM {probe}"))).scalar_one() == 1
    await db.write_alone(text(f"INSERT INTO {probe} (id, n) VALUES (2, 1), (3, 1)"))
    async with db.read() as conn:
        assert (await conn.execute(text(f"SELECT count(*) FROM {probe}"))).scalar_one() == 3


async def test_a_load_above_the_pool_waits_for_its_connections_rather_than_opening_more(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's server processes")
    db = Database(database_url, pool_size=4)
    pages = 12

    async def wave() -> set[int]:
        asked, everyone_asked = 0, asyncio.Event()

        async def page() -> int:
            nonlocal asked
            asked += 1
            if asked == pages:
                everyone_asked.set()
            async with db.read() as conn:
                pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                await everyone_asked.wait()  # hold it until every page of the wave has asked for one
                return pid

        return set(await asyncio.gather(*(page() for _ in range(pages))))

    try:
        first, second = await wave(), await wave()
    finally:
        await db.dispose()
    # Every page of both waves was served by the pool's own four server processes: none opened (a server
    # process forked) for one page and closed behind it.
    assert len(first | second) == 4
