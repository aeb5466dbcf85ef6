"""The one way a shipment's status changes: apply an event under the forward-only rules, in the caller's
transaction, together with the work it causes (outbox rows, webhook deliveries).

Webhook deliveries are written here, in the transaction that changes the status, so a committed change always
has its delivery on record (the database is the record of what must still be sent). Every function
that adds, requeues or finishes a shipment's deliveries holds that shipment's row lock (PostgreSQL; SQLite has
one writer anyway), which keeps "one webhook task per shipment" true and per-shipment order intact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.domain import ids, proof_store
from logistics.domain.proof import summary as proof_summary
from logistics.domain.statuses import FINAL, may_move
from logistics.domain.tables import (
    clients,
    outbox,
    shipment_cases,
    shipment_events,
    shipments,
    utcnow,
    webhook_deliveries,
)
from logistics.storage.outbox import task_row

WEBHOOK_TASK = "webhook"
LABEL_READY = "shipment.label_ready"
# Public fields of an event in a webhook; dedup keys and internal ids stay inside.
_EVENT_FIELDS = (
    "sequence", "status", "occurred_at", "source", "carrier_code", "carrier_text", "location", "reason_code", "reason"
)
# Webhooks of these statuses carry the shipment's attempts and last failure: why the parcel did not arrive.
FAILURE_WEBHOOKS = frozenset({"delivery_failed", "returning", "returned", "failed"})


# Statements built once, each call passing only its values: building them with the values in (``.values(...)``,
# ``== value``) makes SQLAlchemy coerce and cache-key every value on every call, a real share of a worker's CPU.
_SEEN = select(shipment_events.c.id).where(
    shipment_events.c.shipment_id == bindparam("b_shipment_id"), shipment_events.c.dedup_key == bindparam("b_key")
)
_INSERT_EVENT = insert(shipment_events)
_UPDATE_SHIPMENT = update(shipments).where(shipments.c.id == bindparam("b_id"))  # SET: the other parameters
_CLIENT_WEBHOOK = select(clients.c.webhook_url, clients.c.webhook_disabled_at).where(clients.c.id == bindparam("b_id"))
_CASES = (
    select(shipment_cases.c.case_no, shipment_cases.c.item_name)
    .where(shipment_cases.c.shipment_id == bindparam("b_id"))
    .order_by(shipment_cases.c.position)
)
_LAST_POSITION = select(func.coalesce(func.max(webhook_deliveries.c.position), 0)).where(
    webhook_deliveries.c.shipment_id == bindparam("b_id")
)
_INSERT_DELIVERY = insert(webhook_deliveries)
_WEBHOOK_TASK = (
    select(outbox.c.id).where(outbox.c.kind == WEBHOOK_TASK, outbox.c.shipment_id == bindparam("b_id")).limit(1)
)
_INSERT_TASK = insert(outbox)


@dataclass(frozen=True, slots=True)
class Applied:
    sequence: int
    status: str  # the event's status
    changed: bool  # did the shipment's status move?
    previous_status: str
    shipment: dict[str, Any]  # the shipment row after the change


_SHIPMENT = select(shipments).where(shipments.c.id == bindparam("b_id"))
# FOR NO KEY UPDATE: it excludes every other writer of the shipment (they take this lock, or UPDATE the row,
# which takes it too) but not the foreign-key checks of rows inserted for the shipment (labels, events,
# deliveries), which take FOR KEY SHARE. Under FOR UPDATE a label store holding one shipment's key-share lock
# while waiting for another's deadlocks with a webhook batch that has locked the second and wants the first;
# the shipment's key never changes, so nothing needs the stronger lock.
_SHIPMENT_FOR_UPDATE = _SHIPMENT.with_for_update(key_share=True)


async def lock_shipment(conn: AsyncConnection, shipment_id: str) -> dict[str, Any] | None:
    query = _SHIPMENT_FOR_UPDATE if conn.dialect.name == "postgresql" else _SHIPMENT
    row = (await conn.execute(query, {"b_id": shipment_id})).first()
    return dict(row._mapping) if row is not None else None


async def lock_shipments(conn: AsyncConnection, shipment_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Like ``lock_shipment`` for many rows at once, by id, locked in id order so that two transactions
    locking overlapping sets cannot deadlock."""
    rows = await conn.execute(_locking(select(shipments), shipment_ids))
    return {r.id: dict(r._mapping) for r in rows}


