"""Webhook delivery: the ``webhook`` task posts a shipment's deliveries, oldest first, one attempt at a time.

One task per shipment (see ``events.ensure_webhook_task``) gives order without head-of-line blocking: delivery
n+1 waits for n to succeed or give up, while every other shipment has its own task and keeps flowing. The
retry schedule lives in the database (the delivery's ``next_attempt_at`` and the task's ``due_at``): arq job
keys expire after a day and Redis may be flushed, the database stays. Decisions about a shipment's deliveries
are taken under its row lock, the same lock ``emit`` and replays take, so a task never finishes while a new
delivery is being added.

The per-delivery bookkeeping is what bounds throughput (the HTTP client is shared with a bare POST loop), so
the hot path reads only the columns it uses, decodes payloads with orjson, and writes attempts and outcomes
through the driver's executemany, a few statements per wave of results whatever its size or mix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Text, delete, func, select, type_coerce, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics import metrics
from logistics.domain.events import WEBHOOK_TASK, lock_shipment_ids, webhook_body
from logistics.domain.tables import clients, outbox, utcnow, webhook_deliveries
from logistics.jobs.runner import Runtime, handles, handles_batch
from logistics.storage.db import sqlite_timestamp
from logistics.storage.outbox import Task, retry_later
from webhooks import (
    DEFAULT_SCHEDULE,
    AddressPolicy,
    AttemptResult,
    Decision,
    Next,
    RetrySchedule,
    Sender,
    classify,
    decide,
)

log = logging.getLogger("logistics.webhooks")

SENDER = "webhook_sender"
CLOCK = "clock"  # () -> aware datetime; tests put a controllable clock here
RNG = "webhook_rng"
SCHEDULE = "webhook_schedule"
# A response body is a diagnostic for the client, not an archive.
RESPONSE_KEEP_CHARS = 2000
ERROR_KEEP_CHARS = 1000
# One run sends at most this many deliveries, then lets other shipments' tasks have the worker.
MAX_PER_RUN = 50
# How long results wait to be stored together (they are stored before the task is settled, whatever happens).
WAVE_SECONDS = 0.005


def setup(rt: Runtime) -> None:
    settings = rt.settings
    policy = AddressPolicy(allow_loopback=settings.webhook_allow_loopback, allow_cidrs=settings.webhook_allow_cidrs)
    rt.services.setdefault(SENDER, Sender(policy))


def _now(rt: Runtime) -> datetime:
    clock: Callable[[], datetime] = rt.services.get(CLOCK, utcnow)
    return clock()


def _rng(rt: Runtime) -> random.Random:
    rng = rt.services.get(RNG)
    if rng is None:
        rng = rt.services[RNG] = random.Random()
    return rng


@dataclass(slots=True)
class _Endpoint:
    """A client's webhook endpoint as read when planning, shared by all of the client's deliveries in a batch."""

    client_id: str
    url: str | None
    secret: str
    previous: str | None
    previous_until: datetime | None
    disabled: bool
    failing: bool  # kept current by this batch's own writes, so a recovery after a failure clears the clock

    def secrets(self, now: datetime) -> list[str]:
        if self.previous and self.previous_until is not None and self.previous_until > now:
            return [self.secret, self.previous]
        return [self.secret]


@dataclass(slots=True)
class _Run:
    """One shipment's webhook task in a batch: its pending deliveries, oldest first, as read when planning."""

    task: Task
    queue: list[Row[Any]]
    endpoint: _Endpoint
    sent: int = 0  # how many of ``queue`` were delivered


@dataclass(slots=True)
class _Sent:
    delivery: Row[Any]
    endpoint: _Endpoint
    result: AttemptResult
    at: datetime


@dataclass(slots=True)
class _Disabled:
    client_id: str
    reason: str
    skipped: int


