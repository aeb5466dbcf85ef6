"""Engines and transactions.

SQLite allows one writer at a time. Rather than let concurrent transactions collide and fail with
"database is locked", every write in this process goes through one connection behind an asyncio lock and
starts with ``BEGIN IMMEDIATE`` (so a transaction never has to upgrade a read lock); while another process
writes, the transaction waits for the lock in its connection's thread, never on the event loop
(``logistics.storage.sqlite_driver``). Reads use a separate pool and, in WAL mode, never block the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from logistics.storage import sqlite_driver

T = TypeVar("T")
log = logging.getLogger(__name__)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable across process crashes in WAL; fsync at checkpoints
    "PRAGMA foreign_keys=ON",
)


WRITE_ISOLATION = "READ COMMITTED"


class DatabaseUnavailable(RuntimeError):
    pass


class WriteConflict(Exception):
    """A raw batch write broke a constraint (a unique key, most likely an Idempotency-Key taken meanwhile)."""


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def protect_sqlite_files(url: str) -> None:
    """The SQLite file holds personal data and webhook secrets: readable by the service's user only.

    SQLite creates its -wal and -shm files with the database file's mode, so creating that file 0600 before
    SQLite opens it covers them too; existing files are narrowed as well. The directory is created 0700.
    """
    database = make_url(url).database
    if make_url(url).get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        for suffix in SQLITE_COMPANIONS:
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").chmod(PRIVATE_FILE_MODE)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create the SQLite database file: {exc.strerror}") from None


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    cargs, cparams = SQLiteDialect_pysqlite().create_connect_args(make_url(url))

    async def connect() -> sqlite_driver.InlineConnection:
        # isolation_level None: transaction control taken from the sqlite3 module, so BEGIN is ours to emit.
        return await sqlite_driver.connect(*cargs, **cparams | {"isolation_level": None})

    engine = create_async_engine(
        url,
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        json_serializer=json_text,
        hide_parameters=True,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exception: BaseException | None) -> None:
        end_transaction_before_close(dbapi_connection)

    return engine


def end_transaction_before_close(dbapi_connection: Any) -> None:
    """Roll back a SQLite connection that SQLAlchemy is about to close after a cancellation.

    A task cancelled inside a transaction (a job's timeout) makes SQLAlchemy invalidate and close its
    connection. But sqlite3 only defers the close of a connection whose statements are not finalized, and
    the cursors live on in the cancelled task's traceback: the "closed" connection kept the write lock until
    some garbage collection, and every writer of every process failed with "database is locked" meanwhile,
    for minutes. A rollback ahead of the close ends the
    transaction whatever becomes of the cursors. It runs at once, or is queued the moment it is called behind a
    call still waiting in the connection's thread (``sqlite_driver``), so a second cancellation cannot take it
    back.
    """
    if dbapi_connection is None:
        return
    try:
        dbapi_connection.rollback()
    except Exception:  # the connection is going away anyway; the rollback was the best effort
        pass


class Database:
    """Engines with ``hide_parameters``: an error's text (logged, and kept as a task's last_error) names the
    statement but never the values it carried, which are personal data."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        if self.is_sqlite:
            protect_sqlite_files(url)
            self.engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
            self._write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            # Connections rest in autocommit, so a read is its statements alone: no BEGIN, no ROLLBACK on
            # return, and a one-round-trip pre-ping (in a transaction the driver's ping is three). A write
            # turns its connection to READ COMMITTED and runs in a transaction (``write``).
            self.engine = create_async_engine(
                url,
                # No overflow: a connection opened beyond the pool is closed on return, so a load just above the
                # pool's size would open a server process per page (fork and catalog warm-up included).
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=60,
                pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
                # Short, index-driven statements: compiling one (JIT, priced by estimates that correlated
                # subqueries inflate) took 125 ms where running it takes 2.
                connect_args={"server_settings": {"jit": "off"}},
                json_serializer=json_text,
                hide_parameters=True,  # errors are logged; the rows they were writing hold personal data
            )
            self._write_engine = self.engine
            self._write_lock = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on success, rolled back on any exception."""
        if self._write_lock is None:
            async with self._write_engine.connect() as conn:
                await conn.execution_options(isolation_level=WRITE_ISOLATION)
                async with conn.begin():
                    yield conn
            return
        async with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """Reads only. On PostgreSQL each statement is its own snapshot, as it is in a READ COMMITTED
        transaction, unless ``snapshot``: then all of them read one (REPEATABLE READ), and ``SET LOCAL`` holds.
        A SQLite read is always one snapshot. Writes go through ``write``; on PostgreSQL a statement here outside
        a snapshot commits as it returns (``commits_each_statement``)."""
        async with self.engine.connect() as conn:
            if snapshot and not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    yield conn
                return
            yield conn

    def commits_each_statement(self, conn: AsyncConnection) -> bool:
        """Whether ``conn``, from ``read``, commits each statement as it returns: on PostgreSQL, outside a
        snapshot (the pool's connections rest in autocommit)."""
        if self.is_sqlite or conn.sync_connection is None:
            return False
        return conn.sync_connection.get_execution_options().get("isolation_level", "AUTOCOMMIT") == "AUTOCOMMIT"

    async def write_alone(self, statement: Any) -> None:
        """One statement, atomic by itself (one multi-row INSERT, say): on PostgreSQL in autocommit, so it costs
        one round trip rather than BEGIN, the statement and COMMIT; on SQLite an ordinary write."""
        if self._write_lock is not None:
            async with self.write() as conn:
                await conn.execute(statement)
            return
        async with self.engine.connect() as conn:
            await conn.execute(statement)

    async def ping(self, timeout: float = 2.0) -> None:
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            raise DatabaseUnavailable(describe_db_error(exc)) from exc

    def batch_writer(self) -> SqliteBatchWriter | PostgresBatchWriter:
        """A writer of its own for the group commit (logistics.storage.group_commit), bypassing SQLAlchemy."""
        if self.is_sqlite:
            assert self._write_lock is not None
            path = make_url(self.url).database
            if not path or path == ":memory:":
                raise ValueError("the group commit needs a SQLite file, not an in-memory database")
            return SqliteBatchWriter(path, self._write_lock)
        return PostgresBatchWriter(self._write_engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()


def sqlite_timestamp(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (naive UTC text), so reads through the models see it.

    isoformat is twice as fast as strftime and gives the same "YYYY-MM-DD HH:MM:SS.ffffff" once cut."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class SqliteBatchWriter:
    """A sqlite3 connection of its own for the group commit: one whole write transaction per call.

    Through SQLAlchemy every statement is several driver calls (BEGIN, a lookup, five inserts, COMMIT); here a
    batch is one. It runs on the event loop like every other SQLite call in this process (see
    ``logistics.storage.sqlite_driver``), unless another process holds the write lock: then the transaction runs in
    this writer's thread, which waits for the lock with the busy timeout while the loop goes on. It takes the
    Database's write lock, so this process still has one writer at a time.
    """

    in_flight = 1  # SQLite has one writer at a time

    def __init__(self, path: str, lock: asyncio.Lock, *, checkpoint_interval: float = 0.5) -> None:
        self.path = path
        self._lock = lock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")
        self._conn: sqlite3.Connection | None = None
        # Transactions handed to the thread and finished there, each counted by one thread only: one cancelled
        # while it waits for the lock still runs, and the next must not start on the loop meanwhile.
        self._handed = 0
        self._finished = 0
        # This connection never checkpoints as it commits (wal_autocheckpoint=0): SQLite's automatic checkpoint
        # copies the WAL into the database file and syncs both, and on the event loop that stops every
        # request while it runs, leaving the loop's core partly idle under load.
        # Checkpoints run in a thread of their own instead (see checkpoint), one at a time, at
        # most every checkpoint_interval seconds, started by a commit.
        self.checkpoint_interval = checkpoint_interval
        self._checkpointed_at: float | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None

    async def transaction(self, work: Callable[[sqlite3.Connection, bool], T]) -> T:
        """Run ``work`` in ``BEGIN IMMEDIATE … COMMIT`` (rolled back if it raises). Its second argument says
        whether it runs in the writer's thread, where each call that gives up the GIL must win it back from the
        busy event loop: there, fewer and larger statements are cheaper."""
        async with self._lock:
            result = await self._transaction(work)
        self._checkpoint_soon()
        return result

    async def _transaction(self, work: Callable[[sqlite3.Connection, bool], T]) -> T:
        if self._handed == self._finished:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")  # no busy timeout: fails at once if another process writes
            except sqlite3.OperationalError as exc:
                if not sqlite_driver.is_busy(exc):
                    raise DatabaseUnavailable(describe_db_error(exc)) from exc
            else:
                return self._complete(conn, work, False)
        self._handed += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._waiting, work)

    def _checkpoint_soon(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._checkpointed_at is None:
            self._checkpointed_at = now
        elif self._checkpointing is None and now - self._checkpointed_at >= self.checkpoint_interval:
            self._checkpointed_at = now
            self._checkpointing = asyncio.create_task(self._checkpoint_in_background(), name="sqlite-checkpoint")

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file, in the checkpoint thread. First while batches go on
        committing: the bulk of the copying and syncing. Then, holding the write lock, what they added
        meanwhile (a few pages): caught up, the next transaction starts the WAL again from its beginning."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._checkpointer, self._checkpoint_in_thread)
        async with self._lock:
            await loop.run_in_executor(self._checkpointer, self._checkpoint_in_thread)

    async def _checkpoint_in_background(self) -> None:
        try:
            await self.checkpoint()
        except Exception as exc:  # the database went away; the next commit says so to its callers
            log.warning("sqlite_checkpoint_failed", extra={"error": describe_db_error(exc)})
        finally:
            self._checkpointing = None

    def _checkpoint_in_thread(self) -> None:
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # PASSIVE: never waits for another process's readers or writer; what it cannot copy now, the next
        # checkpoint will.
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @property
    def waits(self) -> int:
        """How many transactions were handed to the thread to wait for another process's write lock."""
        return self._handed

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint_interval
            self._conn = conn
        return self._conn

    def _waiting(self, work: Callable[[sqlite3.Connection, bool], T]) -> T:
        """In the thread: the whole transaction, waiting for the write lock with the busy timeout."""
        try:
            try:
                conn = self._connection()
                with sqlite_driver.waiting_for_locks(conn):
                    conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full or gone
                raise DatabaseUnavailable(describe_db_error(exc)) from exc
            return self._complete(conn, work, True)
        finally:
            self._finished += 1

    def _complete(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection, bool], T], threaded: bool) -> T:
        """``work`` and COMMIT in the transaction just begun, or ROLLBACK."""
        try:
            try:
                result = work(conn, threaded)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result
        except sqlite3.IntegrityError as exc:
            raise WriteConflict(describe_db_error(exc)) from exc
        except sqlite3.OperationalError as exc:  # disk full or gone
            raise DatabaseUnavailable(describe_db_error(exc)) from exc

    async def close(self) -> None:
        if self._checkpointing is not None:  # let it finish before its connection is closed
            await asyncio.shield(self._checkpointing)

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)