async def lock_shipment_ids(conn: AsyncConnection, shipment_ids: Iterable[str]) -> None:
    """``lock_shipments`` without reading the rows: for a transaction about to update several shipments with
    one statement, whose own row locks would come in the order the plan meets the rows (on PostgreSQL a bitmap
    scan meets them in the table's physical order), not in the id order every other locker keeps."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_locking(select(shipments.c.id), shipment_ids))


def _locking(query: Select[Any], shipment_ids: Iterable[str]) -> Select[Any]:
    """``query`` for these shipments, locked in id order (SQLite, one writer at a time, renders no lock)."""
    ids = sorted(set(shipment_ids))
    return query.where(shipments.c.id.in_(ids)).order_by(shipments.c.id).with_for_update(key_share=True)


async def apply_event(
    conn: AsyncConnection,
    shipment: dict[str, Any],
    *,
    status: str,
    source: str,
    occurred_at: datetime | None = None,
    carrier_code: str | None = None,
    carrier_text: str | None = None,
    location: str | None = None,
    dedup_key: str | None = None,
    updates: dict[str, Any] | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
    attempt: str | None = None,
    staff_id: str | None = None,
) -> Applied | None:
    """Record the event; move the status only forward. ``shipment`` must come from ``lock_shipment`` in ``conn``.

    Returns None for a duplicate (same ``dedup_key``). A late event that would move the shipment backwards is
    still kept in the history (marked ``refused``, so public pages leave it out), but the status stays where it is.
    ``attempt`` (``delivery`` or ``pickup``) marks a failed attempt: it is counted on the shipment and, when it is
    the latest, becomes its ``last_failure``; an attempt that contradicts the current status is not counted.
    ``staff_id`` names the clerk behind a console action (kept for the record, never sent to the client).
    """
    now = utcnow()
    if dedup_key is not None:
        seen = await conn.execute(_SEEN, {"b_shipment_id": shipment["id"], "b_key": dedup_key})
        if seen.first() is not None:
            return None
    previous = shipment["status"]
    changed = may_move(previous, status)
    sequence = shipment["last_sequence"] + 1
    event = {
        "shipment_id": shipment["id"],
        "sequence": sequence,
        "status": status,
        "occurred_at": occurred_at or now,
        "recorded_at": now,
        "source": source,
        "carrier_code": carrier_code,
        "carrier_text": carrier_text,
        "location": location,
        "dedup_key": dedup_key,
        "refused": False,
        "reason_code": reason_code,
        "reason": reason,
        "staff_id": staff_id,
    }
    if not changed and status != previous:
        event["refused"] = await _contradicts(conn, shipment["id"], previous, event["occurred_at"])
    await conn.execute(_INSERT_EVENT, event)
    values: dict[str, Any] = {"last_sequence": sequence, "updated_at": now, **(updates or {})}
    values.update(first_times(shipment, event))
    extra: dict[str, Any] | None = None
    if attempt is not None and not event["refused"]:
        values.update(counted_attempt(shipment, attempt, event))
    elif reason_code is not None and not shipment.get("last_failure") and not event["refused"]:
        # A return or a voided pickup that says why, with no failed attempt on record (its push was lost).
        stage = "pickup" if status == "failed" else "delivery"
        values["last_failure"] = failure_record(event, stage)
    if changed:
        values["status"] = status
        if status in FINAL:
            values["finished_at"] = now
        if status == "delivered":  # the proof of service is frozen with the status change, never after
            values["proof"] = await proof_store.freeze(conn, {**shipment, **values}, event)
            extra = {"proof": proof_summary(values["proof"], with_name=False)}
    await conn.execute(_UPDATE_SHIPMENT, {"b_id": shipment["id"], **values})
    shipment = {**shipment, **values}
    if changed:
        if status in FAILURE_WEBHOOKS:
            extra = failure_summary(shipment)
        await emit(conn, shipment, f"shipment.{status}", event, extra=extra)
    return Applied(sequence, status, changed, previous, shipment)


# The first time a shipment took these statuses (its refused events aside), kept on its row: the console's lists
# show and filter on them without reading each shipment's events.
FIRST_TIMES = {"picked_up": "handed_at", "delivered": "delivered_at"}


def first_times(shipment: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """The shipment's kept first times after recording ``event``: a pickup or delivery not refused that is
    earlier than the one known (pushes and late scans arrive out of order) becomes it."""
    column = FIRST_TIMES.get(event["status"])
    if column is None or event.get("refused"):
        return {}
    at, known = _utc(event["occurred_at"]), shipment.get(column)
    return {} if known is not None and known <= at else {column: at}


def counted_attempt(shipment: Mapping[str, Any], stage: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The shipment's columns after one more failed attempt: the count, and the last failure unless a later
    one is known already (pushes arrive out of order)."""
    values: dict[str, Any] = {"attempts": int(shipment.get("attempts") or 0) + 1}
    last = shipment.get("last_failure")
    if not last or _utc(event["occurred_at"]) >= datetime.fromisoformat(str(last["occurred_at"])):
        values["last_failure"] = failure_record(event, stage)
    return values


