"""Group commit for new shipments: many API requests, one transaction.

A create must be durable before it is answered, and one transaction per request is what makes the naive
service slow (and, on SQLite, what makes it fail with "database is locked"). Requests hand their rows to one
writer task and wait; the writer inserts everything that is waiting in a single transaction, commits, and then
wakes them all. Under load a batch holds hundreds of shipments; when idle it holds one and adds no delay.

The writer talks to the driver directly (logistics.db batch writers): on SQLite the transaction runs on the
event loop with one executemany per table (or, while another process holds the write lock, in the writer's
thread as five statements over the batch's JSON); on PostgreSQL it is one statement (insert CTEs over the
batch's JSON), so a batch is a single round trip. The request handler builds each shipment as a ShipmentRow,
whose fields name the columns the writers fill; SQLAlchemy's per-value processing and result handling never run
on this path.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import asyncpg
import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics import metrics
from logistics.domain.tables import idempotency_records
from logistics.storage.background import stop_task
from logistics.storage.db import (
    Database,
    DatabaseUnavailable,
    PostgresBatchWriter,
    SqliteBatchWriter,
    WriteConflict,
    sqlite_timestamp,
)

log = logging.getLogger(__name__)


class ShipmentRow(NamedTuple):
    """The columns of `shipments` a create writes, named and ordered as in the table; every other column starts
    NULL, except updated_at (created_at) and last_sequence (1, the creation event), which the writers derive."""

    id: str
    client_id: str
    kind: str
    status: str
    department: str
    window: str
    sender: dict[str, Any] | None  # like recipient and extra; contents is a list (all stored as JSON)
    recipient: dict[str, Any] | None
    contents: list[dict[str, Any]]
    extra: dict[str, Any] | None
    pickup_start: datetime | None  # aware UTC datetimes, like created_at and applicant_expires_at
    pickup_end: datetime | None
    verification_code: str | None
    tracking_code: str
    carrier: str
    request_id: str | None
    created_at: datetime
    applicant_token_hash: str | None
    applicant_expires_at: datetime | None
    due_by: date | None = None  # a Beijing date (0010)
    payment_mode: str | None = None  # monthly | sender_pays (0014)


class IdempotencyClaim(NamedTuple):
    """A keyed create's idempotency record: the first answer, replayed for the same key and body."""

    client_id: str
    key: str
    request_hash: str
    response_body: str


class StoredRecord(NamedTuple):
    """What a replay reads of an idempotency record stored already (or claimed earlier in the same batch)."""

    request_hash: str
    shipment_id: str
    status_code: int
    response_body: str


# The derived columns follow the row's in every writer: (*row, created_at, 1).
SHIPMENT_DERIVED = ("updated_at", "last_sequence")
SHIPMENT_COLUMNS = (*ShipmentRow._fields, *SHIPMENT_DERIVED)
_JSON_FIELDS = ("sender", "recipient", "contents", "extra")
_DATETIME_FIELDS = ("pickup_start", "pickup_end", "created_at", "applicant_expires_at")
_DATE_FIELDS = ("due_by",)
IDEMPOTENCY_COLUMNS = ("client_id", "key", "request_hash", "shipment_id", "status_code", "response_body", "created_at")


