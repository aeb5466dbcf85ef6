"""The endpoint matrix: every /v1 operation, from the app's router and the OpenAPI document, with how to call it
as the owner of the hall's data and what anyone else must get instead (a module name of its own: test folders
here are not packages)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from security_support import World

from logistics.api.app import create_app
from logistics.api.docs import openapi_document
from logistics.config import Settings
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import utcnow
from logistics.statement import HEADER

from support import delivery_body


@dataclass(frozen=True)
class Call:
    path: str
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1") and route.method != "HEAD"
    }


DOC = openapi_document()
ROUTED = _routes()
DOCUMENTED = {(method.upper(), path) for path, ops in DOC["paths"].items() if path.startswith("/v1") for method in ops}
V1 = sorted(ROUTED | DOCUMENTED)


def scheme(method: str, path: str) -> str:
    """ "client" (API key), "staff" (staff token) or "unknown", from the operation's OpenAPI security."""
    op = DOC["paths"].get(path, {}).get(method.lower())
    if op is None:
        return "unknown"
    names = {name for requirement in op.get("security", DOC["security"]) for name in requirement}
    return {frozenset({"bearer"}): "client", frozenset({"staff"}): "staff"}.get(frozenset(names), "unknown")


CLIENT_OPS = [op for op in V1 if scheme(*op) == "client"]
STAFF_OPS = [op for op in V1 if scheme(*op) == "staff"]
IDEMPOTENCY_KEY = "sj-spxt-2018-00095-1"


def _scan(w: World) -> Call:
    return Call(
        "/v1/scans",
        json={"scan_id": "dev-7f3a-0001", "code": w.shipment["tracking_code"], "action": "pickup"},
    )


# How to call each endpoint so that it touches the hall's data (as the owner it succeeds).
CALLS: dict[tuple[str, str], Callable[[World], Call]] = {
    ("POST", "/v1/shipments"): lambda w: Call(
        "/v1/shipments", json=delivery_body(), headers={"Idempotency-Key": IDEMPOTENCY_KEY}
    ),
    ("GET", "/v1/shipments"): lambda w: Call("/v1/shipments", query={"case_no": w.shipment["cases"][0]["case_no"]}),
    ("GET", "/v1/shipments/{id}"): lambda w: Call(f"/v1/shipments/{w.shipment['id']}"),
    ("POST", "/v1/shipments/{id}/cancel"): lambda w: Call(
        f"/v1/shipments/{w.shipment['id']}/cancel", json={"reason": "申请人改为窗口自取"}
    ),
    ("POST", "/v1/shipments/{id}/resend"): lambda w: Call(
        f"/v1/shipments/{w.returned['id']}/resend", json={"recipient": w.returned["recipient"]}
    ),
    ("POST", "/v1/shipments/{id}/resolve"): lambda w: Call(
        f"/v1/shipments/{w.returned['id']}/resolve", json={"action": "window_pickup"}
    ),
    ("GET", "/v1/shipments/{id}/label"): lambda w: Call(
        f"/v1/shipments/{w.shipment['id']}/label", query={"format": "zpl"}
    ),
    ("POST", "/v1/labels"): lambda w: Call("/v1/labels", json={"shipment_ids": [w.shipment["id"]], "format": "zpl"}),
    ("GET", "/v1/shipments/{id}/proof"): lambda w: Call(f"/v1/shipments/{w.delivered['id']}/proof"),
    ("POST", "/v1/shipments/{id}/applicant-link"): lambda w: Call(f"/v1/shipments/{w.awaiting['id']}/applicant-link"),
    ("GET", "/v1/webhook-deliveries"): lambda w: Call(
        "/v1/webhook-deliveries", query={"shipment_id": w.shipment["id"]}
    ),
    ("GET", "/v1/webhook-deliveries/{id}"): lambda w: Call(f"/v1/webhook-deliveries/{w.delivery_id}"),
    ("POST", "/v1/webhook-deliveries/{id}/redeliver"): lambda w: Call(
        f"/v1/webhook-deliveries/{w.delivery_id}/redeliver"
    ),
    ("GET", "/v1/webhook-endpoint"): lambda w: Call("/v1/webhook-endpoint"),
    ("POST", "/v1/webhook-endpoint/enable"): lambda w: Call("/v1/webhook-endpoint/enable"),
    ("GET", "/v1/complaints"): lambda w: Call("/v1/complaints", query={"shipment_id": w.shipment["id"]}),
    ("GET", "/v1/ratings"): lambda w: Call("/v1/ratings"),
    ("GET", "/v1/follow-ups"): lambda w: Call("/v1/follow-ups", query={"status": "open"}),
    ("POST", "/v1/follow-ups/{id}/close"): lambda w: Call(
        f"/v1/follow-ups/{w.follow_up_id}/close", json={"action": "已电话回访申请人并致歉"}
    ),
    ("POST", "/v1/scans"): _scan,
    ("GET", "/v1/scans/lookup"): lambda w: Call("/v1/scans/lookup", query={"code": w.shipment["waybill_no"]}),
    ("GET", "/v1/staff/me"): lambda w: Call("/v1/staff/me"),
    ("GET", "/v1/statements"): lambda w: Call(
        "/v1/statements", query={"department": w.delivered["department"], "month": f"{beijing_today(utcnow()):%Y-%m}"}
    ),
}