@dataclass(slots=True)
class _Batch:
    """What a batch run shares: results not yet stored, and the clients whose endpoints were disabled."""

    base_url: str
    sent: list[_Sent] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    flushing: asyncio.Task[None] | None = None
    closing: bool = False  # sending is over: the closing transaction stores what is left
    gathering: bool = False  # the flusher waits for a wave and has taken nothing yet


# The columns sending and storing use, as the driver hands them out: the payload as its JSON text (orjson
# decodes it far faster than the JSON type's stdlib decoder, which would be the largest single cost of planning)
# and the due time as SQLite's text or PostgreSQL's aware datetime (see ``_aware``).
_QUEUE = select(
    webhook_deliveries.c.id,
    webhook_deliveries.c.client_id,
    webhook_deliveries.c.shipment_id,
    webhook_deliveries.c.attempts,
    type_coerce(webhook_deliveries.c.next_attempt_at, Text).label("next_attempt_at"),
    webhook_deliveries.c.last_error,
    type_coerce(webhook_deliveries.c.payload, Text).label("payload"),
)
_HEADS = select(
    webhook_deliveries.c.id,
    webhook_deliveries.c.shipment_id,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.last_error,
)
_ENDPOINTS = select(
    clients.c.id,
    clients.c.webhook_url,
    clients.c.webhook_secret,
    clients.c.webhook_secret_previous,
    clients.c.webhook_previous_until,
    clients.c.webhook_disabled_at,
    clients.c.webhook_failing_since,
)


def _aware(value: str | datetime | None) -> datetime | None:
    """A due time read without the column type: SQLite's naive UTC text, or the driver's datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _decode(payload: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    try:
        decoded: dict[str, Any] = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # Text orjson refuses but the column's own decoder read (e.g. NaN): never fail a delivery over speed.
        decoded = json.loads(payload)
    return decoded


async def _attempt(rt: Runtime, batch: _Batch, endpoint: _Endpoint, head: Row[Any], now: datetime) -> AttemptResult:
    sender: Sender = rt.services[SENDER]
    body = orjson.dumps(webhook_body(_decode(head.payload), batch.base_url), option=orjson.OPT_SORT_KEYS)
    try:
        return await sender.send(endpoint.url or "", head.id, body, endpoint.secrets(now))
    except ValueError as exc:
        # A stored secret the signer refuses: nothing a retry fixes by itself, but it must show up as a failed
        # attempt (and eventually disable the endpoint) rather than crash the task over and over.
        error = f"cannot sign: {exc}"
        return AttemptResult(
            status=None,
            latency_ms=0.0,
            error=error,
            response_body=b"",
            outcome=classify(None, error=error),
            retry_after=None,
            blocked=False,
            timestamp=int(now.timestamp()),
        )


@lru_cache(maxsize=32)
def _driver_sql(dialect: str, sql: str) -> str:
    """``sql`` written with ``?`` markers, in the driver's own parameter style."""
    if dialect == "sqlite":
        return sql
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


