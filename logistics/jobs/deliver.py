"""Webhook delivery: the ``webhook`` task posts a shipment's deliveries, oldest first, one attempt at a time.

One task per shipment (see ``events.ensure_webhook_task``) gives order without head-of-line blocking: delivery
n+1 waits for n to succeed or give up, while every other shipment has its own task and keeps flowing. The
retry schedule lives in the database (the delivery's ``next_attempt_at`` and the task's ``due_at``): arq job
keys expire after a day and Redis may be flushed, the database stays. Decisions about a shipment's deliveries
are taken under its row lock, the same lock ``emit`` and replays take, so a task never finishes while a new
delivery is being added.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics import metrics
from logistics.events import WEBHOOK_TASK, webhook_body
from logistics.jobs.runner import Runtime, handles, handles_batch
from logistics.models import clients, outbox, shipments, utcnow, webhook_attempts, webhook_deliveries
from logistics.outbox import Task, retry_later
from webhooks import DEFAULT_SCHEDULE, AddressPolicy, AttemptResult, RetrySchedule, Sender, classify, retry_delay

log = logging.getLogger("logistics.webhooks")

SENDER = "webhook_sender"
CLOCK = "clock"  # () -> aware datetime; tests put a controllable clock here
RNG = "webhook_rng"
SCHEDULE = "webhook_schedule"
# A response body is a diagnostic for the client, not an archive.
RESPONSE_KEEP_CHARS = 2000
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


_HEAD = select(
    webhook_deliveries,
    clients.c.webhook_url,
    clients.c.webhook_secret,
    clients.c.webhook_secret_previous,
    clients.c.webhook_previous_until,
    clients.c.webhook_disabled_at,
    clients.c.webhook_failing_since,
).join(clients, clients.c.id == webhook_deliveries.c.client_id)


def _secrets(head: Row[Any], now: datetime) -> list[str]:
    found = [head.webhook_secret]
    previous_until = head.webhook_previous_until
    if head.webhook_secret_previous and previous_until is not None and previous_until > now:
        found.append(head.webhook_secret_previous)
    return found


async def _attempt(rt: Runtime, head: Row[Any], now: datetime) -> AttemptResult:
    sender: Sender = rt.services[SENDER]
    body = orjson.dumps(webhook_body(head.payload, rt.settings.base_url), option=orjson.OPT_SORT_KEYS)
    try:
        return await sender.send(head.webhook_url, head.id, body, _secrets(head, now))
    except ValueError as exc:
        # A stored secret the signer refuses: nothing a retry fixes by itself, but it must show up as a failed
        # attempt (and eventually disable the endpoint) rather than crash the task over and over.
        error = f"cannot sign: {exc}"
        return AttemptResult(None, 0.0, error, b"", classify(None, error=error), None, False, int(now.timestamp()))


async def _record(
    conn: AsyncConnection, rt: Runtime, head: Row[Any], result: AttemptResult, now: datetime
) -> str | None:
    """Store the attempt and its consequence; returns why the endpoint must be disabled, if it must."""
    await conn.execute(
        insert(webhook_attempts).values(
            delivery_id=head.id,
            attempted_at=now,
            status_code=result.status,
            latency_ms=round(result.latency_ms, 2),
            error=result.error[:1000] if result.error else None,
            response_body=result.response_text[:RESPONSE_KEEP_CHARS] or None,
        )
    )
    outcome = result.outcome
    attempts = head.attempts + 1
    this = webhook_deliveries.c.id == head.id
    if outcome.delivered:
        await conn.execute(
            update(webhook_deliveries)
            .where(this)
            .values(
                status="delivered",
                attempts=attempts,
                next_attempt_at=None,
                last_status_code=result.status,
                last_error=None,
                delivered_at=now,
            )
        )
        if head.webhook_failing_since is not None:
            await conn.execute(
                update(clients)
                .where(clients.c.id == head.client_id, clients.c.webhook_failing_since.is_not(None))
                .values(webhook_failing_since=None)
            )
        return None
    error = result.error or outcome.reason
    # Only a pending delivery moves on: one skipped meanwhile (endpoint disabled) stays skipped.
    still_pending = this & (webhook_deliveries.c.status == "pending")
    if outcome.disable_endpoint:
        await conn.execute(
            update(webhook_deliveries)
            .where(still_pending)
            .values(
                status="skipped",
                attempts=attempts,
                next_attempt_at=None,
                last_status_code=result.status,
                last_error=error[:1000],
            )
        )
        return "HTTP 410 Gone"
    schedule: RetrySchedule = rt.services.get(SCHEDULE, DEFAULT_SCHEDULE)
    delay = retry_delay(outcome, attempts, _rng(rt), schedule)
    await conn.execute(
        update(webhook_deliveries)
        .where(still_pending)
        .values(
            status="pending" if delay is not None else "failed",
            attempts=attempts,
            next_attempt_at=now + delay if delay is not None else None,
            last_status_code=result.status,
            last_error=error[:1000],
        )
    )
    await conn.execute(
        update(clients)
        .where(clients.c.id == head.client_id, clients.c.webhook_failing_since.is_(None))
        .values(webhook_failing_since=now)
    )
    failing_since = (
        await conn.execute(select(clients.c.webhook_failing_since).where(clients.c.id == head.client_id))
    ).scalar()
    limit = timedelta(hours=rt.settings.webhook_disable_after_hours)
    if failing_since is not None and now - failing_since >= limit:
        return f"failing continuously since {failing_since.isoformat()}"
    return None


async def disable_endpoint(rt: Runtime, client_id: str, now: datetime, reason: str) -> bool:
    """Stop sending to a client's endpoint; what was still pending is kept as ``skipped`` for re-enabling."""
    async with rt.db.write() as conn:
        changed = await conn.execute(
            update(clients)
            .where(clients.c.id == client_id, clients.c.webhook_disabled_at.is_(None))
            .values(webhook_disabled_at=now)
        )
        if changed.rowcount != 1:
            return False  # someone else disabled it first and raised the alert
        skipped = await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.client_id == client_id, webhook_deliveries.c.status == "pending")
            .values(status="skipped", next_attempt_at=None, last_error=f"endpoint disabled: {reason}")
        )
    metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
    # The alert names the client and the reason only: URLs can carry tokens, payloads belong to the client.
    log.error(
        "webhook_endpoint_disabled",
        extra={"client_id": client_id, "reason": reason, "skipped_deliveries": skipped.rowcount},
    )
    return True