def _q(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


_SHIPMENT_INSERT = _q(SHIPMENT_COLUMNS)
_CASE_COLUMNS = ("shipment_id", "position", "case_no", "item_name")
_EVENT_COLUMNS = ("shipment_id", "sequence", "status", "occurred_at", "recorded_at", "source")
_OUTBOX_COLUMNS = ("kind", "shipment_id", "payload", "due_at", "attempts", "request_id", "created_at")

# Both databases get a batch as one JSON parameter: a list of items, each an array of the shipment row's fields
# followed by its cases ([case_no, item_name] pairs) and its idempotency claim's key, request_hash and
# response_body (or null). An array, not an object, keeps the names out of the JSON each statement parses; the
# SQL finds a field by its name's place (_at). The creation event and the carrier order task are derived from
# the shipment.
_ITEM_FIELDS = (*ShipmentRow._fields, "cases", "idempotency")
_CLAIM_FIELDS = ("key", "request_hash", "response_body")  # what an item's JSON holds of its IdempotencyClaim


def _at(name: str) -> int:
    return _ITEM_FIELDS.index(name)


def _claim(value: str, name: str) -> str:
    """SQL for the text of a field of an item's idempotency claim (``value`` is the item's JSON)."""
    return f"{value}->{_at('idempotency')}->>{_CLAIM_FIELDS.index(name)}"


# SQLite in the writer's thread (another process holds the write lock): five statements over json_each(?1).
# With one executemany row per shipment there, every row's sqlite3_step released the GIL and took it back from
# the busy event loop, each hand-over two context switches, a large share of the API's CPU. So a threaded batch is
# five steps, parsed and inserted in C. Timestamps arrive as text in SQLAlchemy's SQLite format
# (_SQLITE_JSON_ITEM). `->>` gives SQL NULL for a JSON null and the JSON text of an object or array, as the JSON
# columns store it.
_SQLITE_SHIPMENTS = (
    f"INSERT INTO shipments ({_SHIPMENT_INSERT}) SELECT "
    + ", ".join([f"value->>{_at(name)}" for name in ShipmentRow._fields] + [f"value->>{_at('created_at')}", "1"])
    + " FROM json_each(?1)"
)
_SQLITE_CASES = (
    f"INSERT INTO shipment_cases ({_q(_CASE_COLUMNS)}) "
    f"SELECT i.value->>{_at('id')}, c.key, c.value->>0, c.value->>1 "
    f"FROM json_each(?1) AS i, json_each(i.value->{_at('cases')}) AS c"
)
_SQLITE_EVENTS = (
    f"INSERT INTO shipment_events ({_q(_EVENT_COLUMNS)}) "
    f"SELECT value->>{_at('id')}, 1, value->>{_at('status')}, value->>{_at('created_at')}, "
    f"value->>{_at('created_at')}, 'api' FROM json_each(?1)"
)
_SQLITE_OUTBOX = (
    f"INSERT INTO outbox ({_q(_OUTBOX_COLUMNS)}) "
    f"SELECT 'order', value->>{_at('id')}, '{{}}', value->>{_at('created_at')}, 0, value->>{_at('request_id')}, "
    f"value->>{_at('created_at')} FROM json_each(?1) WHERE value->>{_at('status')} = 'pending'"
)
_SQLITE_IDEMPOTENCY = (
    f"INSERT INTO idempotency_records ({_q(IDEMPOTENCY_COLUMNS)}) "
    f"SELECT value->>{_at('client_id')}, {_claim('value', 'key')}, {_claim('value', 'request_hash')}, "
    f"value->>{_at('id')}, 201, {_claim('value', 'response_body')}, value->>{_at('created_at')} "
    f"FROM json_each(?1) WHERE json_type(value->{_at('idempotency')}) = 'array'"
)

# SQLite on the event loop (the usual case): one executemany per table. No other thread wants the GIL there, so
# a row's step costs no hand-over, and binding plain values is a third of the CPU of extracting each column
# from the batch's JSON (the largest single cost of a create on SQLite).
_SQLITE_SHIPMENT_ROW = f"INSERT INTO shipments ({_SHIPMENT_INSERT}) VALUES ({', '.join('?' * len(SHIPMENT_COLUMNS))})"
_SQLITE_CASE_ROW = f"INSERT INTO shipment_cases ({_q(_CASE_COLUMNS)}) VALUES (?, ?, ?, ?)"
_SQLITE_EVENT_ROW = f"INSERT INTO shipment_events ({_q(_EVENT_COLUMNS)}) VALUES (?, 1, ?, ?, ?, 'api')"
_SQLITE_OUTBOX_ROW = f"INSERT INTO outbox ({_q(_OUTBOX_COLUMNS)}) VALUES ('order', ?, '{{}}', ?, 0, ?, ?)"
_SQLITE_IDEMPOTENCY_ROW = (
    f"INSERT INTO idempotency_records ({_q(IDEMPOTENCY_COLUMNS)}) VALUES (?, ?, ?, ?, 201, ?, ?)"
)
_SQLITE_EXISTING = (
    f"SELECT {_q(StoredRecord._fields)} FROM idempotency_records "
    'WHERE "client_id" = ? AND "key" = ?'
)

# PostgreSQL: one statement per batch (orjson writes the JSON in one call; an asyncpg array parameter instead
# costs an abstract-base-class check per element). The CTEs run as one statement: the batch commits or fails as
# a whole, and foreign keys are checked at its end, when the shipments exist.


def _pg_value(name: str) -> str:
    n = _at(name)
    if name in _DATETIME_FIELDS:
        return f"(e->>{n})::timestamptz"
    if name in _DATE_FIELDS:
        return f"(e->>{n})::date"
    if name in _JSON_FIELDS:
        return f"nullif(e->{n}, 'null'::jsonb)"  # SQL NULL, as the other writers store None
    return f"e->>{n}"


_PG_SHIPMENT_VALUES = ", ".join([_pg_value(name) for name in ShipmentRow._fields] + [_pg_value("created_at"), "1"])
_PG_INSERT = f"""
WITH items AS (
    SELECT e FROM jsonb_array_elements($1::text::jsonb) AS e
), new_shipments AS (
    INSERT INTO shipments ({_SHIPMENT_INSERT})
    SELECT {_PG_SHIPMENT_VALUES} FROM items
), new_cases AS (
    INSERT INTO shipment_cases ({_q(_CASE_COLUMNS)})
    SELECT i.e->>{_at('id')}, c.n - 1, c.v->>0, c.v->>1
    FROM items i CROSS JOIN LATERAL jsonb_array_elements(i.e->{_at('cases')}) WITH ORDINALITY AS c(v, n)
), new_events AS (
    INSERT INTO shipment_events ({_q(_EVENT_COLUMNS)})
    SELECT e->>{_at('id')}, 1, e->>{_at('status')}, {_pg_value('created_at')}, {_pg_value('created_at')}, 'api'
    FROM items
), new_tasks AS (
    INSERT INTO outbox ({_q(_OUTBOX_COLUMNS)})
    SELECT 'order', e->>{_at('id')}, '{{}}', {_pg_value('created_at')}, 0, e->>{_at('request_id')},
        {_pg_value('created_at')}
    FROM items WHERE e->>{_at('status')} = 'pending'
)
INSERT INTO idempotency_records ({_q(IDEMPOTENCY_COLUMNS)})
SELECT e->>{_at('client_id')}, {_claim('e', 'key')}, {_claim('e', 'request_hash')}, e->>{_at('id')}, 201,
    {_claim('e', 'response_body')}, {_pg_value('created_at')}
FROM items WHERE jsonb_typeof(e->{_at('idempotency')}) = 'array'
"""
_PG_EXISTING = (
    f'SELECT i."client_id", i."key", {", ".join(f"i.{n}" for n in _q(StoredRecord._fields).split(", "))} '
    "FROM idempotency_records i JOIN unnest($1::text[], $2::text[]) AS k(client_id, key) "
    'ON i."client_id" = k.client_id AND i."key" = k.key'
)


@dataclass(slots=True)
class NewShipment:
    shipment: ShipmentRow
    cases: list[tuple[str, str]]  # (case_no, item_name) in order
    idempotency: IdempotencyClaim | None = None
    future: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def idem_key(self) -> tuple[str, str] | None:
        return (self.idempotency.client_id, self.idempotency.key) if self.idempotency else None

    def idempotency_record(self) -> StoredRecord | None:
        """What a replay of this item's key sees."""
        if self.idempotency is None:
            return None
        return StoredRecord(self.idempotency.request_hash, self.shipment.id, 201, self.idempotency.response_body)


@dataclass(frozen=True, slots=True)
class Outcome:
    created: bool
    existing: StoredRecord | None = None  # the stored idempotency record when another request won the key


# A batch that has not committed by then fails its waiters with DatabaseUnavailable (a 503 with Retry-After):
# a database that stopped answering mid-statement (a server stopped without closing its connections, a
# network partition) must not hold requests until the client's own timeout. A request waiting behind it for
# the writer's slot is answered within twice this.
COMMIT_TIMEOUT_SECONDS = 10.0


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 500,
        split_at: int = 16,
        signal_interval: float = 0.1,
        commit_timeout: float = COMMIT_TIMEOUT_SECONDS,
    ) -> None:
        self.db = db
        self.commit_timeout = commit_timeout
        self.max_batch = max_batch
        # When a slot frees and at least split_at requests are waiting, the batch takes half of them. Taking all
        # lets the load fall into step on PostgreSQL: the requests that arrive during one commit all go in the
        # next, while the event loop, with nothing left to parse, sits idle until it comes back; the answers then
        # come back together and the next requests arrive together, and the batches settle into a large and a
        # small one, alternating, with the loop idle part of the time. Halving keeps work on the loop during
        # every commit.
        self.split_at = split_at
        # on_commit (the worker's wake-up: an enqueue of several Redis round trips) runs at most once per
        # signal_interval: under load a batch commits every few milliseconds, and a wake-up per batch costs a
        # noticeable share of the API's CPU. A commit inside the interval is announced at its end, never dropped.
        self.on_commit: Callable[[], None] | None = None
        self.signal_interval = signal_interval
        self._signalled_at = float("-inf")
        self._signal_later: asyncio.TimerHandle | None = None
        self._pending: list[NewShipment] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(1)
        self._writer: SqliteBatchWriter | PostgresBatchWriter | None = None

    async def start(self) -> None:
        self._writer = self.db.batch_writer()
        self._slots = asyncio.Semaphore(self._writer.in_flight)
        self._task = asyncio.create_task(self._run(), name="group-commit")

    @property
    def writer(self) -> SqliteBatchWriter | PostgresBatchWriter | None:
        """The batch writer, once started."""
        return self._writer

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        for task in list(self._batches):  # a batch cut short fails its waiters (see _settle)
            task.cancel()
        await asyncio.gather(*self._batches, return_exceptions=True)
        if self._signal_later is not None:  # a commit still to announce: announce it now
            self._signal_later.cancel()
            self._signal()
        pending, self._pending = self._pending, []
        for item in pending:  # never leave a caller waiting forever
            if not item.future.done():
                item.future.set_exception(RuntimeError("service is shutting down"))
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    async def submit(self, item: NewShipment) -> Outcome:
        if self._task is None:
            raise RuntimeError("service is shutting down")
        self._pending.append(item)
        self._wakeup.set()
        return await item.future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            # While every writer connection is busy, arrivals gather into the next batch.
            await self._slots.acquire()
            take = self.batch_size(len(self._pending))
            batch, self._pending = self._pending[:take], self._pending[take:]
            if not self._pending:
                self._wakeup.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._settle(batch))
            self._batches.add(task)
            task.add_done_callback(self._batch_done)

    def batch_size(self, waiting: int) -> int:
        """How many of ``waiting`` requests the next batch takes (see split_at)."""
        if waiting >= self.split_at:
            waiting = (waiting + 1) // 2
        return min(waiting, self.max_batch)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        self._slots.release()

    async def _settle(self, batch: list[NewShipment]) -> None:
        metrics.COMMIT_BATCH.observe(len(batch))
        try:
            try:
                async with asyncio.timeout(self.commit_timeout):
                    outcomes = await self._commit(batch)
            except TimeoutError:
                raise DatabaseUnavailable(f"no commit within {self.commit_timeout:g}s") from None
        except asyncio.CancelledError:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("service is shutting down"))
            raise
        except Exception as exc:  # the database is down: every waiter gets the error
            log.warning("group_commit_failed", extra={"batch": len(batch), "error": type(exc).__name__})
            outcomes = [exc] * len(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.future.done():
                continue
            if isinstance(outcome, Outcome):
                item.future.set_result(outcome)
            else:
                item.future.set_exception(outcome)
        if any(isinstance(o, Outcome) and o.created for o in outcomes):
            self._committed()

    def _committed(self) -> None:
        if self.on_commit is None or self._signal_later is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._signalled_at + self.signal_interval - loop.time()
        if wait <= 0:
            self._signal()
        else:
            self._signal_later = loop.call_later(wait, self._signal)

    def _signal(self) -> None:
        self._signal_later = None
        self._signalled_at = asyncio.get_running_loop().time()
        if self.on_commit is not None:
            self.on_commit()

    async def _write(self, batch: list[NewShipment]) -> list[Outcome]:
        writer = self._writer
        if isinstance(writer, SqliteBatchWriter):
            return await writer.transaction(lambda conn, threaded: _sqlite_batch(conn, batch, threaded))
        assert writer is not None, "GroupCommitter.start() was not awaited"
        return await writer.run(lambda conn: _postgres_batch(conn, batch))

    async def _commit(self, batch: list[NewShipment]) -> list[Outcome | Exception]:
        try:
            return list(await self._write(batch))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, WriteConflict):
                return [exc]
            # Rare: another process took one of the idempotency keys between our check and our insert, or the
            # database refused a row. Redo the batch one item per transaction so only the items at fault fail.
            log.warning("group_commit_split", extra={"batch": len(batch), "error": type(exc).__name__})
        results: list[Outcome | Exception] = []
        for n, item in enumerate(batch):
            try:
                results.extend(await self._write([item]))
            except WriteConflict as conflict:
                async with self.db.read() as conn:
                    existing = await _existing_records(conn, [item])
                key = item.idem_key
                results.append(Outcome(False, existing[key]) if key is not None and key in existing else conflict)
            except DatabaseUnavailable as down:  # gone meanwhile: the rest would only wait for it again
                results.extend([down] * (len(batch) - n))
                break
            except Exception as failed:  # this item's own fault; the handler answers 500 and logs it
                results.append(failed)
        return results