async def _execute_many(conn: AsyncConnection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """One statement, many parameter sets, straight through the driver: no per-value type processing, so
    datetimes must come as ``_stamp`` made them."""
    if rows:
        await conn.exec_driver_sql(_driver_sql(conn.dialect.name, sql), rows)


def _stamp(sqlite: bool, value: datetime | None) -> Any:
    """A datetime as the column type would store it: on SQLite SQLAlchemy's naive UTC text (what the models read
    back and what the SQL comparisons on due times compare with), else the aware datetime itself."""
    if value is None or not sqlite:
        return value
    return sqlite_timestamp(value)


class _AttemptRow(NamedTuple):
    """A ``webhook_attempts`` row, in ``_INSERT_ATTEMPT``'s order."""

    delivery_id: str
    attempted_at: Any  # as ``_stamp`` made it
    status_code: int | None
    latency_ms: float
    error: str | None
    response_body: str | None


_INSERT_ATTEMPT = (
    "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_body)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class _DeliveredRow(NamedTuple):
    """``_SET_DELIVERED``'s parameters."""

    attempts: int
    last_status_code: int | None
    delivered_at: Any  # as ``_stamp`` made it
    delivery_id: str


_SET_DELIVERED = (
    "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, next_attempt_at = NULL,"
    " last_status_code = ?, last_error = NULL, delivered_at = ? WHERE id = ?"
)


class _FailedRow(NamedTuple):
    """``_SET_FAILED``'s parameters."""

    status: str
    attempts: int
    next_attempt_at: Any  # as ``_stamp`` made it
    last_status_code: int | None
    last_error: str
    delivery_id: str


# Only a pending delivery moves on: one skipped meanwhile (endpoint disabled) stays skipped.
_SET_FAILED = (
    "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?,"
    " last_error = ? WHERE id = ? AND status = 'pending'"
)
# The delivery's status after a failed attempt, by what comes next.
_FAILED_STATUS = {Next.RETRY: "pending", Next.GIVE_UP: "failed", Next.ENDPOINT_GONE: "skipped"}


class _Disable(NamedTuple):
    """An endpoint to disable: when, and why (what the alert and the skipped deliveries say)."""

    at: datetime
    reason: str


async def _disable_in(conn: AsyncConnection, client_id: str, now: datetime, reason: str) -> int | None:
    """Disable the endpoint in the caller's transaction, keeping what was pending as ``skipped`` for re-enabling;
    returns how many were skipped, or None when someone else disabled it first (and raised the alert)."""
    changed = await conn.execute(
        update(clients)
        .where(clients.c.id == client_id, clients.c.webhook_disabled_at.is_(None))
        .values(webhook_disabled_at=now)
    )
    if changed.rowcount != 1:
        return None
    skipped = await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.client_id == client_id, webhook_deliveries.c.status == "pending")
        .values(status="skipped", next_attempt_at=None, last_error=f"endpoint disabled: {reason}")
    )
    return int(skipped.rowcount)


def _announce(disabled: list[_Disabled]) -> None:
    """After the commit: the alert and the metric for each endpoint disabled."""
    for item in disabled:
        metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
        # The alert names the client and the reason only: URLs can carry tokens, payloads belong to the client.
        log.error(
            "webhook_endpoint_disabled",
            extra={"client_id": item.client_id, "reason": item.reason, "skipped_deliveries": item.skipped},
        )


async def disable_endpoint(rt: Runtime, client_id: str, now: datetime, reason: str) -> bool:
    """Stop sending to a client's endpoint; what was still pending is kept as ``skipped`` for re-enabling."""
    async with rt.db.write() as conn:
        skipped = await _disable_in(conn, client_id, now, reason)
    if skipped is None:
        return False
    _announce([_Disabled(client_id=client_id, reason=reason, skipped=skipped)])
    return True


async def _track_health(conn: AsyncConnection, sent: list[_Sent]) -> dict[str, datetime | None]:
    """Keep each endpoint's failing clock: a success clears it, the first failure after a success starts it
    (a 410 does neither: it disables the endpoint outright). Returns, for the endpoints that failed in this
    wave, when their current run of failures began."""
    recovered = {s.endpoint.client_id: s.endpoint for s in sent if s.result.outcome.delivered and s.endpoint.failing}
    if recovered:
        await conn.execute(
            update(clients)
            .where(clients.c.id.in_(sorted(recovered)), clients.c.webhook_failing_since.is_not(None))
            .values(webhook_failing_since=None)
        )
        for endpoint in recovered.values():
            endpoint.failing = False
    first_failure: dict[str, datetime] = {}
    for s in sent:
        outcome = s.result.outcome
        if not outcome.delivered and not outcome.disable_endpoint:
            first_failure.setdefault(s.endpoint.client_id, s.at)
    if not first_failure:
        return {}
    for client_id in sorted(first_failure):
        await conn.execute(
            update(clients)
            .where(clients.c.id == client_id, clients.c.webhook_failing_since.is_(None))
            .values(webhook_failing_since=first_failure[client_id])
        )
    rows = await conn.execute(
        select(clients.c.id, clients.c.webhook_failing_since).where(clients.c.id.in_(sorted(first_failure)))
    )
    for s in sent:
        if s.endpoint.client_id in first_failure and not s.result.outcome.delivered:
            s.endpoint.failing = True
    return {r.id: r.webhook_failing_since for r in rows}


