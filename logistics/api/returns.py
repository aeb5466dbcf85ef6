"""The hall decides what happens to a parcel that did not arrive: /v1/shipments/{id}/resend and /resolve.

A parcel on its way back (``returning``), back at the hall (``returned``), or an intake whose door pickup failed
(``failed`` after failed pickup attempts) is the hall's to decide on, once: send it again as a new linked shipment
(``resend_of`` / ``resent_as``, ordered anew like any create), or record a resolution (the applicant collects it
at the window, or the matter is closed, e.g. served by public notice). A resend is one transaction under the old
shipment's lock, so two resends of one parcel never make two new shipments; with an Idempotency-Key the first
answer is replayed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.api.appkeys import CREATE_CONTEXT, DB, REQUEST_ID, SETTINGS, SHIPMENT_ID, SIGNAL
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, from_validation_error, not_found, validation_problem
from logistics.api.present import iso
from logistics.api.schemas import ResendIn, ResolveIn, ShipmentCreate
from logistics.api.shipments import (
    JSON,
    full_shipment,
    idempotency_key,
    json_response,
    read_json,
    replayed,
    shipment_answer,
    shipment_row,
)
from logistics.config import Settings
from logistics.domain.events import apply_event, emit, lock_shipment
from logistics.domain.statuses import RETURN_STATUSES
from logistics.domain.tables import idempotency_records, shipment_cases, shipment_events, shipments, utcnow
from logistics.domain.wording import RESENT_TEXT, RESOLUTION_TEXT
from logistics.storage.outbox import insert_tasks, task_row

routes = web.RouteTableDef()
RESOLVED = "shipment.resolved"


def pickup_failed(row: dict[str, Any]) -> bool:
    """An intake the carrier voided after failed door pickups (not one it refused to order)."""
    last = row.get("last_failure") or {}
    return row["kind"] == "intake" and row["status"] == "failed" and last.get("stage") == "pickup"


def undecided(row: dict[str, Any]) -> None:
    """Raise the 409 that says why the hall cannot resend or resolve this shipment, if it cannot."""
    if row.get("resent_as"):
        raise Problem(
            409, "already-resent", "Already resent", f"The shipment was already resent as {row['resent_as']}."
        )
    if row.get("resolution"):
        action = row["resolution"].get("action")
        raise Problem(409, "already-resolved", "Already resolved", f"The shipment was already resolved ({action}).")
    if row.get("purged_at") is not None:
        raise Problem(
            409,
            "purged",
            "Personal data purged",
            "The shipment's names, phones and addresses were purged; create a new shipment instead.",
        )
    if row["status"] in RETURN_STATUSES or pickup_failed(row):
        return
    if row["status"] == "delivered":
        why = "was delivered"
    elif row["status"] == "failed":
        why = "failed before the carrier tried to collect it (no failed pickup is on record)"
    else:
        why = f"is {row['status']}"
    raise Problem(
        409,
        "not-returned",
        "Not returned",
        "Only a parcel on its way back or returned, or an intake whose door pickup failed, can be resent or "
        f"resolved; this one {why}.",
    )


async def _owned(conn: AsyncConnection, client_id: str, shipment_id: str) -> dict[str, Any]:
    row = await lock_shipment(conn, shipment_id)
    if row is None or row["client_id"] != client_id:
        raise not_found()
    return row


async def _cases(conn: AsyncConnection, shipment_id: str) -> list[tuple[str, str]]:
    rows = await conn.execute(
        select(shipment_cases.c.case_no, shipment_cases.c.item_name)
        .where(shipment_cases.c.shipment_id == shipment_id)
        .order_by(shipment_cases.c.position)
    )
    return [(r.case_no, r.item_name) for r in rows]


def _party(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {k: stored.get(k) for k in ("name", "phone", "province", "city", "district", "address", "postcode")}


def resend_spec(
    row: dict[str, Any], cases: list[tuple[str, str]], change: ResendIn, context: dict[str, Any] | None
) -> ShipmentCreate:
    """The new shipment: the old one's cases, department, window, contents and metadata, with the correction.
    Validated as a create is, so a resend obeys every rule a new shipment does: raises ValidationError for what
    the create rules refuse, and a 422 Problem for a correction that does not fit the shipment's kind."""
    delivery = row["kind"] == "delivery"
    errors = []
    if delivery and change.recipient is None:
        errors.append({"field": "recipient", "message": "is required: the corrected recipient"})
    if delivery and (change.pickup_window is not None or change.sender is not None):
        field = "pickup_window" if change.pickup_window is not None else "sender"
        errors.append({"field": field, "message": "applies to intake only"})
    if not delivery and change.pickup_window is None:
        errors.append({"field": "pickup_window", "message": "is required: the new pickup window"})
    if not delivery and change.recipient is not None:
        errors.append({"field": "recipient", "message": "applies to delivery only (an intake goes to the hall)"})
    if errors:
        raise validation_problem(errors)
    payload: dict[str, Any] = {
        "kind": row["kind"],
        "cases": [{"case_no": c, "item_name": n} for c, n in cases],
        "department": row["department"],
        "window": row["window"],
        "sender": change.sender.model_dump() if change.sender is not None else _party(row["sender"]),
        "recipient": change.recipient.model_dump() if change.recipient is not None else _party(row["recipient"]),
        "contents": [{"name": c["name"], "count": c["count"]} for c in row["contents"] or []],
        "verification_code": bool(row["verification_code"]),
        "metadata": row["extra"] or {},
        "payment_mode": row.get("payment_mode"),  # who pays stays as it was (null: the department's default)
    }
    if change.pickup_window is not None:
        payload["pickup_window"] = {"start": change.pickup_window.start, "end": change.pickup_window.end}
    return ShipmentCreate.model_validate(payload, context=context)


