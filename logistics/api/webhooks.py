"""/v1/webhook-deliveries and /v1/webhook-endpoint: what was sent to the client, replays, re-enabling."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import web
from sqlalchemy import select

from logistics.accounts import clients
from logistics.api.appkeys import DB, SETTINGS, SIGNAL
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, not_found
from logistics.api.paging import ListQuery, if_given
from logistics.api.present import iso
from logistics.api.shipments import json_response
from logistics.domain.events import requeue_deliveries, webhook_body
from logistics.domain.tables import clients as clients_table
from logistics.domain.tables import utcnow, webhook_attempts, webhook_deliveries

routes = web.RouteTableDef()
DELIVERY_STATUSES = ("pending", "delivered", "failed", "skipped")
# Each delivery lists its most recent attempts; a redelivered one may have many, the page must stay small.
ATTEMPTS_SHOWN = 50


def attempt_json(a: Any) -> dict[str, Any]:
    return {
        "attempted_at": iso(a.attempted_at),
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "response_body": a.response_body,
    }


def delivery_json(d: Any, attempts: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "type": d.type,
        "shipment_id": d.shipment_id,
        "sequence": d.sequence,
        "status": d.status,
        "attempt_count": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": iso(d.created_at),
        "delivered_at": iso(d.delivered_at),
        "payload": webhook_body(d.payload, base_url),
        "attempts": attempts,
    }


async def _with_attempts(conn: Any, rows: list[Any], base_url: str) -> list[dict[str, Any]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        result = await conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_([r.id for r in rows]))
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.id.desc())
        )
        for a in result:
            if len(found[a.delivery_id]) < ATTEMPTS_SHOWN:
                found[a.delivery_id].append(attempt_json(a))
    # Oldest first reads like a log; the query took the newest ones so that the cap keeps the recent.
    return [delivery_json(r, found[r.id][::-1], base_url) for r in rows]


@routes.get("/v1/webhook-deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    status = q.choice("status", DELIVERY_STATUSES)
    shipment_id = q.text("shipment_id")
    q.cursor("msg_")
    query = select(webhook_deliveries).where(
        webhook_deliveries.c.client_id == client_id,
        if_given(status, webhook_deliveries.c.status == status),
        if_given(shipment_id, webhook_deliveries.c.shipment_id == shipment_id),
    )
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, webhook_deliveries.c.id)
        data = await _with_attempts(conn, page.rows, request.app[SETTINGS].base_url)
    return json_response(page.answer(data))


async def _owned(conn: Any, client_id: str, delivery_id: str) -> Any:
    row = (
        await conn.execute(
            select(webhook_deliveries).where(
                webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.client_id == client_id
            )
        )
    ).first()
    if row is None:  # another client's delivery is indistinguishable from a missing one
        raise not_found("webhook delivery")
    return row


@routes.get("/v1/webhook-deliveries/{id}")
async def get_delivery(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    async with request.app[DB].read() as conn:
        row = await _owned(conn, client_id, request.match_info["id"])
        (body,) = await _with_attempts(conn, [row], request.app[SETTINGS].base_url)
    return json_response(body)


@routes.post("/v1/webhook-deliveries/{id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    db = request.app[DB]
    async with db.write() as conn:
        row = await _owned(conn, client_id, request.match_info["id"])
        endpoint = (
            await conn.execute(
                select(clients_table.c.webhook_url, clients_table.c.webhook_disabled_at).where(
                    clients_table.c.id == client_id
                )
            )
        ).one()
        if not endpoint.webhook_url or endpoint.webhook_disabled_at is not None:
            raise Problem(
                409,
                "webhook-endpoint-disabled",
                "Webhook endpoint disabled",
                "Enable the endpoint first (POST /v1/webhook-endpoint/enable); it sends what was skipped.",
            )
        await requeue_deliveries(conn, [{"id": row.id, "shipment_id": row.shipment_id}], utcnow())
        row = await _owned(conn, client_id, row.id)
        (body,) = await _with_attempts(conn, [row], request.app[SETTINGS].base_url)
    request.app[SIGNAL].poke()
    return json_response(body, status=202)


def endpoint_json(row: Any, replayed: int | None = None) -> dict[str, Any]:
    body = {
        "url": row.webhook_url,
        "enabled": row.webhook_disabled_at is None,
        "disabled_at": iso(row.webhook_disabled_at),
        "failing_since": iso(row.webhook_failing_since),
        "previous_secret_valid_until": iso(row.webhook_previous_until),
    }
    if replayed is not None:
        body["replayed"] = replayed
    return body


@routes.get("/v1/webhook-endpoint")
async def get_endpoint(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    async with request.app[DB].read() as conn:
        row = (await conn.execute(select(clients_table).where(clients_table.c.id == client_id))).one()
    return json_response(endpoint_json(row))


@routes.post("/v1/webhook-endpoint/enable")
async def enable_endpoint(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    db = request.app[DB]
    async with db.read() as conn:
        url = (await conn.execute(select(clients_table.c.webhook_url).where(clients_table.c.id == client_id))).scalar()
    if not url:
        raise Problem(409, "no-webhook-url", "No webhook URL", "An operator sets the URL (clients set-webhook).")
    endpoint = await clients.set_webhook(db, client_id, enable=True)
    async with db.read() as conn:
        row = (await conn.execute(select(clients_table).where(clients_table.c.id == client_id))).one()
    if endpoint.replayed:
        request.app[SIGNAL].poke()
    return json_response(endpoint_json(row, endpoint.replayed))