def _decisions(rt: Runtime, sent: list[_Sent], failing_since: dict[str, datetime | None]) -> list[Decision]:
    """Each attempt's consequence, in the order the attempts were made (the jitter is drawn in that order, as
    when they were stored one by one)."""
    schedule: RetrySchedule = rt.services.get(SCHEDULE, DEFAULT_SCHEDULE)
    limit = timedelta(hours=rt.settings.webhook_disable_after_hours)
    rng = _rng(rt)
    return [
        decide(
            s.result.outcome,
            s.delivery.attempts + 1,
            failing_since=failing_since.get(s.endpoint.client_id),
            now=s.at,
            rng=rng,
            schedule=schedule,
            disable_after=limit,
        )
        for s in sent
    ]


def _attempt_row(s: _Sent, stamp: Any) -> _AttemptRow:
    result = s.result
    return _AttemptRow(
        delivery_id=s.delivery.id,
        attempted_at=stamp,
        status_code=result.status,
        latency_ms=round(result.latency_ms, 2),
        error=result.error[:ERROR_KEEP_CHARS] if result.error else None,
        response_body=result.response_text[:RESPONSE_KEEP_CHARS] or None,
    )


def _failed_row(s: _Sent, decision: Decision, sqlite: bool) -> _FailedRow:
    return _FailedRow(
        status=_FAILED_STATUS[decision.next],
        attempts=s.delivery.attempts + 1,
        next_attempt_at=_stamp(sqlite, decision.retry_at),
        last_status_code=s.result.status,
        last_error=(s.result.error or s.result.outcome.reason)[:ERROR_KEEP_CHARS],
        delivery_id=s.delivery.id,
    )


async def _write_attempts(conn: AsyncConnection, sent: list[_Sent], decisions: list[Decision]) -> None:
    """Every attempt row in one executemany, every delivery's new state in one per outcome."""
    sqlite = conn.dialect.name == "sqlite"
    stamps = [_stamp(sqlite, s.at) for s in sent]
    await _execute_many(conn, _INSERT_ATTEMPT, [_attempt_row(s, at) for s, at in zip(sent, stamps, strict=True)])
    delivered: list[_DeliveredRow] = []
    failed: list[_FailedRow] = []
    for s, decision, stamp in zip(sent, decisions, stamps, strict=True):
        if decision.next is Next.DELIVERED:
            delivered.append(
                _DeliveredRow(
                    attempts=s.delivery.attempts + 1,
                    last_status_code=s.result.status,
                    delivered_at=stamp,
                    delivery_id=s.delivery.id,
                )
            )
        else:
            failed.append(_failed_row(s, decision, sqlite))
    await _execute_many(conn, _SET_DELIVERED, delivered)
    await _execute_many(conn, _SET_FAILED, failed)


async def _disable_endpoints(
    conn: AsyncConnection, sent: list[_Sent], decisions: list[Decision], batch: _Batch
) -> list[_Disabled]:
    """Disable the endpoints the decisions gave up on, each for the first reason given in this wave."""
    disable: dict[str, _Disable] = {}
    for s, decision in zip(sent, decisions, strict=True):
        if decision.disable_reason is not None:
            disable.setdefault(s.endpoint.client_id, _Disable(at=s.at, reason=decision.disable_reason))
    disabled: list[_Disabled] = []
    for client_id, (at, reason) in disable.items():
        batch.disabled.add(client_id)
        skipped = await _disable_in(conn, client_id, at, reason)
        if skipped is not None:
            disabled.append(_Disabled(client_id=client_id, reason=reason, skipped=skipped))
    return disabled