def failure_record(event: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """A shipment's ``last_failure`` from the event row that reports it."""
    return {
        "reason_code": event["reason_code"],
        "reason": event["reason"],
        "occurred_at": iso(_utc(event["occurred_at"]).astimezone(UTC)),
        "stage": stage,
    }


def failure_summary(shipment: Mapping[str, Any]) -> dict[str, Any]:
    """What a webhook about an attempt or a return adds: how many attempts failed, and the latest one's reason."""
    return {"attempts": int(shipment.get("attempts") or 0), "last_failure": shipment.get("last_failure")}


_REACHED = select(func.max(shipment_events.c.occurred_at)).where(
    shipment_events.c.shipment_id == bindparam("b_id"),
    shipment_events.c.status == bindparam("b_status"),
    shipment_events.c.refused.is_(False),
)


async def _contradicts(conn: AsyncConnection, shipment_id: str, current: str, occurred_at: datetime) -> bool:
    """Is a refused move a contradiction (it happened after the current status was reached: ``in_transit``
    after ``delivered``) rather than late history (a ``picked_up`` from before ``in_transit``, pushed late)?
    A contradiction is kept for the record and the client's API and left off public pages; history is shown."""
    reached = (await conn.execute(_REACHED, {"b_id": shipment_id, "b_status": current})).scalar()
    if reached is None:
        return True
    return _utc(occurred_at) >= _utc(reached)


def _utc(value: datetime) -> datetime:
    """Stored times are UTC; a naive one (as SQLite's aggregate may hand back) is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def _client_webhook(conn: AsyncConnection, client_id: str) -> Any:
    """The client's webhook URL and whether it is disabled, read once per transaction: a wave of events is
    mostly one client's, and a read per event would be a third of the statements of a wave of orders. (No
    transaction changes these settings and then emits.)"""
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection is not None else None
    cached = conn.info.get("client_webhooks")
    if cached is None or cached[0] is not transaction:
        cached = conn.info["client_webhooks"] = (transaction, {})
    known: dict[str, Any] = cached[1]
    if client_id not in known:
        known[client_id] = (await conn.execute(_CLIENT_WEBHOOK, {"b_id": client_id})).first()
    return known[client_id]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def webhook_body(payload: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """The envelope as sent: the stored payload plus the links, made from the configured public base URL."""
    data = dict(payload["data"])
    if data.get("tracking_code"):
        data["tracking_url"] = f"{base_url}/t/{data['tracking_code']}"
    data["label_url"] = f"{base_url}/v1/shipments/{data['id']}/label" if data.get("waybill_no") else None
    if isinstance(data.get("proof"), dict):
        data["proof"] = {**data["proof"], "url": f"{base_url}/v1/shipments/{data['id']}/proof"}
    return {**payload, "data": data}


def new_delivery_id() -> str:
    # The webhook-id: receivers dedupe on it, so it is fixed once and reused by every retry and replay.
    return "msg_" + ids.ulid()


async def lock_for_webhooks(conn: AsyncConnection, shipment_id: str) -> None:
    """Serialise everything that adds, requeues or finishes this shipment's deliveries (PostgreSQL row lock)."""
    await lock_shipment_ids(conn, [shipment_id])


