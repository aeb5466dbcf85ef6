"""/v1/shipments: create, read, list, cancel."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from logistics.accounts import applicant
from logistics.api.appkeys import COMMITTER, CREATE_CONTEXT, DB, REQUEST_ID, SETTINGS, SHIPMENT_ID, SIGNAL
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, from_validation_error, not_found, validation_problem
from logistics.api.paging import ListQuery, if_given
from logistics.api.present import iso, shipment_json
from logistics.api.schemas import ShipmentCreate
from logistics.domain import ids
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.statuses import CANCELLABLE, STATUSES
from logistics.domain.tables import shipment_cases, shipment_events, shipments, utcnow
from logistics.storage.group_commit import NewShipment
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


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise Problem(400, "bad-idempotency-key", "Bad Idempotency-Key", "Use 1–255 printable characters.")
    return key


@routes.post("/v1/shipments")
async def create_shipment(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    key = _idempotency_key(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
    app = request.app
    try:
        spec = ShipmentCreate.model_validate(payload, context=app[CREATE_CONTEXT])
    except ValidationError as exc:
        raise from_validation_error(exc) from None

    # The hot path of the service: the answer and the rows are built straight from the validated model (no
    # intermediate row dicts); present.shipment_json is the shape of the answer, and a test holds them equal.
    settings = app[SETTINGS]
    base_url = settings.base_url
    now = utcnow()
    sid = ids.shipment_id()
    tracking_code = ids.tracking_code()
    verification_code = ids.verification_code() if spec.verification_code else None
    status = "awaiting_applicant" if spec.applicant_choice else "pending"
    applicant_token = applicant.new_token() if spec.applicant_choice else None
    link = applicant.link_columns(applicant_token, now, settings.applicant_link_days)
    sender = dict(spec.sender.__dict__) if spec.sender is not None else None
    recipient = dict(spec.recipient.__dict__) if spec.recipient is not None else None
    contents = [{"name": c.name, "count": c.count} for c in spec.contents]
    window = spec.pickup_window
    created = iso(now)
    answer: dict[str, Any] = {
        "id": sid,
        "status": status,
        "kind": spec.kind,
        "cases": [{"case_no": c.case_no, "item_name": c.item_name} for c in spec.cases],
        "department": spec.department,
        "window": spec.window,
        "sender": sender,
        "recipient": recipient,
        "contents": contents,
        "pickup_window": {"start": iso(window.start), "end": iso(window.end)} if window is not None else None,
        "carrier": settings.carrier,
        "waybill_no": None,
        "route_code": None,
        "destination_name": None,
        "tracking_code": tracking_code,
        "tracking_url": f"{base_url}/t/{tracking_code}",
        "label_url": None,
        "verification_code": verification_code,
        "applicant_url": None,
        "failure_reason": None,
        "metadata": spec.metadata,
        "created_at": created,
        "updated_at": created,
    }
    if applicant_token is None:
        body = stored = orjson.dumps(answer)
    else:
        # The applicant link is a credential kept only as a hash: the stored answer (replayed for the same
        # Idempotency-Key) leaves it out, and a replay issues a fresh link instead (_with_fresh_link).
        stored = orjson.dumps(answer) if key is not None else b""
        answer["applicant_url"] = applicant.link_url(base_url, applicant_token)
        body = orjson.dumps(answer)
    item = NewShipment(
        shipment=(
            sid,
            client_id,
            spec.kind,
            status,
            spec.department,
            spec.window,
            sender,
            recipient,
            contents,
            spec.metadata,
            window.start if window is not None else None,
            window.end if window is not None else None,
            verification_code,
            tracking_code,
            settings.carrier,
            request[REQUEST_ID],
            now,
            link["applicant_token_hash"],
            link["applicant_expires_at"],
        ),
        cases=[(c.case_no, c.item_name) for c in spec.cases],
    )
    if key is not None:
        request_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        item.idempotency = (client_id, key, request_hash, stored.decode("utf-8"))
    outcome = await app[COMMITTER].submit(item)
    if not outcome.created:
        existing = outcome.existing or {}
        if item.idempotency and existing.get("request_hash") != item.idempotency[2]:
            raise Problem(
                422,
                "idempotency-mismatch",
                "Idempotency-Key reused",
                "This Idempotency-Key was used with a different request body.",
            )
        replay = existing["response_body"].encode("utf-8")
        if spec.applicant_choice:
            replay = await _with_fresh_link(request, client_id, existing["shipment_id"], replay)
        return web.Response(
            body=replay,
            status=existing["status_code"],
            content_type=JSON,
            headers={"Idempotent-Replayed": "true", "Location": f"/v1/shipments/{existing['shipment_id']}"},
        )
    request[SHIPMENT_ID] = sid
    return web.Response(body=body, status=201, content_type=JSON, headers={"Location": f"/v1/shipments/{sid}"})


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
            if row["status"] not in CANCELLABLE:
                raise Problem(
                    409,
                    "not-cancellable",
                    "Cannot cancel",
                    f"The shipment is {row['status']}; only shipments not yet picked up can be cancelled.",
                )
            applied = await apply_event(conn, row, status="cancelled", source="api", carrier_text=reason)
            assert applied is not None
            await insert_tasks(
                conn, [task_row("cancel", row["id"], {"reason": reason}, request_id=request[REQUEST_ID])]
            )
            row = applied.shipment
        body = await full_shipment(conn, row, request.app[SETTINGS].base_url)
    request.app[SIGNAL].poke()
    return json_response(body)
