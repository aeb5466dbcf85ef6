"""What error answers give away: under /v1 every error is an RFC 9457 problem without stack traces or internal
text; the people's pages send their security headers and escape what people type."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from security_matrix import CALLS, DOC, ROUTED, V1, ids, scheme
from security_support import (
    CHOOSING_APPLICANT,
    INTERNALS,
    PROBLEM,
    World,
    assert_problem,
    bearer,
    create,
    refusing_shipment_inserts,
)

from logistics.accounts import clients
from logistics.config import Settings
from logistics.storage.db import Database

from support import auth, delivery_body

BODY_OPS = [op for op in V1 if "requestBody" in DOC["paths"].get(op[1], {}).get(op[0].lower(), {})]
PATHS = sorted({path for _, path in V1})
XSS = '<script>alert("xss")</script>'


def credential(world: World, op: tuple[str, str]) -> dict[str, str]:
    return bearer(world.courier.token) if scheme(*op) == "staff" else auth(world.hall)


@pytest.mark.parametrize("path", PATHS)
async def test_a_method_a_path_does_not_take_is_a_405_problem(api: TestClient, world: World, path: str) -> None:
    op = next(op for op in V1 if op[1] == path)
    allowed = {m for m, p in ROUTED if p == path}
    resp = await api.request("DELETE", CALLS[op](world).path, headers=credential(world, op))
    await assert_problem(resp, 405)
    assert set(resp.headers["Allow"].split(",")) >= allowed


@pytest.mark.parametrize("op", V1, ids=ids(V1))
async def test_an_undeclared_query_parameter_is_a_422_problem(
    api: TestClient, world: World, op: tuple[str, str]
) -> None:
    call = CALLS[op](world)
    resp = await api.request(
        op[0], call.path, params={**call.query, "stauts": XSS}, json=call.json, headers=credential(world, op)
    )
    body = await assert_problem(resp, 422)
    assert {"field": "stauts", "message": "is not a query parameter of this endpoint"} in body["errors"]
    assert XSS not in await resp.text()


@pytest.mark.parametrize("op", BODY_OPS, ids=ids(BODY_OPS))
@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe not json", b"[1, 2", b'{"kind": "delivery",}'])
async def test_malformed_json_is_a_400_problem(api: TestClient, world: World, op: tuple[str, str], raw: bytes) -> None:
    headers = {**credential(world, op), "Content-Type": "application/json"}
    resp = await api.request(op[0], CALLS[op](world).path, data=raw, headers=headers)
    body = await assert_problem(resp, 400)
    assert body["type"].endswith("/malformed-json")


@pytest.mark.parametrize("op", BODY_OPS, ids=ids(BODY_OPS))
@pytest.mark.parametrize(
    "declared", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml"]
)
async def test_a_body_declared_as_something_else_than_json_is_a_415_problem(
    api: TestClient, world: World, op: tuple[str, str], declared: str
) -> None:
    call = CALLS[op](world)
    headers = {**credential(world, op), "Content-Type": declared}
    resp = await api.request(op[0], call.path, params=call.query, data=orjson.dumps(call.json), headers=headers)
    body = await assert_problem(resp, 415)
    assert body["type"].endswith("/unsupported-media-type")


@pytest.mark.parametrize("declared", ["application/json; charset=utf-8", "application/vnd.gov-logistics+json", None])
async def test_json_with_a_charset_a_json_suffix_or_no_declared_type_is_read(
    api: TestClient, hall: clients.Credentials, declared: str | None
) -> None:
    headers = {**auth(hall), **({"Content-Type": declared} if declared else {})}
    # Without a declared type aiohttp's client would add application/octet-stream for bytes: it is told not to.
    resp = await api.post(
        "/v1/shipments", data=orjson.dumps(delivery_body()), headers=headers, skip_auto_headers=["Content-Type"]
    )
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize("op", BODY_OPS, ids=ids(BODY_OPS))
async def test_an_oversized_body_is_a_413_problem(
    api: TestClient, settings: Settings, world: World, op: tuple[str, str]
) -> None:
    headers = {**credential(world, op), "Content-Type": "application/json"}
    raw = b'{"padding": "' + b"x" * settings.max_body_bytes + b'"}'
    resp = await api.request(op[0], CALLS[op](world).path, data=raw, headers=headers)
    await assert_problem(resp, 413)


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/shipments/shp_x/secrets", "/v1/../etc/passwd", "/v2"])
async def test_an_unknown_path_is_a_404_problem(api: TestClient, hall: clients.Credentials, path: str) -> None:
    await assert_problem(await api.get(path, headers=auth(hall)), 404)


async def test_an_internal_failure_is_a_500_problem_that_says_nothing_of_it(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    async with refusing_shipment_inserts(db):
        resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    body = await assert_problem(resp, 500)
    assert "refused by the test" not in await resp.text()
    assert body["request_id"] == resp.headers["X-Request-ID"]  # what the operators need to find it


async def test_validation_errors_name_fields_without_echoing_input(api: TestClient, hall: clients.Credentials) -> None:
    recipient = {**CHOOSING_APPLICANT, "phone": "1503716392" + XSS, "name": "x" * 5000}
    resp = await api.post("/v1/shipments", json=delivery_body(recipient=recipient), headers=auth(hall))
    body = await assert_problem(resp, 422)
    assert {e["field"] for e in body["errors"]} >= {"recipient.phone", "recipient.name"}
    text = await resp.text()
    assert XSS not in text and "1503716392" not in text and "x" * 100 not in text


# The people's pages


def assert_page_headers(resp: Any) -> None:
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp and "form-action 'self'" in csp
    assert resp.headers["Referrer-Policy"] == "same-origin"  # the applicant's URL is a credential
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_every_kind_of_people_page_sends_the_security_headers(api: TestClient, world: World) -> None:
    link = "/a/" + world.awaiting["applicant_url"].rsplit("/a/", 1)[1]
    track = f"/t/{world.shipment['tracking_code']}"
    answers = [
        await api.get(track),
        await api.get("/t/23456789ABCDE"),  # 404
        await api.post(f"{track}/complaints", data={"category": "", "text": "太慢"}),  # 422
        await api.get(link),
        await api.post(link, data={"choice": "mail", **CHOOSING_APPLICANT, "phone": "123"}),  # 422
        await api.get(link + "x"),  # 404
        await api.get("/staff"),
    ]
    await api.post(link, data={"choice": "window"})
    answers.append(await api.get(link))  # 410
    assert [r.status for r in answers] == [200, 404, 422, 200, 422, 404, 200, 410]
    for resp in answers:
        assert_page_headers(resp)
        assert not INTERNALS.search(await resp.text())


async def test_a_complaint_shown_again_is_escaped(api: TestClient, world: World) -> None:
    resp = await api.post(f"/t/{world.shipment['tracking_code']}/complaints", data={"category": "?", "text": XSS})
    assert resp.status == 422
    page = await resp.text()
    assert XSS not in page and "&lt;script&gt;" in page


async def test_an_applicant_form_shown_again_is_escaped(api: TestClient, world: World) -> None:
    link = "/a/" + world.awaiting["applicant_url"].rsplit("/a/", 1)[1]
    form = {"choice": "mail", **CHOOSING_APPLICANT, "name": XSS, "address": '"><img src=x onerror=alert(1)>'}
    resp = await api.post(link, data={**form, "phone": "bad"})
    assert resp.status == 422
    page = await resp.text()
    assert XSS not in page and "<img src=x" not in page


async def test_a_tracking_page_escapes_what_the_carrier_sent(api: TestClient, db: Database, world: World) -> None:
    from logistics.domain.events import apply_event, lock_shipment

    async with db.write() as conn:
        row = await lock_shipment(conn, world.shipment["id"])
        assert row is not None
        await apply_event(conn, row, status="picked_up", source="carrier_push", carrier_text=XSS, location=XSS)
    page = await (await api.get(f"/t/{world.shipment['tracking_code']}")).text()
    assert XSS not in page


async def test_tracking_json_for_an_unknown_code_is_a_problem(api: TestClient) -> None:
    resp = await api.get("/t/23456789ABCDE", headers={"Accept": "application/json"})
    assert resp.content_type == PROBLEM
    await assert_problem(resp, 404)


async def test_a_shipment_created_with_markup_is_stored_and_shown_escaped(api: TestClient, world: World) -> None:
    shipment = await create(
        api, world.hall, delivery_body(cases=[{"case_no": "410106-2018-00140", "item_name": XSS}], window=XSS)
    )
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert XSS not in page


# Every answer, whatever produced it


async def test_every_kind_of_answer_says_nosniff(api: TestClient, world: World) -> None:
    track = f"/t/{world.shipment['tracking_code']}"
    answers = {
        "json": await api.get(f"/v1/shipments/{world.shipment['id']}", headers=auth(world.hall)),
        "problem": await api.get("/v1/shipments/shp_nothing", headers=auth(world.hall)),
        "aiohttp 404": await api.get("/nothing-here"),
        "aiohttp 405": await api.request("PATCH", "/healthz"),
        "415": await api.post("/v1/shipments", data="x", headers={**auth(world.hall), "Content-Type": "text/plain"}),
        "static": await api.get("/static/pages.css"),
        "service worker": await api.get("/staff-sw.js"),
        "html": await api.get(track),
        "tracking json": await api.get(track, headers={"Accept": "application/json"}),
        "label": await api.get(
            f"/v1/shipments/{world.shipment['id']}/label", params={"format": "zpl"}, headers=auth(world.hall)
        ),
        "metrics": await api.get("/metrics"),
        "readyz": await api.get("/readyz"),
        "docs": await api.get("/docs"),
        "openapi": await api.get("/openapi.json"),
    }
    assert {kind: resp.headers.get("X-Content-Type-Options") for kind, resp in answers.items()} == dict.fromkeys(
        answers, "nosniff"
    )
    assert answers["aiohttp 405"].status == 405 and answers["static"].status == 200
