"""Webhook delivery: the ``webhook`` task posts a shipment's deliveries, oldest first, one attempt at a time.

One task per shipment (see ``events.ensure_webhook_task``) gives order without head-of-line blocking: delivery
n+1 waits for n to succeed or give up, while every other shipment has its own task and keeps flowing. The
retry schedule lives in the database (the delivery's ``next_attempt_at`` and the task's ``due_at``): arq job
keys expire after a day and Redis may be flushed, the database stays. Decisions about a shipment's deliveries
are taken under its row lock, the same lock ``emit`` and replays take, so a task never finishes while a new
delivery is being added.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics import metrics
from logistics.events import WEBHOOK_TASK, lock_for_webhooks, webhook_body
from logistics.jobs.runner import Runtime, handles
from logistics.models import clients, outbox, utcnow, webhook_attempts, webhook_deliveries
from logistics.outbox import Task, finish, retry_later
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


async def _plan(
    conn: AsyncConnection, rt: Runtime, task: Task, now: datetime, *, first: bool = False, renew: bool = True
) -> Row[Any] | None:
    """The delivery to attempt now; or None once the task has been finished or put back to wait.

    ``first``: the run's first look, which also makes sure no other task serves this shipment. ``renew``:
    extend the lease, which also proves the task is still ours after a slow attempt.
    """
    sid = str(task.shipment_id)
    await lock_for_webhooks(conn, sid)
    if first:
        first_task = (
            await conn.execute(
                select(outbox.c.id)
                .where(outbox.c.kind == WEBHOOK_TASK, outbox.c.shipment_id == sid)
                .order_by(outbox.c.id)
                .limit(1)
            )
        ).scalar()
        if first_task is not None and first_task != task.id:
            # Two tasks for one shipment would send in parallel and break the order: the older one does the work.
            await finish(conn, task)
            return None
    head = (
        await conn.execute(
            _HEAD.where(webhook_deliveries.c.shipment_id == sid, webhook_deliveries.c.status == "pending")
            .order_by(webhook_deliveries.c.position)
            .limit(1)
        )
    ).first()
    if head is None:
        await finish(conn, task)
        return None
    if not head.webhook_url or head.webhook_disabled_at is not None:
        reason = "endpoint disabled" if head.webhook_url else "no webhook URL"
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.shipment_id == sid, webhook_deliveries.c.status == "pending")
            .values(status="skipped", next_attempt_at=None, last_error=reason)
        )
        await finish(conn, task)
        return None
    if head.next_attempt_at is not None and head.next_attempt_at > now:
        await retry_later(conn, task, head.next_attempt_at, f"{head.id} waits: {head.last_error or 'scheduled'}")
        return None
    if not renew:
        return head
    renewed = await conn.execute(
        update(outbox)
        .where(outbox.c.id == task.id, outbox.c.claim_token == task.claim_token)
        .values(lease_until=now + timedelta(seconds=rt.settings.lease_seconds))
    )
    return head if renewed.rowcount == 1 else None


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


@handles(WEBHOOK_TASK)
async def deliver(rt: Runtime, task: Task) -> None:
    lease = rt.settings.lease_seconds
    budget = time.monotonic() + lease / 2
    renewed_at = time.monotonic()  # claimed just now: the lease is fresh
    now = _now(rt)
    async with rt.db.write() as conn:
        head = await _plan(conn, rt, task, now, first=True, renew=False)
    sent = 0
    while head is not None:
        result = await _attempt(rt, head, now)
        sent += 1
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
        now = _now(rt)
        attempted = head
        async with rt.db.write() as conn:
            disable = await _record(conn, rt, attempted, result, now)
            if disable is None and (sent >= MAX_PER_RUN or time.monotonic() > budget):
                # Due again at once, but behind the other shipments' tasks waiting for a worker.
                await retry_later(conn, task, now, f"yielded after {sent} deliveries")
                return
            renew = time.monotonic() - renewed_at > lease / 4
            head = None if disable is not None else await _plan(conn, rt, task, now, renew=renew)
            if renew:
                renewed_at = time.monotonic()
        if disable is not None:
            await disable_endpoint(rt, attempted.client_id, now, disable)
            async with rt.db.write() as conn:
                await _plan(conn, rt, task, now)  # nothing is pending any more: finishes the task
            return
