"""/v1/shipments: create, read, list, cancel."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from logistics.accounts import applicant
from logistics.api.appkeys import COMMITTER, CREATE_CONTEXT, DB, REQUEST_ID, SETTINGS, SHIPMENT_ID, SIGNAL
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, field_errors, not_found, validation_problem
from logistics.api.paging import ListQuery, if_given
from logistics.api.present import iso, shipment_json
from logistics.api.schemas import ShipmentCreate
from logistics.domain import ids
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.payment import RECIPIENT_PAYS
from logistics.domain.statuses import CANCELLABLE, STATUSES
from logistics.domain.tables import shipment_cases, shipment_events, shipments, utcnow
from logistics.storage.group_commit import IdempotencyClaim, NewShipment, Outcome, ShipmentRow, StoredRecord
from logistics.storage.outbox import insert_tasks, task_row

routes = web.RouteTableDef()
JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def declares_json(content_type: str) -> bool:
    """``application/json`` (any parameters, e.g. charset) and ``application/*+json``; a body without a
    Content-Type is read as JSON, as clients such as scripts often leave it out."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))


async def read_json(request: web.Request) -> Any:
    declared = request.headers.get("Content-Type", "")
    if not declares_json(declared):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the body as application/json.",
            headers={"Accept-Post": "application/json"},
        )
    raw = await request.read()
    if not raw:
        raise Problem(400, "malformed-json", "Malformed JSON", "The request body is empty.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", f"The body is not valid JSON ({exc.msg}).") from None


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise Problem(400, "bad-idempotency-key", "Bad Idempotency-Key", "Use 1–255 printable characters.")
    return key


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A create request that passed every check: who sent it, its Idempotency-Key, its body and what it says."""

    client_id: str
    key: str | None
    payload: dict[str, Any]
    spec: ShipmentCreate


async def read_create(request: web.Request) -> CreateRequest:
    """Authenticate and validate a create, or raise the Problem that answers it."""
    client_id = await authenticate(request)
    key = idempotency_key(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
    try:
        spec = ShipmentCreate.model_validate(payload, context=request.app[CREATE_CONTEXT])
    except ValidationError as exc:
        raise create_problem(exc) from None
    return CreateRequest(client_id, key, payload, spec)


def create_problem(exc: ValidationError) -> Problem:
    """The 422 of a refused create. Asking the recipient to pay is a rule of the service, not a typing slip:
    the problem's detail then says why in words, not only the field's entry in ``errors``."""
    errors = field_errors(exc)
    for error in errors:
        if error["field"] == "payment_mode" and error["message"].startswith(RECIPIENT_PAYS):
            return Problem(422, "validation", "Invalid request", error["message"], errors=errors)
    return validation_problem(errors)


def shipment_row(
    spec: ShipmentCreate,
    *,
    client_id: str,
    request_id: str | None,
    carrier: str,
    now: datetime,
    applicant_token: str | None,
    link_days: float,
) -> ShipmentRow:
    """The new shipment's row, with fresh ids; the applicant link (when the applicant chooses) kept as a hash."""
    window = spec.pickup_window
    link = applicant.link_columns(applicant_token, now, link_days)
    return ShipmentRow(
        id=ids.shipment_id(),
        client_id=client_id,
        kind=spec.kind,
        status="awaiting_applicant" if spec.applicant_choice else "pending",
        department=spec.department,
        window=spec.window,
        sender=dict(spec.sender.__dict__) if spec.sender is not None else None,
        recipient=dict(spec.recipient.__dict__) if spec.recipient is not None else None,
        contents=[{"name": c.name, "count": c.count} for c in spec.contents],
        extra=spec.metadata,
        pickup_start=window.start if window is not None else None,
        pickup_end=window.end if window is not None else None,
        verification_code=ids.verification_code() if spec.verification_code else None,
        tracking_code=ids.tracking_code(),
        carrier=carrier,
        request_id=request_id,
        created_at=now,
        applicant_token_hash=link["applicant_token_hash"],
        applicant_expires_at=link["applicant_expires_at"],
        due_by=spec.due_by,
        payment_mode=spec.payment_mode,
    )


def shipment_answer(row: ShipmentRow, cases: list[tuple[str, str]], base_url: str) -> dict[str, Any]:
    """The answer to a create, straight from its row (no intermediate row dict: this is the service's hot path).
    present.shipment_json is the shape of the answer, and a test holds them equal. The applicant link is not in
    it: only the first answer holds it (answer_bodies)."""
    created = iso(row.created_at)
    window = None if row.pickup_start is None else {"start": iso(row.pickup_start), "end": iso(row.pickup_end)}
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "cases": [{"case_no": case_no, "item_name": item_name} for case_no, item_name in cases],
        "department": row.department,
        "window": row.window,
        "sender": row.sender,
        "recipient": row.recipient,
        "contents": row.contents,
        "pickup_window": window,
        "carrier": row.carrier,
        "waybill_no": None,
        "route_code": None,
        "destination_name": None,
        "tracking_code": row.tracking_code,
        "tracking_url": f"{base_url}/t/{row.tracking_code}",
        "label_url": None,
        "verification_code": row.verification_code,
        "applicant_url": None,
        "failure_reason": None,
        "proof": None,
        "attempts": 0,
        "last_failure": None,
        "resend_of": None,
        "resent_as": None,
        "resolution": None,
        "metadata": row.extra,
        "created_at": created,
        "updated_at": created,
        "due_by": row.due_by.isoformat() if row.due_by is not None else None,
        "overdue_at": None,
        "payment_mode": row.payment_mode,
    }


def answer_bodies(
    answer: dict[str, Any], applicant_token: str | None, keyed: bool, base_url: str
) -> tuple[bytes, str | None]:
    """The body sent now, and the one stored for replays of its Idempotency-Key (None without a key).

    The applicant link is a credential kept only as a hash: the stored answer leaves it out, and a replay issues
    a fresh link instead (_with_fresh_link)."""
    if applicant_token is None:
        body = orjson.dumps(answer)
        return body, body.decode("utf-8") if keyed else None
    stored = orjson.dumps(answer).decode("utf-8") if keyed else None
    return orjson.dumps({**answer, "applicant_url": applicant.link_url(base_url, applicant_token)}), stored


def idempotency_claim(client_id: str, key: str, payload: dict[str, Any], stored: str) -> IdempotencyClaim:
    """The record a keyed create stores: the same key with another body is refused, with the same one replayed."""
    request_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return IdempotencyClaim(client_id, key, request_hash, stored)


async def commit(
    app: web.Application, row: ShipmentRow, cases: list[tuple[str, str]], claim: IdempotencyClaim | None
) -> Outcome:
    """Hand the rows to the group commit and wait until they are durable (or the key proved taken)."""
    return await app[COMMITTER].submit(NewShipment(row, cases, claim))


@dataclass(frozen=True, slots=True)
class Created:
    """What a create did: the new shipment's row and the answer for it, or — when its Idempotency-Key was used
    before — the first create's record (``existing``), which the caller answers with."""

    row: ShipmentRow
    body: bytes  # the answer to send for a new shipment (with the applicant link, when there is one)
    claim: IdempotencyClaim | None
    existing: StoredRecord | None


async def create_new(app: web.Application, create: CreateRequest, *, request_id: str | None) -> Created:
    """Create the shipment a validated request describes, durable when this returns: the one way shipments are
    made, by the API's POST /v1/shipments and by the hall's console (logistics/console/create.py)."""
    settings = app[SETTINGS]
    applicant_token = applicant.new_token() if create.spec.applicant_choice else None
    row = shipment_row(
        create.spec,
        client_id=create.client_id,
        request_id=request_id,
        carrier=settings.carrier,
        now=utcnow(),
        applicant_token=applicant_token,
        link_days=settings.applicant_link_days,
    )
    cases = [(c.case_no, c.item_name) for c in create.spec.cases]
    answer = shipment_answer(row, cases, settings.base_url)
    body, stored = answer_bodies(answer, applicant_token, create.key is not None, settings.base_url)
    claim = None
    if create.key is not None and stored is not None:
        claim = idempotency_claim(create.client_id, create.key, create.payload, stored)
    outcome = await commit(app, row, cases, claim)
    # Only a keyed create can lose its shipment to an earlier one, which the outcome then carries.
    assert outcome.created or (claim is not None and outcome.existing is not None)
    return Created(row, body, claim, None if outcome.created else outcome.existing)


async def replay(
    request: web.Request, create: CreateRequest, claim: IdempotencyClaim, existing: StoredRecord
) -> web.Response:
    """The answer to a create whose Idempotency-Key was used before: the first answer again, or 422 when the
    key came with another body."""
    body = existing.response_body.encode("utf-8")
    if existing.request_hash == claim.request_hash and create.spec.applicant_choice:
        body = await _with_fresh_link(request, create.client_id, existing.shipment_id, body)
    return replayed(existing, claim.request_hash, body)


def replayed(record: Any, request_hash: str, body: bytes | None = None) -> web.Response:
    """The first answer stored for an Idempotency-Key (``body`` if given), or 422 when the key came with another
    request body. ``record`` is an idempotency record (status_code, response_body, request_hash, shipment_id)."""
    if record.request_hash != request_hash:
        raise Problem(
            422,
            "idempotency-mismatch",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request body.",
        )
    return web.Response(
        body=record.response_body.encode("utf-8") if body is None else body,
        status=record.status_code,
        content_type=JSON,
        headers={"Idempotent-Replayed": "true", "Location": f"/v1/shipments/{record.shipment_id}"},
    )


@routes.post("/v1/shipments")
async def create_shipment(request: web.Request) -> web.Response:
    create = await read_create(request)
    done = await create_new(request.app, create, request_id=request[REQUEST_ID])
    if done.existing is not None:
        assert done.claim is not None
        return await replay(request, create, done.claim, done.existing)
    request[SHIPMENT_ID] = done.row.id
    return web.Response(
        body=done.body, status=201, content_type=JSON, headers={"Location": f"/v1/shipments/{done.row.id}"}
    )


async def _with_fresh_link(request: web.Request, client_id: str, shipment_id: str, stored: bytes) -> bytes:
    """The replayed answer of an applicant-choice create: a new link replaces the one only the first answer held
    (the previous link stops working), or null once the applicant has chosen or the shipment moved on."""
    settings = request.app[SETTINGS]
    body = orjson.loads(stored)
    try:
        issued = await applicant.reissue(request.app[DB], client_id, shipment_id, settings.applicant_link_days)
    except ValueError:  # no longer awaiting the applicant
        issued = None
    body["applicant_url"] = applicant.link_url(settings.base_url, issued[0]) if issued is not None else None
    return orjson.dumps(body)


async def _cases_for(conn: Any, shipment_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    by_shipment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if shipment_ids:
        rows = await conn.execute(
            select(shipment_cases)
            .where(shipment_cases.c.shipment_id.in_(shipment_ids))
            .order_by(shipment_cases.c.shipment_id, shipment_cases.c.position)
        )
        for r in rows:
            by_shipment[r.shipment_id].append(dict(r._mapping))
    return by_shipment


async def load_owned(conn: Any, client_id: str, shipment_id: str) -> dict[str, Any]:
    row = (
        await conn.execute(select(shipments).where(shipments.c.id == shipment_id, shipments.c.client_id == client_id))
    ).first()
    if row is None:  # another client's shipment is indistinguishable from a missing one
        raise not_found()
    return dict(row._mapping)


async def full_shipment(conn: Any, row: dict[str, Any], base_url: str) -> dict[str, Any]:
    cases = (await _cases_for(conn, [row["id"]]))[row["id"]]
    events = await conn.execute(
        select(shipment_events).where(shipment_events.c.shipment_id == row["id"]).order_by(shipment_events.c.sequence)
    )
    return shipment_json(row, cases, base_url, [dict(e._mapping) for e in events])


@routes.get("/v1/shipments/{id}")
async def get_shipment(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    async with request.app[DB].read() as conn:
        row = await load_owned(conn, client_id, request.match_info["id"])
        return json_response(await full_shipment(conn, row, request.app[SETTINGS].base_url))


@routes.get("/v1/shipments")
async def list_shipments(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    status = q.choice("status", STATUSES)
    case_no = q.text("case_no")
    q.cursor("shp_")
    with_case = select(shipment_cases.c.shipment_id).where(shipment_cases.c.case_no == case_no)
    query = select(shipments).where(
        shipments.c.client_id == client_id,
        if_given(status, shipments.c.status == status),
        if_given(case_no, shipments.c.id.in_(with_case)),
    )
    base_url = request.app[SETTINGS].base_url
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, shipments.c.id)
        rows = [dict(r._mapping) for r in page.rows]
        cases = await _cases_for(conn, [r["id"] for r in rows])
    return json_response(page.answer([shipment_json(r, cases[r["id"]], base_url) for r in rows]))


@routes.post("/v1/shipments/{id}/cancel")
async def cancel_shipment(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    reason = "申请人取消"
    if request.can_read_body:
        payload = await read_json(request)
        if isinstance(payload, dict) and isinstance(payload.get("reason"), str) and payload["reason"].strip():
            reason = payload["reason"].strip()[:200]
    db = request.app[DB]
    async with db.write() as conn:
        row = await lock_shipment(conn, request.match_info["id"])
        if row is None or row["client_id"] != client_id:
            raise not_found()
        if row["status"] != "cancelled":
            row = await cancel(conn, row, reason=reason, source="api", request_id=request[REQUEST_ID])
        body = await full_shipment(conn, row, request.app[SETTINGS].base_url)
    request.app[SIGNAL].poke()
    return json_response(body)


async def cancel(
    conn: Any, row: dict[str, Any], *, reason: str, source: str, request_id: str | None, staff_id: str | None = None
) -> dict[str, Any]:
    """Cancel a shipment not yet picked up, and its carrier order (a ``cancel`` task), in the caller's
    transaction; ``row`` must come from ``lock_shipment``. Returns the row after; raises the 409 Problem
    ``not-cancellable`` once the parcel was collected or ended. The API and the hall's console both cancel here."""
    if row["status"] not in CANCELLABLE:
        raise Problem(
            409,
            "not-cancellable",
            "Cannot cancel",
            f"The shipment is {row['status']}; only shipments not yet picked up can be cancelled.",
        )
    applied = await apply_event(conn, row, status="cancelled", source=source, carrier_text=reason, staff_id=staff_id)
    assert applied is not None
    await insert_tasks(conn, [task_row("cancel", row["id"], {"reason": reason}, request_id=request_id)])
    return applied.shipment