async def _store(conn: AsyncConnection, rt: Runtime, sent: list[_Sent], batch: _Batch) -> list[_Disabled]:
    """Store a wave of attempts and their consequences. Endpoints to disable are disabled in the same
    transaction; the alerts are the caller's to raise after the commit. Client rows are written before delivery
    rows, the order ``_disable_in`` takes them in, so two workers' transactions cannot deadlock on PostgreSQL."""
    failing_since = await _track_health(conn, sent)
    decisions = _decisions(rt, sent, failing_since)
    await _write_attempts(conn, sent, decisions)
    return await _disable_endpoints(conn, sent, decisions, batch)


async def _pending(conn: AsyncConnection, shipment_ids: list[str]) -> dict[str, list[Row[Any]]]:
    """The shipments' pending deliveries, oldest first: one query for all."""
    rows = await conn.execute(
        _QUEUE.where(
            webhook_deliveries.c.shipment_id.in_(shipment_ids), webhook_deliveries.c.status == "pending"
        ).order_by(webhook_deliveries.c.shipment_id, webhook_deliveries.c.position)
    )
    found: dict[str, list[Row[Any]]] = {}
    for row in rows:
        found.setdefault(row.shipment_id, []).append(row)
    return found


async def _endpoints(conn: AsyncConnection, client_ids: set[str]) -> dict[str, _Endpoint]:
    """The clients' endpoints, read once per batch rather than joined onto every delivery."""
    if not client_ids:
        return {}
    rows = await conn.execute(_ENDPOINTS.where(clients.c.id.in_(sorted(client_ids))))
    return {
        r.id: _Endpoint(
            client_id=r.id,
            url=r.webhook_url,
            secret=r.webhook_secret,
            previous=r.webhook_secret_previous,
            previous_until=r.webhook_previous_until,
            disabled=r.webhook_disabled_at is not None,
            failing=r.webhook_failing_since is not None,
        )
        for r in rows
    }


async def _finish_all(conn: AsyncConnection, tasks: list[Task]) -> None:
    """``finish`` for many tasks, one statement per claim."""
    by_token: dict[str, list[int]] = {}
    for task in tasks:
        by_token.setdefault(task.claim_token, []).append(task.id)
    for token, ids in by_token.items():
        await conn.execute(delete(outbox).where(outbox.c.id.in_(ids), outbox.c.claim_token == token))


async def _plan_batch(conn: AsyncConnection, tasks: list[Task], now: datetime) -> list[_Run]:
    """Under the shipments' locks: what each task may send now. Tasks with nothing to send are settled here."""
    sids = sorted({str(t.shipment_id) for t in tasks})
    await lock_shipment_ids(conn, sids)
    first_ids = await conn.execute(
        select(func.min(outbox.c.id))
        .where(outbox.c.kind == WEBHOOK_TASK, outbox.c.shipment_id.in_(sids))
        .group_by(outbox.c.shipment_id)
    )
    first = set(first_ids.scalars())
    pending = await _pending(conn, sids)
    endpoints = await _endpoints(conn, {queue[0].client_id for queue in pending.values()})
    runs: list[_Run] = []
    done: list[Task] = []
    for task in tasks:
        sid = str(task.shipment_id)
        queue = pending.get(sid, [])
        if task.id not in first or not queue:
            # Two tasks for one shipment would send in parallel and break the order: the older one does the work.
            done.append(task)
            continue
        head = queue[0]
        endpoint = endpoints[head.client_id]
        if not endpoint.url or endpoint.disabled:
            reason = "endpoint disabled" if endpoint.url else "no webhook URL"
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.shipment_id == sid, webhook_deliveries.c.status == "pending")
                .values(status="skipped", next_attempt_at=None, last_error=reason)
            )
            done.append(task)
        elif (due := _aware(head.next_attempt_at)) is not None and due > now:
            await retry_later(conn, task, due, f"{head.id} waits: {head.last_error or 'scheduled'}")
        else:
            runs.append(_Run(task=task, queue=queue[:MAX_PER_RUN], endpoint=endpoint))
    await _finish_all(conn, done)
    return runs