async def emit(
    conn: AsyncConnection,
    shipment: Mapping[str, Any],
    type: str,
    event: Mapping[str, Any] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> str | None:
    """Owe the shipment's client a webhook of ``type``, in the caller's transaction; returns the delivery id.

    Nothing is written when the client has no webhook URL. While the endpoint is disabled the delivery is kept
    as ``skipped`` (re-enabling the endpoint sends it). ``event`` is the event row behind the message (its
    public fields go out); ``extra`` adds fields to ``data``. The URLs in the summary are added when sending,
    from the configured public base URL, so they are never stale.
    """
    row = await _client_webhook(conn, shipment["client_id"])
    if row is None or not row.webhook_url:
        return None
    sid = shipment["id"]
    await lock_for_webhooks(conn, sid)
    cases = await conn.execute(_CASES, {"b_id": sid})
    position = (await conn.execute(_LAST_POSITION, {"b_id": sid})).scalar_one() + 1
    now = utcnow()
    sequence = int(event["sequence"]) if event is not None and "sequence" in event else int(shipment["last_sequence"])
    occurred = event.get("occurred_at") if event is not None else None
    public_event = None if event is None else {k: event[k] for k in _EVENT_FIELDS if k in event}
    data: dict[str, Any] = {
        "id": sid,
        "kind": shipment["kind"],
        "status": shipment["status"],
        "cases": [{"case_no": c.case_no, "item_name": c.item_name} for c in cases],
        "department": shipment["department"],
        "carrier": shipment["carrier"],
        "waybill_no": shipment["waybill_no"],
        "tracking_code": shipment["tracking_code"],
        "metadata": shipment.get("extra") or {},
        "event": _jsonable(public_event),
        "sequence": sequence,
        **_jsonable(dict(extra or {})),
    }
    delivery_id = new_delivery_id()
    pending = row.webhook_disabled_at is None
    await conn.execute(
        _INSERT_DELIVERY,
        {
            "id": delivery_id,
            "client_id": shipment["client_id"],
            "shipment_id": sid,
            "sequence": sequence,
            "position": position,
            "type": type,
            "payload": {"type": type, "timestamp": iso(occurred or now), "data": data},
            "status": "pending" if pending else "skipped",
            "attempts": 0,
            "next_attempt_at": now if pending else None,
            "last_status_code": None,
            "last_error": None if pending else "endpoint disabled",
            "created_at": now,
            "delivered_at": None,
        },
    )
    if pending:
        await ensure_webhook_task(conn, sid, now)
    return delivery_id


async def emit_label_ready(conn: AsyncConnection, extras: Mapping[str, Mapping[str, Any]]) -> None:
    """Owe a ``shipment.label_ready`` webhook for each shipment id in ``extras`` (its extra data fields) once
    its label can be fetched (the labels work calls this)."""
    locked = await lock_shipments(conn, extras)
    for shipment_id, extra in extras.items():
        if (shipment := locked.get(shipment_id)) is not None:
            await emit(conn, shipment, LABEL_READY, None, extra=extra)


async def ensure_webhook_task(conn: AsyncConnection, shipment_id: str, due_at: datetime) -> None:
    """One outbox task per shipment delivers its webhooks in order; make sure it exists and is due by ``due_at``.

    A task already running re-reads the deliveries under the shipment lock before it finishes, so it picks up
    what was added meanwhile.
    """
    existing = (await conn.execute(_WEBHOOK_TASK, {"b_id": shipment_id})).scalar()
    if existing is None:
        await conn.execute(_INSERT_TASK, task_row(WEBHOOK_TASK, shipment_id, due_at=due_at))
    else:
        await conn.execute(
            update(outbox).where(outbox.c.id == existing, outbox.c.due_at > due_at).values(due_at=due_at)
        )


async def requeue_deliveries(conn: AsyncConnection, rows: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """Make deliveries (``id``, ``shipment_id``) pending again, due now, with a fresh retry schedule.

    The webhook-id stays: a replay is the same message to the receiver.
    """
    by_shipment: dict[str, list[str]] = {}
    for r in rows:
        by_shipment.setdefault(str(r["shipment_id"]), []).append(str(r["id"]))
    for sid in sorted(by_shipment):  # a fixed lock order: two bulk replays never deadlock
        await lock_for_webhooks(conn, sid)
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id.in_(by_shipment[sid]))
            .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
        )
        await ensure_webhook_task(conn, sid, now)
    return sum(len(v) for v in by_shipment.values())
