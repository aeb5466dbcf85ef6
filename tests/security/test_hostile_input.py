"""Hostile input ends in a 4xx, never a 500: credentials that cannot be ours, instants at the ends of the
calendar, carrier pushes nested or numbered to break the parser. Each reported case, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from security_matrix import CLIENT_OPS, STAFF_OPS
from security_support import CHOOSING_APPLICANT, MARKET_BUREAU, PROBLEM, assert_problem, bearer, create

from carriers.ems.envelope import seal
from logistics.accounts import clients, staff
from logistics.config import Settings
from logistics.storage.db import Database

from support import auth, delivery_body, intake_body, left_hub_event, raw_request, send_raw

# Bytes no UTF-8 decoder accepts: a lone continuation byte, a truncated sequence, an overlong form.
NOT_UTF8 = (b"\xff", b"\xc3\x28", b"\xc0\xaf")
CALENDAR_ENDS = [
    ("0001-01-01T00:00:00", "0001-01-01T02:00:00"),  # Beijing time by default: UTC is before year 1
    ("9999-12-31T20:00:00-05:00", "9999-12-31T22:00:00-05:00"),  # UTC is after year 9999
]


def _target(path: str) -> bytes:
    return path.replace("{id}", "shp_01JDQ4ZK2V8X7Y6W5T4S3R2Q1P").encode()


@pytest.mark.parametrize("invalid", NOT_UTF8)
async def test_an_api_key_that_is_not_utf8_is_a_401_on_every_client_endpoint(api: TestClient, invalid: bytes) -> None:
    for method, path in CLIENT_OPS:
        header = b"Authorization: Bearer lgk_" + invalid + b"Zm9vYmFy"
        resp = await send_raw(api.host, api.port, raw_request(method, _target(path), [header]))
        assert (resp.status, resp.content_type) == (401, PROBLEM), (method, path, resp.body[:200])
        assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("invalid", NOT_UTF8)
async def test_a_staff_token_that_is_not_utf8_is_a_401_on_every_staff_endpoint(api: TestClient, invalid: bytes) -> None:
    for method, path in STAFF_OPS:
        header = b"Authorization: Bearer stk_" + invalid + b"Zm9vYmFy"
        resp = await send_raw(api.host, api.port, raw_request(method, _target(path), [header]))
        assert (resp.status, resp.content_type) == (401, PROBLEM), (method, path, resp.body[:200])


async def test_a_forwarded_address_that_is_not_utf8_is_rate_limited_like_any_other(
    settings: Settings, api: TestClient
) -> None:
    settings.trust_forwarded_for = True  # the app reads its settings per request: a proxy in front
    header = b"X-Forwarded-For: 10.0.0.\xff"
    resp = await send_raw(api.host, api.port, raw_request("GET", b"/t/ZZZZZZZZZZZZZ", [header]))
    assert resp.status == 404


@pytest.mark.parametrize(("start", "end"), CALENDAR_ENDS)
async def test_a_pickup_window_at_the_end_of_the_calendar_is_a_422(
    api: TestClient, hall: clients.Credentials, start: str, end: str
) -> None:
    body = intake_body(pickup_window={"start": start, "end": end})
    resp = await api.post("/v1/shipments", json=body, headers=auth(hall))
    problem = await assert_problem(resp, 422)
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"pickup_window.start", "pickup_window.end"}
    assert "2000" in problem["errors"][0]["message"]


@pytest.mark.parametrize("scanned_at", [start for start, _ in CALENDAR_ENDS])
async def test_a_scan_time_at_the_end_of_the_calendar_is_a_422(
    api: TestClient, db: Database, hall: clients.Credentials, scanned_at: str
) -> None:
    shipment = await create(api, hall, delivery_body())
    courier = await staff.create(db, "王建国", "courier", [MARKET_BUREAU])
    scan = {"scan_id": "dev-1", "code": shipment["tracking_code"], "action": "pickup", "scanned_at": scanned_at}
    resp = await api.post("/v1/scans", json=scan, headers=bearer(courier.token))
    problem = await assert_problem(resp, 422)
    assert [e["field"] for e in problem["errors"]] == ["scanned_at"]


@pytest.mark.parametrize(("start", "end"), CALENDAR_ENDS)
async def test_an_applicant_slot_at_the_end_of_the_calendar_is_asked_again(
    api: TestClient, hall: clients.Credentials, start: str, end: str
) -> None:
    body = intake_body(sender=None, applicant_choice=True)
    del body["pickup_window"]
    chooser = await create(api, hall, body)
    link = "/a/" + chooser["applicant_url"].rsplit("/a/", 1)[1]
    form = {"choice": "mail", **CHOOSING_APPLICANT, "postcode": "450041", "slot": f"{start}/{end}"}
    resp = await api.post(link, data=form)
    assert resp.status == 422
    assert "请选择上门取件时间" in await resp.text()


# The carrier push: whatever arrives, the answer is EMS's failure code (S00001, so that EMS pushes again), never
# a 500 or a 503 that blames the database.


async def _push(api: TestClient, body: bytes) -> dict[str, Any]:
    resp = await api.post("/carriers/ems/push", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    return dict(json.loads(await resp.read()))


async def test_a_push_nested_20000_deep_is_refused_with_the_failure_code(api: TestClient) -> None:
    nested = b"[" * 20_000 + b"]" * 20_000
    reply = await _push(api, b'{"serialNo":"push-0001","logitcsInterface":' + nested + b"}")
    assert reply["code"] == "S00001"


@pytest.mark.parametrize("op_time", ["1e20", "-1e20", "Infinity", "-Infinity", "NaN", '"0001-01-01 00:00:00"'])
async def test_a_pushed_time_that_is_no_time_is_refused_with_the_failure_code(
    api: TestClient, settings: Settings, op_time: str
) -> None:
    event = json.dumps(left_hub_event("1179843321506"), ensure_ascii=False)
    sealed = seal(event.replace('"2026-11-26 14:05:00"', op_time), settings.ems_sign_key)
    reply = await _push(api, json.dumps({"serialNo": "push-0002", "logitcsInterface": sealed}).encode())
    assert (reply["code"], reply["serialNo"]) == ("S00001", "push-0002")