def _split(
    batch: list[NewShipment], existing: dict[tuple[str, str], StoredRecord]
) -> tuple[list[Outcome], list[NewShipment]]:
    """Each item's outcome, and the items to insert: a key stored already, or claimed earlier in this batch,
    makes a replay instead of a shipment."""
    outcomes: list[Outcome] = []
    fresh: list[NewShipment] = []
    claimed: dict[tuple[str, str], StoredRecord | None] = {}
    for item in batch:
        key = item.idem_key
        if key is not None and key in existing:
            outcomes.append(Outcome(False, existing[key]))
        elif key is not None and key in claimed:  # two requests with one key in the same batch
            outcomes.append(Outcome(False, claimed[key]))
        else:
            if key is not None:
                claimed[key] = item.idempotency_record()
            fresh.append(item)
            outcomes.append(Outcome(True))
    return outcomes, fresh


def _item(item: NewShipment, shipment: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """One element of a batch's JSON (see _ITEM_FIELDS); ``shipment`` replaces the row's values when given."""
    claim = item.idempotency
    values = item.shipment if shipment is None else shipment
    return (*values, item.cases, (claim.key, claim.request_hash, claim.response_body) if claim else None)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


Converters = tuple[tuple[int, Callable[[Any], Any]], ...]


def _only_converted(converters: tuple[Callable[[Any], Any] | None, ...]) -> Converters:
    """The positions that need a converter: a row is copied whole and only those are touched (the hot path)."""
    return tuple((i, f) for i, f in enumerate(converters) if f is not None)


def _converted(row: ShipmentRow, converters: Converters) -> list[Any]:
    values = list(row)
    for i, convert in converters:
        if values[i] is not None:
            values[i] = convert(values[i])
    return values


# What SQLite gets for each of ShipmentRow's fields (None: the value as it is; None values stay None).
# Timestamps go as SQLAlchemy's SQLite DateTime stores them: reads through the models, and the outbox's text
# comparisons of due_at, depend on that exact format. Bound as parameters, the JSON columns go as their text.
_SQLITE_JSON_ITEM = _only_converted(
    tuple(sqlite_timestamp if n in _DATETIME_FIELDS else None for n in ShipmentRow._fields)
)
_SQLITE_PARAMETERS = _only_converted(
    tuple(
        sqlite_timestamp
        if n in _DATETIME_FIELDS
        else _json_text
        if n in _JSON_FIELDS
        else date.isoformat
        if n in _DATE_FIELDS
        else None
        for n in ShipmentRow._fields
    )
)


def _sqlite_batch(conn: sqlite3.Connection, batch: list[NewShipment], threaded: bool) -> list[Outcome]:
    """Inside the SQLite writer's transaction, on the event loop or (``threaded``) in the writer's thread."""
    existing: dict[tuple[str, str], StoredRecord] = {}
    for item in batch:
        key = item.idem_key
        if key is not None and key not in existing:
            found = conn.execute(_SQLITE_EXISTING, key).fetchone()
            if found is not None:
                existing[key] = StoredRecord(*found)
    outcomes, fresh = _split(batch, existing)
    if not fresh:
        return outcomes
    keyed = any(item.idempotency is not None for item in fresh)
    if threaded:
        param = orjson.dumps([_item(item, _converted(item.shipment, _SQLITE_JSON_ITEM)) for item in fresh]).decode()
        for statement in (_SQLITE_SHIPMENTS, _SQLITE_CASES, _SQLITE_EVENTS, _SQLITE_OUTBOX):
            conn.execute(statement, (param,))
        if keyed:
            conn.execute(_SQLITE_IDEMPOTENCY, (param,))
    else:
        for statement, rows in zip(_SQLITE_ROW_INSERTS, _sqlite_rows(fresh), strict=True):
            if rows:
                conn.executemany(statement, rows)
    return outcomes


_SQLITE_ROW_INSERTS = (
    _SQLITE_SHIPMENT_ROW,
    _SQLITE_CASE_ROW,
    _SQLITE_EVENT_ROW,
    _SQLITE_OUTBOX_ROW,
    _SQLITE_IDEMPOTENCY_ROW,
)


def _sqlite_rows(items: list[NewShipment]) -> list[list[tuple[Any, ...]]]:
    """The parameters of each of ``_SQLITE_ROW_INSERTS`` for ``items``."""
    shipment_rows: list[tuple[Any, ...]] = []
    cases: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    for item in items:
        row = item.shipment
        sid, created = row.id, sqlite_timestamp(row.created_at)
        shipment_rows.append((*_converted(row, _SQLITE_PARAMETERS), created, 1))  # SHIPMENT_DERIVED
        cases.extend((sid, position, case_no, name) for position, (case_no, name) in enumerate(item.cases))
        events.append((sid, row.status, created, created))
        if row.status == "pending":
            tasks.append((sid, created, row.request_id, created))
        if (claim := item.idempotency) is not None:
            records.append((claim.client_id, claim.key, claim.request_hash, sid, claim.response_body, created))
    return [shipment_rows, cases, events, tasks, records]


async def _postgres_batch(conn: asyncpg.Connection, batch: list[NewShipment]) -> list[Outcome]:
    existing: dict[tuple[str, str], StoredRecord] = {}
    keys = [item.idem_key for item in batch if item.idem_key is not None]
    if keys:
        rows = await conn.fetch(_PG_EXISTING, [k[0] for k in keys], [k[1] for k in keys])
        existing = {(r["client_id"], r["key"]): StoredRecord(*(r[n] for n in StoredRecord._fields)) for r in rows}
    outcomes, fresh = _split(batch, existing)
    if not fresh:
        return outcomes
    await conn.execute(_PG_INSERT, orjson.dumps([_item(item) for item in fresh]).decode("utf-8"))
    return outcomes


async def _existing_records(conn: AsyncConnection, batch: list[NewShipment]) -> dict[tuple[str, str], StoredRecord]:
    keys = [item.idem_key for item in batch if item.idem_key]
    if not keys:
        return {}
    t = idempotency_records
    rows = await conn.execute(select(t).where(or_(*(and_(t.c.client_id == c, t.c.key == k) for c, k in keys))))
    return {(r.client_id, r.key): StoredRecord(*(getattr(r, n) for n in StoredRecord._fields)) for r in rows}