def _empty_list(body: dict[str, Any], _: World) -> None:
    assert body["data"] == [] and body["next_cursor"] is None


def _no_endpoint(body: dict[str, Any], _: World) -> None:
    assert body["url"] is None


def _header_only(body: str, _: World) -> None:
    assert body == "\ufeff" + ",".join(HEADER) + "\r\n"


def _a_new_shipment(body: dict[str, Any], w: World) -> None:
    # Idempotency keys belong to a client: the hall's key gives another client a shipment of its own.
    assert body["id"] != w.shipment["id"]


# What another client gets instead of the hall's data: the status, and for 2xx answers a check of the body.
ANOTHER_CLIENT: dict[tuple[str, str], tuple[int, Callable[[Any, World], None] | None]] = {
    ("POST", "/v1/shipments"): (201, _a_new_shipment),
    ("GET", "/v1/shipments"): (200, _empty_list),
    ("GET", "/v1/shipments/{id}"): (404, None),
    ("POST", "/v1/shipments/{id}/cancel"): (404, None),
    ("POST", "/v1/shipments/{id}/resend"): (404, None),
    ("POST", "/v1/shipments/{id}/resolve"): (404, None),
    ("GET", "/v1/shipments/{id}/label"): (404, None),
    ("POST", "/v1/labels"): (422, None),  # documented: another client's id is reported like an unknown one
    ("GET", "/v1/shipments/{id}/proof"): (404, None),
    ("POST", "/v1/shipments/{id}/applicant-link"): (404, None),
    ("GET", "/v1/webhook-deliveries"): (200, _empty_list),
    ("GET", "/v1/webhook-deliveries/{id}"): (404, None),
    ("POST", "/v1/webhook-deliveries/{id}/redeliver"): (404, None),
    ("GET", "/v1/webhook-endpoint"): (200, _no_endpoint),
    ("POST", "/v1/webhook-endpoint/enable"): (409, None),  # it has no URL of its own; the hall's is untouched
    ("GET", "/v1/complaints"): (200, _empty_list),
    ("GET", "/v1/ratings"): (200, _empty_list),
    ("GET", "/v1/follow-ups"): (200, _empty_list),
    ("POST", "/v1/follow-ups/{id}/close"): (404, None),
    ("GET", "/v1/statements"): (200, _header_only),  # its own statement of the department: no rows
}

# What a courier of another hall gets from the staff endpoints.
OUT_OF_SCOPE: dict[tuple[str, str], int] = {
    ("POST", "/v1/scans"): 403,
    ("GET", "/v1/scans/lookup"): 403,
    ("GET", "/v1/staff/me"): 200,
}


async def call(api: TestClient, op: tuple[str, str], w: World, headers: dict[str, str]) -> ClientResponse:
    c = CALLS[op](w)
    return await api.request(op[0], c.path, params=c.query, json=c.json, headers={**c.headers, **headers})


def assert_no_secrets(text: str, w: World, op: tuple[str, str]) -> None:
    """None of the hall's data in an answer, except what the caller put in the request itself (the id in the
    path comes back as the problem's ``instance``)."""
    c = CALLS[op](w)
    sent = " ".join([c.path, *c.query.values(), json.dumps(c.json, ensure_ascii=False)])
    leaked = [s for s in w.secrets() if s and s in text and s not in sent]
    assert not leaked, f"leaked {leaked}"


def ids(ops: list[tuple[str, str]]) -> list[str]:
    return [f"{m} {p}" for m, p in ops]
