"""Task handlers by kind. Each is safe to run twice: it re-reads the shipment and acts only if still needed,
and it finishes its task in the same transaction as the change it makes."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select, update
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from carriers.base import (
    Carrier,
    CarrierError,
    FinalCarrierError,
    OrderResult,
    RetryableCarrierError,
    TrackingEvent,
)
from logistics import logs, metrics
from logistics.carrier import carrier_session, create_carrier, dedup_key, event_payload, order_request
from logistics.domain.events import apply_event, lock_shipments
from logistics.domain.statuses import FINAL
from logistics.domain.tables import outbox, shipment_cases, shipments, utcnow
from logistics.jobs.runner import Runtime, backoff, handles, handles_batch, in_lane, run_task, stop_lanes
from logistics.storage.db import describe_db_error
from logistics.storage.outbox import Task, finish, finish_many, insert_tasks, retry_later, task_row

log = logging.getLogger("logistics.jobs")
T = TypeVar("T")

# Final statuses of shipments that were never carried; delivered and returned ones were, with a waybill.
NOT_CARRIED = FINAL - {"delivered", "returned"}


def setup(rt: Runtime) -> None:
    if "carrier" not in rt.services:
        session = carrier_session()
        if session is not None:
            rt.services["carrier_session"] = session  # closed by close() below, after the carrier
        rt.services["carrier"] = create_carrier(rt.settings, session=session)


async def close(rt: Runtime) -> None:
    await stop_lanes(rt)  # before the services they use
    for service in rt.services.values():
        closer = getattr(service, "close", None)
        if closer is not None:
            await closer()


def _carrier(rt: Runtime) -> Carrier:
    return rt.services["carrier"]


async def _call(rt: Runtime, operation: str, fn: Any, *args: Any) -> Any:
    """One carrier operation with in-job retries for transient errors (bounded per attempt and in total)."""
    carrier = _carrier(rt)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RetryableCarrierError),
        wait=wait_random_exponential(multiplier=0.2, max=3),
        stop=stop_after_attempt(rt.settings.carrier_attempts) | stop_after_delay(rt.settings.carrier_retry_seconds),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                metrics.CARRIER_RETRIES.labels(carrier.name, operation).inc()
            started = time.perf_counter()
            outcome = "ok"
            try:
                return await fn(*args)
            except FinalCarrierError:
                outcome = "rejected"
                raise
            except CarrierError:
                outcome = "transient"
                raise
            finally:
                metrics.CARRIER_CALLS.labels(carrier.name, operation, outcome).inc()
                metrics.CARRIER_LATENCY.labels(carrier.name, operation).observe(time.perf_counter() - started)
    raise AssertionError("unreachable")


def _long_backoff(attempts: int) -> timedelta:
    """After the in-job retries gave up: the carrier is down for longer; wait in the database, not in Redis.

    Half of the wait is random, so the orders an outage deferred together do not all come back in the same
    second and meet the carrier's rate limit."""
    wait = min(1800, 15 * 2 ** min(attempts, 10))
    return timedelta(seconds=random.uniform(wait / 2, wait))


async def _load(rt: Runtime, shipment_id: str | None) -> dict[str, Any] | None:
    async with rt.db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
        if row is None:
            return None
        data = dict(row._mapping)
        cases = await conn.execute(
            select(shipment_cases)
            .where(shipment_cases.c.shipment_id == shipment_id)
            .order_by(shipment_cases.c.position)
        )
        data["_cases"] = [dict(c._mapping) for c in cases]
        return data


async def _drop(rt: Runtime, task: Task) -> None:
    async with rt.db.write() as conn:
        await finish(conn, task)


def _needs_order(row: dict[str, Any] | None) -> bool:
    # A carrier event may overtake our answer (a push for the order arrives before we stored the waybill):
    # the order is still ours to complete while the waybill is missing. Asking again is safe — same order no.
    # (For a cancelled shipment, the cancel task covers an ambiguous earlier try.) A shipment already delivered
    # or returned was carried: its pushes overtook a lost answer, and the waybill is still ours to store.
    return not (
        row is None or row["status"] in NOT_CARRIED or row["status"] == "awaiting_applicant" or row["waybill_no"]
    )