async def _flush(rt: Runtime, batch: _Batch) -> None:
    """Store the results gathered so far, a wave per transaction, until sending is over."""
    while batch.sent and not batch.closing:
        # Let a few milliseconds' worth of results gather: a transaction costs more than the rows in it.
        batch.gathering = True
        try:
            await asyncio.sleep(WAVE_SECONDS)
        finally:
            batch.gathering = False
        if batch.closing:
            return  # the closing transaction stores the rest together with the settlement
        sent, batch.sent = batch.sent, []
        async with rt.db.write() as conn:
            disabled = await _store(conn, rt, sent, batch)
        _announce(disabled)


def _stored_later(rt: Runtime, batch: _Batch, item: _Sent) -> None:
    batch.sent.append(item)
    flushing = batch.flushing
    # A failed store is not retried by a new flusher: its error must reach the close, which fails the batch.
    if flushing is None or (flushing.done() and not flushing.cancelled() and flushing.exception() is None):
        batch.flushing = asyncio.create_task(_flush(rt, batch))


async def _send_next(rt: Runtime, run: _Run, batch: _Batch, deadline: float) -> bool:
    """Send the run's next delivery; True when it was delivered and another one waits behind it.

    The first failure ends this shipment's run (its retry schedule decides when the task is due again). The
    result is stored in a wave shared by the whole batch. A delivery sent again after a crash before its result
    was stored is a duplicate, which receivers dedupe by webhook-id; none is ever sent before the one ahead of it.
    """
    endpoint, head = run.endpoint, run.queue[run.sent]
    now = _now(rt)
    if time.monotonic() > deadline or endpoint.client_id in batch.disabled:
        return False
    due = _aware(head.next_attempt_at)
    if due is not None and due > now:
        return False  # a replayed older delivery went ahead of one that is waiting for its retry
    result = await _attempt(rt, batch, endpoint, head, now)
    _stored_later(rt, batch, _Sent(delivery=head, endpoint=endpoint, result=result, at=_now(rt)))
    if result.outcome.delivered:
        run.sent += 1
        return run.sent < len(run.queue)
    log.info(
        "webhook_attempt_failed",
        extra={
            "delivery_id": head.id,
            "shipment_id": head.shipment_id,
            "status": result.status,
            "outcome": result.outcome.kind.value,
            "blocked": result.blocked,
        },
    )
    if result.outcome.disable_endpoint:
        batch.disabled.add(endpoint.client_id)
    return False


async def _lane(rt: Runtime, ready: deque[_Run], batch: _Batch, deadline: float) -> None:
    """Send the ready runs' next deliveries, one at a time, until none is ready. A run is either waiting in
    ``ready`` or being sent by exactly one lane, so a shipment's deliveries go one after the other; and a run
    goes to the back of the line after each delivery, so one shipment's backlog never holds up the others."""
    while ready:
        run = ready.popleft()
        if await _send_next(rt, run, batch, deadline):
            ready.append(run)