# Errors after which a connection cannot be trusted: the server went away, restarted or killed the session.
_PG_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    # The connection is mid-way through another exchange: the server's FATAL "terminating connection" at a
    # shutdown, read while the connection sat idle here, leaves it consuming that error (seen in the chaos run).
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


class PostgresBatchWriter:
    """asyncpg connections kept for the group commit, used directly rather than through SQLAlchemy.

    They come from the engine's pool (same connect arguments and type codecs) and stay checked out, so a batch
    pays neither the pool's pre-ping nor its reset-on-return round trip. One connection per batch in flight
    (see GroupCommitter.in_flight): while one batch waits for its commit's WAL flush, the next is on its way.
    A connection that fails is dropped; the next batch takes a fresh one.
    """

    # One batch at a time: what arrives meanwhile makes the next batch. Two in flight halve the batches, and the
    # server's work per shipment (a statement, a commit) rises with it on the cores the API shares, so creates
    # on PostgreSQL are slower with two.
    in_flight = 1

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._idle: list[AsyncConnection] = []
        self._busy: set[AsyncConnection] = set()

    async def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        conn, driver = await self._checkout()
        try:
            result = await work(driver)
        except asyncpg.IntegrityConstraintViolationError as exc:
            self._checkin(conn)
            raise WriteConflict(describe_db_error(exc)) from exc
        except _PG_CONNECTION_ERRORS as exc:
            await self._discard(conn)
            raise DatabaseUnavailable(describe_db_error(exc)) from exc
        except asyncpg.PostgresError:  # the server refused this statement; the connection is fine
            self._checkin(conn)
            raise
        except BaseException:  # cancelled mid-statement, or a bug: the connection's state is unknown
            await self._discard(conn)
            raise
        self._checkin(conn)
        return result

    async def _checkout(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        while self._idle:
            conn = self._idle.pop()
            driver = (await conn.get_raw_connection()).driver_connection
            if not driver.is_closed():
                self._busy.add(conn)
                return conn, driver
            await self._discard(conn)
        try:
            conn = await self.engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
        except Exception as exc:  # whatever the pool or driver raise while connecting means "down"
            raise DatabaseUnavailable(describe_db_error(exc)) from exc
        self._busy.add(conn)
        return conn, driver

    def _checkin(self, conn: AsyncConnection) -> None:
        self._busy.discard(conn)
        self._idle.append(conn)

    async def _discard(self, conn: AsyncConnection) -> None:
        self._busy.discard(conn)
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        for conn in list(self._busy):  # left by a cancelled batch
            await self._discard(conn)


# PostgreSQL's answers when another transaction was in the way: deadlock detected, serialization failure, lock
# not available. The transaction was rolled back whole, and the same work succeeds when tried again.
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_lock_conflict(exc: BaseException) -> bool:
    """Did ``exc`` end a transaction only because another one held what it needed (worth retrying at once)?"""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    # SQLite: still locked by another process when the busy timeout ran out.
    return isinstance(orig, sqlite3.OperationalError) and sqlite_driver.is_busy(orig)


# SQLSTATE classes and codes meaning "the server cannot serve now", not "this statement is wrong": connection
# exceptions (08…), administrator or crash shutdown and "starting up / shutting down" (57P01–57P03), too many
# connections (53300).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite's words for a file it cannot open, read or lock (a deleted directory, an unreadable file, a full disk).
_SQLITE_UNAVAILABLE = ("unable to open", "disk i/o error", "readonly database", "database or disk is full",
                       "database is locked", "file is not a database", "attempt to write a readonly")


def is_unavailable(exc: BaseException) -> bool:
    """Does ``exc`` mean the database cannot serve right now (down, restarting, shutting down, out of
    connections, its file unreadable), so the request is worth retrying later, rather than a bug of ours?"""
    if isinstance(exc, (DatabaseUnavailable, OSError, TimeoutError, sa_exc.TimeoutError, *_PG_CONNECTION_ERRORS)):
        return True  # sa_exc.TimeoutError: no pooled connection came free in time
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        cause = getattr(orig, "__cause__", None)
        if isinstance(cause, _PG_CONNECTION_ERRORS) or isinstance(orig, _PG_CONNECTION_ERRORS):
            return True
        sqlstate = str(getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None) or "")
        if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            return True
        if isinstance(orig, sqlite3.OperationalError | sqlite3.DatabaseError):
            return any(words in str(orig).lower() for words in _SQLITE_UNAVAILABLE)
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return any(words in str(exc).lower() for words in _SQLITE_UNAVAILABLE)
    return False


def describe_db_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text_ = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text_[:300]