@dataclass(slots=True)
class _Run:
    """One shipment's webhook task in a batch: its pending deliveries, oldest first, as read when planning."""

    task: Task
    queue: list[Row[Any]]


@dataclass(slots=True)
class _Batch:
    """What a batch run shares: results not yet stored, and the clients whose endpoints were disabled."""

    results: list[tuple[Row[Any], AttemptResult, datetime]] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    flushing: asyncio.Task[None] | None = None


async def _lock_all(conn: AsyncConnection, shipment_ids: list[str]) -> None:
    """``lock_for_webhooks`` for many shipments, in id order so that two batches cannot deadlock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(shipments.c.id).where(shipments.c.id.in_(shipment_ids)).order_by(shipments.c.id).with_for_update()
        )


async def _pending(conn: AsyncConnection, shipment_ids: list[str]) -> dict[str, list[Row[Any]]]:
    """The shipments' pending deliveries with their clients' endpoints, oldest first: one query for all."""
    rows = await conn.execute(
        _HEAD.where(
            webhook_deliveries.c.shipment_id.in_(shipment_ids), webhook_deliveries.c.status == "pending"
        ).order_by(webhook_deliveries.c.shipment_id, webhook_deliveries.c.position)
    )
    found: dict[str, list[Row[Any]]] = {}
    for row in rows:
        found.setdefault(row.shipment_id, []).append(row)
    return found


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
    await _lock_all(conn, sids)
    first_ids = await conn.execute(
        select(func.min(outbox.c.id))
        .where(outbox.c.kind == WEBHOOK_TASK, outbox.c.shipment_id.in_(sids))
        .group_by(outbox.c.shipment_id)
    )
    first = set(first_ids.scalars())
    pending = await _pending(conn, sids)
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
        if not head.webhook_url or head.webhook_disabled_at is not None:
            reason = "endpoint disabled" if head.webhook_url else "no webhook URL"
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.shipment_id == sid, webhook_deliveries.c.status == "pending")
                .values(status="skipped", next_attempt_at=None, last_error=reason)
            )
            done.append(task)
        elif head.next_attempt_at is not None and head.next_attempt_at > now:
            await retry_later(conn, task, head.next_attempt_at, f"{head.id} waits: {head.last_error or 'scheduled'}")
        else:
            runs.append(_Run(task, queue[:MAX_PER_RUN]))
    await _finish_all(conn, done)
    return runs


async def _record_delivered(conn: AsyncConnection, results: list[tuple[Row[Any], AttemptResult, datetime]]) -> None:
    """Store successful attempts: two statements for the lot (executemany), not two per delivery."""
    await conn.execute(
        insert(webhook_attempts),
        [
            {
                "delivery_id": head.id,
                "attempted_at": at,
                "status_code": result.status,
                "latency_ms": round(result.latency_ms, 2),
                "error": None,
                "response_body": result.response_text[:RESPONSE_KEEP_CHARS] or None,
            }
            for head, result, at in results
        ],
    )
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == bindparam("b_id"))
        .values(
            status="delivered",
            attempts=bindparam("b_attempts"),
            next_attempt_at=None,
            last_status_code=bindparam("b_status"),
            last_error=None,
            delivered_at=bindparam("b_at"),
        ),
        [{"b_id": h.id, "b_attempts": h.attempts + 1, "b_status": r.status, "b_at": at} for h, r, at in results],
    )
    recovered = {h.client_id for h, _r, _at in results if h.webhook_failing_since is not None}
    if recovered:
        await conn.execute(
            update(clients)
            .where(clients.c.id.in_(recovered), clients.c.webhook_failing_since.is_not(None))
            .values(webhook_failing_since=None)
        )


async def _flush(rt: Runtime, batch: _Batch) -> None:
    """Store every result gathered so far in one transaction; failures take the one-by-one path (schedule,
    disabling), which is rare. Endpoints to disable are disabled after it."""
    while batch.results:
        # Let a few milliseconds' worth of results gather: a transaction costs more than the rows in it.
        await asyncio.sleep(WAVE_SECONDS)
        results, batch.results = batch.results, []
        delivered = [item for item in results if item[1].outcome.delivered]
        disable: dict[str, tuple[datetime, str]] = {}
        async with rt.db.write() as conn:
            if delivered:
                await _record_delivered(conn, delivered)
            for head, result, at in results:
                if not result.outcome.delivered:
                    reason = await _record(conn, rt, head, result, at)
                    if reason is not None:
                        disable.setdefault(head.client_id, (at, reason))
        for client_id, (at, reason) in disable.items():
            await disable_endpoint(rt, client_id, at, reason)


def _stored_later(rt: Runtime, batch: _Batch, item: tuple[Row[Any], AttemptResult, datetime]) -> None:
    batch.results.append(item)
    if batch.flushing is None or batch.flushing.done():
        batch.flushing = asyncio.create_task(_flush(rt, batch))


async def _send_run(rt: Runtime, run: _Run, batch: _Batch, deadline: float) -> None:
    """Send one shipment's deliveries in order, each only after the one before was delivered. The results are
    stored in waves shared by the whole batch; the first failure ends this shipment's run (its retry schedule
    decides when the task is due again). A delivery sent again after a crash before its result was stored is
    a duplicate, which receivers dedupe by webhook-id; none is ever sent before the one ahead of it."""
    for head in run.queue:
        now = _now(rt)
        if time.monotonic() > deadline or head.client_id in batch.disabled:
            return
        if head.next_attempt_at is not None and head.next_attempt_at > now:
            return  # a replayed older delivery went ahead of one that is waiting for its retry
        result = await _attempt(rt, head, now)
        _stored_later(rt, batch, (head, result, _now(rt)))
        if not result.outcome.delivered:
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
                batch.disabled.add(head.client_id)
            return


async def _settle(rt: Runtime, runs: list[_Run]) -> None:
    """Under the shipments' locks: finish each task with nothing left to send, or make it due again when its
    next delivery is (at once if new deliveries came meanwhile or the run stopped early)."""
    if not runs:
        return
    now = _now(rt)
    async with rt.db.write() as conn:
        await _lock_all(conn, sorted({str(r.task.shipment_id) for r in runs}))
        pending = await _pending(conn, [str(r.task.shipment_id) for r in runs])
        done: list[Task] = []
        for run in runs:
            queue = pending.get(str(run.task.shipment_id))
            if not queue:
                done.append(run.task)
                continue
            head = queue[0]
            due = head.next_attempt_at if head.next_attempt_at is not None and head.next_attempt_at > now else now
            await retry_later(conn, run.task, due, f"{head.id} waits: {head.last_error or 'more to send'}")
        await _finish_all(conn, done)


@handles_batch(WEBHOOK_TASK)
async def deliver_batch(rt: Runtime, tasks: list[Task]) -> None:
    """Many shipments' webhooks at once: one transaction plans them all, the shipments send concurrently (each
    in its own order), results are stored in shared waves and one transaction settles the tasks. Per delivery
    that leaves an attempt insert and a delivery update, both batched, instead of four transactions."""
    # Sending stops at half the lease, so a task's lease never runs out while it sends (no renewals needed).
    deadline = time.monotonic() + rt.settings.lease_seconds / 2
    async with rt.db.write() as conn:
        runs = await _plan_batch(conn, tasks, _now(rt))
    batch = _Batch()
    try:
        await asyncio.gather(*(_send_run(rt, run, batch, deadline) for run in runs))
    finally:
        while batch.flushing is not None and not batch.flushing.done():
            await asyncio.shield(batch.flushing)  # what was sent is stored, even when the run is cancelled
        if batch.flushing is not None:
            batch.flushing.result()  # a failed store fails the batch: the runner retries its tasks later
    await _settle(rt, runs)


@handles(WEBHOOK_TASK)
async def deliver(rt: Runtime, task: Task) -> None:
    await deliver_batch(rt, [task])