def _request_hash(shipment_id: str, payload: Any) -> str:
    # The old shipment is part of the hash: the same key and body for another shipment is another request.
    body = {"resend": shipment_id, "body": payload}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _stored(conn: AsyncConnection, client_id: str, key: str) -> Any:
    t = idempotency_records
    return (await conn.execute(select(t).where(t.c.client_id == client_id, t.c.key == key))).first()


@routes.post("/v1/shipments/{id}/resend")
async def resend(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    key = idempotency_key(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
    try:
        change = ResendIn.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    old_id = request.match_info["id"]
    request_hash = _request_hash(old_id, payload)
    context = {**(request.app[CREATE_CONTEXT] or {}), "now": utcnow()}
    try:
        async with request.app[DB].write() as conn:
            old = await _owned(conn, client_id, old_id)
            if key is not None and (record := await _stored(conn, client_id, key)) is not None:
                return replayed(record, request_hash)
            try:
                body = await resend_locked(
                    conn,
                    old,
                    change,
                    context=context,
                    settings=request.app[SETTINGS],
                    request_id=request[REQUEST_ID],
                    key=key,
                    request_hash=request_hash,
                )
            except ValidationError as exc:
                raise from_validation_error(exc) from None
    except IntegrityError:
        # The same key was taken meanwhile by another request (for another shipment): answer as it was answered.
        if key is None:
            raise
        async with request.app[DB].read() as conn:
            record = await _stored(conn, client_id, key)
        if record is None:
            raise
        return replayed(record, request_hash)
    request[SHIPMENT_ID] = body["id"]
    request.app[SIGNAL].poke()
    return web.Response(
        body=orjson.dumps(body), status=201, content_type=JSON, headers={"Location": f"/v1/shipments/{body['id']}"}
    )


async def resend_locked(
    conn: AsyncConnection,
    old: dict[str, Any],
    change: ResendIn,
    *,
    context: dict[str, Any] | None,
    settings: Settings,
    request_id: str | None,
    key: str | None = None,
    request_hash: str = "",
    staff_id: str | None = None,
) -> dict[str, Any]:
    """Send a parcel that came back again, in the caller's transaction (``old`` from ``lock_shipment``); returns
    the new shipment's answer. Raises the 409 Problem of ``undecided``, ValidationError for what the create
    rules refuse, or a 422 Problem for a correction that does not fit the kind. A resend from the console
    (``staff_id``) is also written in the old shipment's history with the clerk. The API and the hall's
    console both resend here."""
    undecided(old)
    cases = await _cases(conn, old["id"])
    spec = resend_spec(old, cases, change, context)
    if staff_id is not None:
        applied = await apply_event(
            conn, old, status=old["status"], source="console", carrier_text=RESENT_TEXT, staff_id=staff_id
        )
        assert applied is not None
        old = applied.shipment
    return await _insert_resend(conn, old, spec, settings, request_id, key, request_hash)


async def _insert_resend(
    conn: AsyncConnection,
    old: dict[str, Any],
    spec: ShipmentCreate,
    settings: Settings,
    request_id: str | None,
    key: str | None,
    request_hash: str,
) -> dict[str, Any]:
    """Write the new shipment as the group commit writes a create (row, cases, creation event, order task,
    idempotency record), linked both ways to the old one; returns its answer."""
    now = utcnow()
    row = shipment_row(
        spec,
        client_id=old["client_id"],
        request_id=request_id,
        carrier=settings.carrier,
        now=now,
        applicant_token=None,
        link_days=settings.applicant_link_days,
    )
    cases = [(c.case_no, c.item_name) for c in spec.cases]
    await conn.execute(
        insert(shipments).values(**row._asdict(), updated_at=now, last_sequence=1, resend_of=old["id"])
    )
    await conn.execute(
        insert(shipment_cases),
        [{"shipment_id": row.id, "position": n, "case_no": c, "item_name": i} for n, (c, i) in enumerate(cases)],
    )
    await conn.execute(
        insert(shipment_events).values(
            shipment_id=row.id, sequence=1, status=row.status, occurred_at=now, recorded_at=now, source="api"
        )
    )
    await insert_tasks(conn, [task_row("order", row.id, request_id=request_id)])
    await conn.execute(
        update(shipments).where(shipments.c.id == old["id"]).values(resent_as=row.id, updated_at=now)
    )
    body = {**shipment_answer(row, cases, settings.base_url), "resend_of": old["id"]}
    if key is not None:
        await conn.execute(
            insert(idempotency_records).values(
                client_id=old["client_id"],
                key=key,
                request_hash=request_hash,
                shipment_id=row.id,
                status_code=201,
                response_body=orjson.dumps(body).decode("utf-8"),
                created_at=now,
            )
        )
    return body


@routes.post("/v1/shipments/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
    try:
        decision = ResolveIn.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    async with request.app[DB].write() as conn:
        row = await _owned(conn, client_id, request.match_info["id"])
        row = await record_resolution(conn, row, decision.action, decision.note)
        body = await full_shipment(conn, row, request.app[SETTINGS].base_url)
    request.app[SIGNAL].poke()
    return json_response(body)


async def record_resolution(
    conn: AsyncConnection, row: dict[str, Any], action: str, note: str | None, *, staff_id: str | None = None
) -> dict[str, Any]:
    """The hall's decision on a parcel that came back, in the caller's transaction (``row`` from
    ``lock_shipment``): the resolution and its ``shipment.resolved`` webhook; raises the 409 Problem of
    ``undecided`` when there is nothing to decide. A decision from the console (``staff_id``) is also written
    in the history with the clerk; its event text is fixed wording, never the note (typed text stays out of
    events, which the purge does not clear). The API and the hall's console both resolve here."""
    undecided(row)
    if staff_id is not None:
        applied = await apply_event(
            conn, row, status=row["status"], source="console", carrier_text=RESOLUTION_TEXT[action], staff_id=staff_id
        )
        assert applied is not None
        row = applied.shipment
    now = utcnow()
    resolution = {"action": action, "note": note, "resolved_at": iso(now)}
    values = {"resolution": resolution, "updated_at": now}
    await conn.execute(update(shipments).where(shipments.c.id == row["id"]).values(**values))
    row = {**row, **values}
    await emit(conn, row, RESOLVED, None, extra={"resolution": resolution})
    return row