async def _load_many(rt: Runtime, shipment_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Shipments with their cases, two queries for the whole batch."""
    async with rt.db.read() as conn:
        rows = await conn.execute(select(shipments).where(shipments.c.id.in_(shipment_ids)))
        found = {r.id: dict(r._mapping) | {"_cases": []} for r in rows}
        cases = await conn.execute(
            select(shipment_cases)
            .where(shipment_cases.c.shipment_id.in_(shipment_ids))
            .order_by(shipment_cases.c.shipment_id, shipment_cases.c.position)
        )
        for c in cases:
            found[c.shipment_id]["_cases"].append(dict(c._mapping))
    return found


async def _in_waves(calls: set[asyncio.Task[T]], store: Callable[[list[T]], Awaitable[None]]) -> None:
    """Await concurrent carrier calls and ``store`` their outcomes in waves, one call for whatever finished
    meanwhile: the database work grows by waves, not by calls, and a slow answer holds back only itself."""
    pending = calls
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            await store([d.result() for d in done])
    finally:
        for leftover in pending:  # cancelled (timeout, shutdown): the leases run out and the sweep retries
            leftover.cancel()


@dataclass(slots=True)
class _Ordered:
    task: Task
    row: dict[str, Any]
    result: OrderResult | None = None
    error: BaseException | None = None


async def _order_one(rt: Runtime, item: _Ordered) -> _Ordered:
    try:
        item.result = await _call(rt, "create_order", _carrier(rt).create_order, order_request(item.row))
    except Exception as exc:  # classified when stored; an unexpected one must not sink the other orders
        item.error = exc
    return item


@handles_batch("order")
async def order_batch(rt: Runtime, tasks: list[Task]) -> None:
    """Order many shipments: the carrier calls run concurrently and their outcomes are stored in waves, one
    transaction for whatever finished meanwhile, so the database work does not grow one transaction per order
    (a convoy on SQLite's single writer) and a slow carrier answer holds back only itself."""
    rows = await _load_many(rt, [t.shipment_id for t in tasks if t.shipment_id])
    idle = [t for t in tasks if not _needs_order(rows.get(t.shipment_id or ""))]
    if idle:
        async with rt.db.write() as conn:
            await finish_many(conn, idle)
    pending: set[asyncio.Task[_Ordered]] = set()
    for task in tasks:
        row = rows.get(task.shipment_id or "")
        if row is not None and _needs_order(row):
            token = logs.request_id.set(task.request_id)  # the carrier call's logs carry the request id
            try:
                pending.add(asyncio.create_task(_order_one(rt, _Ordered(task, row))))
            finally:
                logs.request_id.reset(token)
    await _in_waves(pending, lambda wave: _store_orders(rt, wave))


@handles("order")
async def order(rt: Runtime, task: Task) -> None:
    await order_batch(rt, [task])


async def _store_orders(rt: Runtime, items: list[_Ordered]) -> None:
    finished: list[Task] = []
    follow_up: list[dict[str, Any]] = []
    logged: list[tuple[str, str, str]] = []
    async with rt.db.write() as conn:
        current = await lock_shipments(conn, [i.row["id"] for i in items])
        for item in items:
            task, sid, exc = item.task, item.row["id"], item.error
            shipment = current.get(sid)
            if isinstance(exc, FinalCarrierError):
                if shipment is not None:
                    applied = await apply_event(
                        conn,
                        shipment,
                        status="failed",
                        source="system",
                        carrier_code=exc.code,
                        carrier_text=exc.message,
                        updates={"failure_reason": f"{exc.code} {exc.message}"},
                    )
                    if applied is not None:  # a second task of the same shipment in this wave sees the change
                        shipment.update(applied.shipment)
                finished.append(task)
                logged.append(("carrier_order_rejected", sid, exc.code))
            elif isinstance(exc, RetryableCarrierError):
                # Ambiguous or transient: the next try uses the same logisticsOrderNo, so no second order.
                due = utcnow() + _long_backoff(task.attempts)
                await retry_later(conn, task, due, f"{exc.code} {exc.message}")
                logged.append(("carrier_order_deferred", sid, exc.code))
            elif exc is not None:
                await retry_later(conn, task, utcnow() + backoff(task.attempts), f"{type(exc).__name__}: {exc}")
                logged.append(("task_failed", sid, type(exc).__name__))
            else:
                assert item.result is not None
                follow_up.extend(await _store_waybill(rt, conn, task, shipment, item.result))
                finished.append(task)
                logged.append(("carrier_order_created", sid, item.result.waybill_no))
        await insert_tasks(conn, follow_up)
        await finish_many(conn, finished)
    for event, sid, detail in logged:
        key = "waybill_no" if event == "carrier_order_created" else "code"
        log.info(event, extra={"shipment_id": sid, key: detail})


async def _store_waybill(
    rt: Runtime, conn: Any, task: Task, current: dict[str, Any] | None, result: OrderResult
) -> list[dict[str, Any]]:
    """Keep the waybill (and update ``current`` to match); returns the tasks it causes."""
    if current is None:
        return []
    sid = current["id"]
    waybill = {
        "waybill_no": result.waybill_no,
        "route_code": result.route_code,
        "destination_code": result.destination_code,
        "destination_name": result.destination_name,
        "package_code": result.package_code,
        "package_name": result.package_name,
    }
    if current["status"] == "cancelled" and current["waybill_no"] is None:
        # Cancelled while we were ordering: remember the waybill so the cancel reaches the carrier.
        await conn.execute(update(shipments).where(shipments.c.id == sid).values(**waybill))
        current.update(waybill)
        return [task_row("cancel", sid, {"reason": "已取消"}, request_id=task.request_id)]
    if current["status"] in NOT_CARRIED or current["waybill_no"] is not None:
        return []
    if current["status"] == "pending":
        applied = await apply_event(conn, current, status="ordered", source="system", updates=waybill)
        if applied is not None:
            current.update(applied.shipment)
    else:
        await conn.execute(update(shipments).where(shipments.c.id == sid).values(**waybill))
        current.update(waybill)
    first = timedelta(seconds=rt.settings.poll_first_seconds)
    track = task_row(
        "track", sid, {"interval": first.total_seconds()}, due_at=utcnow() + first, request_id=task.request_id
    )
    return [track, *ordered_follow_ups(rt, sid, task.request_id)]


def ordered_follow_ups(rt: Runtime, shipment_id: str, request_id: str | None) -> list[dict[str, Any]]:
    """Work that starts when a shipment is ordered; labels and webhooks add theirs here."""
    return [hook(rt, shipment_id, request_id) for hook in ORDERED_HOOKS]


ORDERED_HOOKS: list[Any] = []


@handles("cancel")
async def cancel(rt: Runtime, task: Task) -> None:
    row = await _load(rt, task.shipment_id)
    if row is None:
        await _drop(rt, task)
        return
    reason = str(task.payload.get("reason") or "已取消")
    try:
        await _call(rt, "cancel_order", _carrier(rt).cancel_order, row["id"], row["waybill_no"], reason)
    except FinalCarrierError as exc:
        # Not found (never ordered) or already collected: nothing more we can do at the carrier.
        log.info("carrier_cancel_refused", extra={"shipment_id": row["id"], "code": exc.code})
    except RetryableCarrierError as exc:
        async with rt.db.write() as conn:
            await retry_later(conn, task, utcnow() + _long_backoff(task.attempts), f"{exc.code} {exc.message}")
        return
    await _drop(rt, task)


@handles("carrier_event")
async def carrier_event(rt: Runtime, task: Task) -> None:
    """A pushed tracking event, stored by the push endpoint; applied here under the forward-only rules."""
    payload = task.payload
    async with rt.db.write() as conn:
        await apply_carrier_events(conn, [payload], source=str(payload.get("source", "carrier_push")))
        await finish(conn, task)


@handles_batch("carrier_event")
async def carrier_event_batch(rt: Runtime, tasks: list[Task]) -> None:
    """Pushed events of one claim, a few transactions of up to ``PUSH_TRANSACTION`` events each.

    One transaction per push makes every event a turn at SQLite's single writer: with tens of thousands of
    pushes queued, they wait on the write lock until their jobs time out and are retried, over and over. One
    transaction for a whole claim holds the row locks of up to 200 shipments while its events are applied one by
    one, and on PostgreSQL every other worker's order, label and webhook work on those shipments waits behind it
    (waits of a minute and more were seen with three workers on two starved cores). Applying an event twice is
    harmless (each is de-duplicated), so a task whose lease ran out meanwhile is simply applied again by whoever
    holds it now. Should a transaction fail, each of its tasks is tried alone, so one event that cannot be
    applied holds back only itself.
    """
    for start in range(0, len(tasks), PUSH_TRANSACTION):
        await _apply_pushes(rt, tasks[start : start + PUSH_TRANSACTION])


async def _apply_pushes(rt: Runtime, tasks: list[Task]) -> None:
    by_source: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_source.setdefault(str(task.payload.get("source", "carrier_push")), []).append(task.payload)
    try:
        async with rt.db.write() as conn:
            for source, events in by_source.items():
                await apply_carrier_events(conn, events, source=source)
            await finish_many(conn, tasks)
    except Exception as exc:
        error = f"{type(exc).__name__}: {describe_db_error(exc)}"
        log.warning("carrier_event_batch_failed", extra={"tasks": len(tasks), "error": error})
        for task in tasks:
            await run_task(rt, task)


# Pushes have a lane of their own (see runner.LANES): the carrier pushes every step of every parcel, often
# twice, and as one more kind of the shared claims a flood of them would take every claim's urgent share, so
# webhooks would wait behind it. In a lane they are applied a claim of
# this many per transaction, beside the orders and webhooks rather than ahead of them.
PUSH_CHUNK = 200
PUSH_TRANSACTION = 25
in_lane("carrier_event", lambda _settings: PUSH_CHUNK)


async def apply_carrier_events(conn: Any, events: list[dict[str, Any]], *, source: str) -> dict[str, int]:
    """Apply events (as event_payload dicts) in time order; returns how many were new, by shipment id.

    Their shipments are locked first, all at once and in id order (``lock_shipments``, like every transaction that
    locks several shipments): locked one by one in the events' time order, two workers applying pushes of the
    same parcels in different orders deadlocked on PostgreSQL."""
    ordered = sorted(events, key=lambda e: e["occurred_at"])
    order_nos = {e["order_no"] for e in ordered if e.get("order_no")}
    waybills = {e["waybill_no"] for e in ordered if e.get("waybill_no")}
    found = await conn.execute(
        select(shipments.c.id, shipments.c.waybill_no).where(
            or_(shipments.c.id.in_(order_nos), shipments.c.waybill_no.in_(waybills))
        )
    )
    by_waybill: dict[str, str] = {}
    known: set[str] = set()
    for row in found:
        known.add(row.id)
        if row.waybill_no:
            by_waybill[row.waybill_no] = row.id
    locked = await lock_shipments(conn, sorted(known))
    new = dict.fromkeys(locked, 0)
    for payload in ordered:
        order_no = payload.get("order_no")
        shipment_id = order_no if order_no in locked else by_waybill.get(payload["waybill_no"])
        if shipment_id is None:
            log.warning("carrier_event_unknown_waybill", extra={"code": payload["code"]})
            continue
        text = payload["description"] or payload["name"]
        applied = await apply_event(
            conn,
            locked[shipment_id],
            status=payload["status"] or locked[shipment_id]["status"],
            source=source,
            occurred_at=datetime.fromisoformat(payload["occurred_at"]),
            carrier_code=payload["code"],
            carrier_text=text[:500],
            location=payload.get("location") or None,
            dedup_key=dedup_key(payload),
            reason_code=payload.get("reason_code"),
            reason=payload.get("reason"),
            attempt=payload.get("attempt"),
        )
        if applied is not None:
            locked[shipment_id] = applied.shipment  # the next event of this parcel builds on this one
            new[shipment_id] += 1
    return new


@dataclass(slots=True)
class _Polled:
    task: Task
    row: dict[str, Any]
    events: list[TrackingEvent] | None = None
    error: BaseException | None = None


async def _poll_one(rt: Runtime, item: _Polled) -> _Polled:
    try:
        item.events = await _call(rt, "track", _carrier(rt).track, item.row["waybill_no"])
    except Exception as exc:  # classified when stored; one parcel's failure must not sink the others' polls
        item.error = exc
    return item


def _still_tracked(rt: Runtime, row: dict[str, Any] | None, now: datetime) -> bool:
    if row is None or row["status"] in FINAL or not row["waybill_no"]:
        return False
    return now <= row["created_at"] + timedelta(days=rt.settings.tracking_retire_days)


@handles_batch("track")
async def track_batch(rt: Runtime, tasks: list[Task]) -> None:
    """Poll many parcels, the fallback when pushes are lost: the carrier calls run concurrently and what they
    found is stored in waves, one transaction for whatever answered meanwhile, as orders are. One transaction
    per poll would queue thousands of them behind SQLite's single writer (a burst of orders is polled together
    a few minutes later, and labels would wait behind the polls)."""
    rows = await _load_many(rt, [t.shipment_id for t in tasks if t.shipment_id])
    now = utcnow()
    retired = [t for t in tasks if not _still_tracked(rt, rows.get(t.shipment_id or ""), now)]
    if retired:
        async with rt.db.write() as conn:
            await finish_many(conn, retired)
    pending = {
        asyncio.create_task(_poll_one(rt, _Polled(t, rows[t.shipment_id])))
        for t in tasks
        if t.shipment_id and _still_tracked(rt, rows.get(t.shipment_id), now)
    }
    await _in_waves(pending, lambda wave: _store_polls(rt, wave))


@handles("track")
async def track(rt: Runtime, task: Task) -> None:
    await track_batch(rt, [task])


async def _store_polls(rt: Runtime, items: list[_Polled]) -> None:
    first = timedelta(seconds=rt.settings.poll_first_seconds)
    polled = [i for i in items if i.error is None]
    async with rt.db.write() as conn:
        for item in items:
            task, exc = item.task, item.error
            if isinstance(exc, CarrierError):
                await retry_later(conn, task, utcnow() + _long_backoff(task.attempts), f"{exc.code} {exc.message}")
            elif exc is not None:
                log.warning("task_failed", extra={"shipment_id": task.shipment_id, "error": type(exc).__name__})
                await retry_later(conn, task, utcnow() + backoff(task.attempts), f"{type(exc).__name__}: {exc}")
        # The whole wave's events at once: their shipments are locked together, in id order.
        events = [event_payload(e) for item in polled for e in item.events or ()]
        new = await apply_carrier_events(conn, events, source="carrier_poll")
        ids = [item.row["id"] for item in polled]
        statuses = dict(
            (await conn.execute(select(shipments.c.id, shipments.c.status).where(shipments.c.id.in_(ids)))).all()
        )
        finished: list[Task] = []
        for item in polled:
            task = item.task
            if statuses.get(item.row["id"]) in FINAL:
                finished.append(task)
                continue
            # Quick at first, slower while nothing changes.
            interval = timedelta(seconds=float(task.payload.get("interval", first.total_seconds())))
            interval = (
                first if new.get(item.row["id"]) else min(timedelta(seconds=rt.settings.poll_max_seconds), interval * 2)
            )
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == task.id, outbox.c.claim_token == task.claim_token)
                .values(
                    due_at=utcnow() + interval,
                    lease_until=None,
                    claim_token=None,
                    payload={"interval": interval.total_seconds()},
                    attempts=0,
                )
            )
        await finish_many(conn, finished)
