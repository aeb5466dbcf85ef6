"""/v1/shipments: create, read, list, cancel."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from logistics import applicant, ids
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, from_validation_error, not_found, validation_problem
from logistics.api.paging import ListQuery
from logistics.api.present import shipment_json
from logistics.api.schemas import ShipmentCreate
from logistics.events import apply_event, lock_shipment
from logistics.ingest import NewShipment
from logistics.lifecycle import CANCELLABLE, STATUSES
from logistics.models import shipment_cases, shipment_events, shipments, utcnow
from logistics.outbox import insert_tasks, task_row

routes = web.RouteTableDef()
JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


async def read_json(request: web.Request) -> Any:
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
    try:
        spec = ShipmentCreate.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc) from None

    settings = request.app["settings"]
    now = utcnow()
    sid = ids.shipment_id()
    status = "awaiting_applicant" if spec.applicant_choice else "pending"
    applicant_token = applicant.new_token() if spec.applicant_choice else None
    row: dict[str, Any] = {
        "id": sid,
        "client_id": client_id,
        "kind": spec.kind,
        "status": status,
        "department": spec.department,
        "window": spec.window,
        "sender": spec.sender.model_dump() if spec.sender else None,
        "recipient": spec.recipient.model_dump() if spec.recipient else None,
        "contents": [c.model_dump() for c in spec.contents],
        "extra": spec.metadata,
        "pickup_start": spec.pickup_window.start if spec.pickup_window else None,
        "pickup_end": spec.pickup_window.end if spec.pickup_window else None,
        "verification_code": ids.verification_code() if spec.verification_code else None,
        "tracking_code": ids.tracking_code(),
        "carrier": settings.carrier,
        "waybill_no": None,
        "route_code": None,
        "destination_code": None,
        "destination_name": None,
        "package_code": None,
        "package_name": None,
        "failure_reason": None,
        "last_sequence": 1,
        "request_id": request["request_id"],
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "purged_at": None,
        **applicant.link_columns(applicant_token, now, settings.applicant_link_days),
    }
    cases = [
        {"shipment_id": sid, "position": n, "case_no": c.case_no, "item_name": c.item_name}
        for n, c in enumerate(spec.cases)
    ]
    event = {
        "shipment_id": sid,
        "sequence": 1,
        "status": status,
        "occurred_at": now,
        "recorded_at": now,
        "source": "api",
        "carrier_code": None,
        "carrier_text": None,
        "location": None,
        "dedup_key": None,
    }
    task = task_row("order", sid, due_at=now, request_id=request["request_id"]) if status == "pending" else None
    body = orjson.dumps(shipment_json(row, cases, settings.base_url, applicant_token=applicant_token))
    item = NewShipment(shipment=row, cases=cases, event=event, outbox=task)
    if key is not None:
        request_hash = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        item.idempotency = {
            "client_id": client_id,
            "key": key,
            "request_hash": request_hash,
            "shipment_id": sid,
            "status_code": 201,
            # The applicant link is a credential kept only as a hash: the stored answer leaves it out, and a
            # replay issues a fresh link instead (_with_fresh_link).
            "response_body": (
                body if applicant_token is None else orjson.dumps(shipment_json(row, cases, settings.base_url))
            ).decode("utf-8"),
            "created_at": now,
        }
    outcome = await request.app["committer"].submit(item)
    if not outcome.created:
        existing = outcome.existing or {}
        if item.idempotency and existing.get("request_hash") != item.idempotency["request_hash"]:
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
    request["shipment_id"] = sid
    return web.Response(body=body, status=201, content_type=JSON, headers={"Location": f"/v1/shipments/{sid}"})


async def _with_fresh_link(request: web.Request, client_id: str, shipment_id: str, stored: bytes) -> bytes:
    """The replayed answer of an applicant-choice create: a new link replaces the one only the first answer held
    (the previous link stops working), or null once the applicant has chosen or the shipment moved on."""
    settings = request.app["settings"]
    body = orjson.loads(stored)
    try:
        issued = await applicant.reissue(request.app["db"], client_id, shipment_id, settings.applicant_link_days)
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
    async with request.app["db"].read() as conn:
        row = await load_owned(conn, client_id, request.match_info["id"])
        return json_response(await full_shipment(conn, row, request.app["settings"].base_url))


@routes.get("/v1/shipments")
async def list_shipments(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    settings = request.app["settings"]
    q = ListQuery(request.query, maximum=settings.page_size_max)
    status = q.choice("status", STATUSES)
    case_no = q.text("case_no")
    cursor = q.cursor("shp_")
    query = select(shipments).where(shipments.c.client_id == client_id)
    if status is not None:
        query = query.where(shipments.c.status == status)
    if case_no:
        matching = select(shipment_cases.c.shipment_id).where(shipment_cases.c.case_no == case_no)
        query = query.where(shipments.c.id.in_(matching))
    if cursor:
        query = query.where(shipments.c.id < cursor)
    query = query.order_by(shipments.c.id.desc()).limit(q.limit + 1)
    async with request.app["db"].read() as conn:
        rows, more = q.split([dict(r._mapping) for r in await conn.execute(query)])
        cases = await _cases_for(conn, [r["id"] for r in rows])
    data = [shipment_json(r, cases[r["id"]], settings.base_url) for r in rows]
    return json_response(q.page(data, rows[-1]["id"] if more else None))


@routes.post("/v1/shipments/{id}/cancel")
async def cancel_shipment(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    reason = "申请人取消"
    if request.can_read_body:
        payload = await read_json(request)
        if isinstance(payload, dict) and isinstance(payload.get("reason"), str) and payload["reason"].strip():
            reason = payload["reason"].strip()[:200]
    db = request.app["db"]
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
                conn, [task_row("cancel", row["id"], {"reason": reason}, request_id=request["request_id"])]
            )
            row = applied.shipment
        body = await full_shipment(conn, row, request.app["settings"].base_url)
    request.app["signal"].poke()
    return json_response(body)