async def _settle_in(conn: AsyncConnection, runs: list[_Run], now: datetime) -> None:
    """Under the shipments' locks (taken by the caller): finish each task with nothing left to send, or make it
    due again when its next delivery is (at once if new deliveries came meanwhile or the run stopped early).
    The re-read is needed even after a run sent everything: ``emit`` may have added a delivery meanwhile, and
    the task about to be deleted is the only one that would ever send it."""
    heads: dict[str, Row[Any]] = {}
    rows = await conn.execute(
        _HEADS.where(
            webhook_deliveries.c.shipment_id.in_(sorted({str(r.task.shipment_id) for r in runs})),
            webhook_deliveries.c.status == "pending",
        ).order_by(webhook_deliveries.c.shipment_id, webhook_deliveries.c.position)
    )
    for row in rows:
        heads.setdefault(row.shipment_id, row)
    done: list[Task] = []
    for run in runs:
        head = heads.get(str(run.task.shipment_id))
        if head is None:
            done.append(run.task)
            continue
        due = head.next_attempt_at if head.next_attempt_at is not None and head.next_attempt_at > now else now
        await retry_later(conn, run.task, due, f"{head.id} waits: {head.last_error or 'more to send'}")
    await _finish_all(conn, done)


async def _close(rt: Runtime, batch: _Batch, runs: list[_Run]) -> None:
    """Once sending is over: wait for the wave being stored, then store the rest and settle ``runs`` in one
    transaction (the batch's last; on the error path ``runs`` is empty and only the results are stored)."""
    batch.closing = True
    flushing = batch.flushing
    if flushing is not None:
        if batch.gathering:
            flushing.cancel()  # it holds nothing yet; waiting out its wave would only delay the settlement
        await asyncio.wait([flushing])
        if not flushing.cancelled():
            flushing.result()  # a failed store fails the batch: the runner retries its tasks later
    if not batch.sent and not runs:
        return
    sent, batch.sent = batch.sent, []
    async with rt.db.write() as conn:
        if runs:
            # Locks first, then client and delivery rows: the order every other writer of them takes.
            await lock_shipment_ids(conn, {str(r.task.shipment_id) for r in runs})
        disabled = await _store(conn, rt, sent, batch) if sent else []
        if runs:
            await _settle_in(conn, runs, _now(rt))
    _announce(disabled)


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even when this task is cancelled meanwhile (what was sent must be stored), then
    let the cancellation through."""
    running = asyncio.ensure_future(work)
    cancelled = False
    while not running.done():
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            cancelled = True
    running.result()
    if cancelled:
        raise asyncio.CancelledError


async def _stop_and_store(rt: Runtime, batch: _Batch, sending: list[asyncio.Task[None]]) -> None:
    for task in sending:
        task.cancel()
    await asyncio.gather(*sending, return_exceptions=True)
    await _close(rt, batch, [])


@handles_batch(WEBHOOK_TASK)
async def deliver_batch(rt: Runtime, tasks: list[Task]) -> None:
    """Many shipments' webhooks at once: one transaction plans them all, the shipments send concurrently (each
    in its own order), results are stored in shared waves and the last wave's transaction settles the tasks."""
    # Sending stops at half the lease, so the results are stored while the lease surely holds, even should a
    # renewal fail (the runner renews the leases while a claim runs).
    deadline = time.monotonic() + rt.settings.lease_seconds / 2
    async with rt.db.write() as conn:
        runs = await _plan_batch(conn, tasks, _now(rt))
    if not runs:
        return
    batch = _Batch(rt.settings.base_url)
    # No more lanes than the sender has connections: a POST that has to queue for a connection inside aiohttp
    # costs more CPU (a future and an extra wake-up each), and its timeout runs while it queues.
    sender: Sender = rt.services[SENDER]
    ready = deque(runs)
    width = min(len(runs), sender.limit or len(runs))
    sending = [asyncio.create_task(_lane(rt, ready, batch, deadline)) for _ in range(width)]
    try:
        await asyncio.gather(*sending)
    except BaseException:
        # Every run stops before the tasks go back to the runner: one still sending after its task was released
        # could be overtaken by the worker that claims the task next.
        await _to_the_end(_stop_and_store(rt, batch, sending))
        raise
    await _to_the_end(_close(rt, batch, runs))


@handles(WEBHOOK_TASK)
async def deliver(rt: Runtime, task: Task) -> None:
    await deliver_batch(rt, [task])
