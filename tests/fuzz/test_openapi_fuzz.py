"""Schemathesis against /openapi.json with a valid key: no 5xx, and every response conforms to the schema; and
hostile bytes (headers that are not UTF-8 or carry control bytes, instants at the ends of the calendar, numbers
that are no time) on every route the app serves: operations, the carrier push and the people's pages.

The API runs as a real `logistics api` process on a SQLite file (the schema and the handlers are the same
on PostgreSQL; the database halves are covered elsewhere), served the way production serves it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote_from_bytes, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carriers.ems.envelope import seal
from logistics.api.app import create_app
from logistics.api.docs import openapi_document
from logistics.config import Settings, fresh_carrier_secrets

from support import APPLICANT, RawResponse, intake_body, left_hub_event, raw_request

schema = schemathesis.openapi.from_dict(openapi_document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


# This run's own carrier key (16 random bytes, as EMS issues them): the pushes below are sealed with it.
CARRIER_SECRETS = fresh_carrier_secrets()
SIGN_KEY = CARRIER_SECRETS["LOGISTICS_EMS_SIGN_KEY"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> dict[str, str]:
    """The environment of the API process and of the CLI commands that prepare its data."""
    data = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    return {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")} | {
        "LOGISTICS_DATA_DIR": str(data), "LOGISTICS_REDIS_URL": redis_url, "LOGISTICS_PORT": str(port),
        "LOGISTICS_QUEUE_NAME": f"fuzz:{port}", "LOGISTICS_LOG_LEVEL": "WARNING",
        **CARRIER_SECRETS,
    }


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    data, port = env["LOGISTICS_DATA_DIR"], int(env["LOGISTICS_PORT"])
    run = [sys.executable, "-m", "logistics"]
    subprocess.run([*run, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run([*run, "clients", "create", "--name", "模糊测试审批系统", "--json"], env=env, check=True,
                             capture_output=True, text=True)
    key = json.loads(created.stdout)["api_key"]
    log = open(Path(data) / "api.log", "wb")
    proc = subprocess.Popen([*run, "api"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start for the fuzz run") from None
            time.sleep(0.1)
    yield base, key
    proc.terminate()
    proc.wait(10)
    log.close()


@schema.parametrize()
# derandomize: the same cases every run, so CI is repeatable; FUZZ_EXAMPLES raises the count for deeper runs.
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, server: tuple[str, str]) -> None:
    base, key = server
    # The promises checked: no 5xx, and every answer (status, content type, body, headers) is what the document
    # says. Left out: "valid data is accepted" (cross-field rules such as a future pickup window are not
    # expressible in JSON Schema, so a schema-valid body may rightly get a 422) and "invalid data is rejected"
    # (its cases drop the Authorization header, which this test always sends, so they are not invalid here).
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)


# Hostile bytes on every route. No HTTP client library sends a header that is not UTF-8 or that carries a control
# byte, so the requests are written as bytes on a socket.

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Hostile:
    """What the hostile requests need from the running API: where it is, and real credentials and ids."""

    host: str
    port: int
    key: str
    staff_token: str
    shipment_id: str
    tracking_code: str
    applicant_token: str


def _post_json(url: str, body: object, key: str) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture(scope="module")
def hostile(server: tuple[str, str], env: dict[str, str]) -> Hostile:
    base, key = server
    port = int(env["LOGISTICS_PORT"])
    created = subprocess.run(
        [sys.executable, "-m", "logistics", "staff", "create", "--name", "王建国", "--role", "courier",
         "--departments", "上街区市场监督管理局", "--json"], env=env, check=True, capture_output=True, text=True,
    )
    body = intake_body(sender=None, applicant_choice=True)
    del body["pickup_window"]
    shipment = _post_json(f"{base}/v1/shipments", body, key)
    return Hostile(
        "127.0.0.1", port, key, json.loads(created.stdout)["token"], str(shipment["id"]),
        str(shipment["tracking_code"]), str(shipment["applicant_url"]).rsplit("/a/", 1)[1],
    )


def send(target: Hostile, request: bytes) -> RawResponse:
    with socket.create_connection((target.host, target.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return RawResponse(b"".join(chunks))


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings())
    return sorted(
        {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None and r.method != "HEAD"}
    )


ROUTES = _routes()  # every operation of the OpenAPI document, the carrier push, the people's pages, the probes


def _target(route: str, target: Hostile) -> bytes:
    values = {"{id}": target.shipment_id, "{code}": target.tracking_code, "{token}": target.applicant_token,
              "{carrier}": "ems"}
    for name, value in values.items():
        route = route.replace(name, value)
    return (route + "/app.css" if route == "/static" else route).encode()


def assert_answered(resp: RawResponse, what: object) -> None:
    """Never a 5xx; never aiohttp's plain-text error; an API error (and any refusal of a request aiohttp could not
    read) is problem+json. The people's pages answer their own errors as HTML."""
    assert resp.status < 500, (what, resp.status, resp.body[:300])
    if resp.status >= 400:
        assert resp.content_type != "text/plain", (what, resp.status, resp.body[:300])


# Header values: text, control bytes (not CR/LF, which end a header line), bytes no UTF-8 decoder accepts, and
# pieces of real credentials so that the values reach the authentication code.
CONTROL = st.sampled_from([bytes([b]) for b in (*range(0, 9), 11, 12, *range(14, 32), 127)])
NOT_UTF8 = st.sampled_from([b"\xff", b"\xfe", b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
TEXT = st.text(max_size=12).map(lambda t: t.encode()).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
CREDENTIAL_PARTS = st.sampled_from(["Bearer ", "lgk_", "stk_", "KEY", "TOKEN", "/a/", "1e20", "0001-01-01"])
HEADER_NAMES = st.one_of(
    st.sampled_from([
        b"Authorization", b"Idempotency-Key", b"X-Request-ID", b"X-Forwarded-For", b"Accept", b"If-None-Match",
        b"Content-Type", b"Origin", b"Referer", b"Cookie", b"Sec-Fetch-Site", b"Accept-Encoding", b"Range",
    ]),
    st.binary(min_size=1, max_size=12).map(lambda b: b.translate(None, b":\r\n \t") or b"X"),
)


def _header_value(target: Hostile) -> st.SearchStrategy[bytes]:
    real = CREDENTIAL_PARTS.map(
        lambda part: {"KEY": target.key, "TOKEN": target.staff_token}.get(part, part).encode()
    )
    piece = st.one_of(TEXT, CONTROL, NOT_UTF8, real)
    return st.one_of(st.lists(piece, max_size=8).map(b"".join), st.just(b"x" * 100_000))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")) * 3, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_headers_on_every_route_are_answered_without_a_server_error(
    hostile: Hostile, data: st.DataObject
) -> None:
    method, route = data.draw(st.sampled_from(ROUTES), label="route")
    headers = data.draw(st.lists(st.tuples(HEADER_NAMES, _header_value(hostile)), min_size=1, max_size=3))
    lines = [name + b": " + value for name, value in headers]
    resp = send(hostile, raw_request(method, _target(route, hostile), lines))
    assert_answered(resp, (method, route, lines))


# Request targets: path parameters and query values made of the same pieces, raw or percent-escaped.
RAW_PIECE = st.one_of(TEXT, CONTROL, NOT_UTF8).map(lambda b: b.replace(b" ", b"").replace(b"?", b""))
TARGET_PIECE = st.one_of(RAW_PIECE, RAW_PIECE.map(lambda b: quote_from_bytes(b).encode()))


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")) * 2, deadline=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_hostile_paths_and_queries_on_every_route_are_answered_without_a_server_error(
    hostile: Hostile, data: st.DataObject
) -> None:
    method, route = data.draw(st.sampled_from(ROUTES), label="route")
    target = _target(re.sub(r"\{\w+\}", "{hostile}", route), hostile)
    target = target.replace(b"{hostile}", data.draw(TARGET_PIECE, label="parameter") or b"x")
    query = data.draw(st.lists(st.tuples(TARGET_PIECE, TARGET_PIECE), max_size=3), label="query")
    if query:
        target += b"?" + b"&".join(name + b"=" + value for name, value in query)
    line = b"Authorization: Bearer " + (hostile.staff_token if "scans" in route else hostile.key).encode()
    resp = send(hostile, raw_request(method, target, [line]))
    assert_answered(resp, (method, target))


# Instants at the ends of the calendar, with offsets, and numbers that are no time; as JSON tokens.
_OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
)
_EARLY = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(2, 1, 1), timezones=st.none() | _OFFSETS)
_LATE = st.datetimes(min_value=datetime(9998, 12, 1), max_value=datetime.max, timezones=st.none() | _OFFSETS)
EXTREME_INSTANTS = st.one_of(
    st.one_of(_EARLY, _LATE).map(lambda moment: json.dumps(moment.isoformat())),
    st.sampled_from(["1e20", "-1e20", "1e308", "-1e308", "Infinity", "-Infinity", "NaN", "99999999999999999999999",
                     "253402300800000", '"1e20"', '"Infinity"', '"9999999999999"', '"0000000000000"']),
)


def _unquoted(token: str) -> str:
    """A JSON token as a form field's text: a string without its quotes, a number as written."""
    return str(json.loads(token)) if token.startswith('"') else token


def _post(target: Hostile, path: str, body: bytes, *lines: bytes, form: bool = False) -> RawResponse:
    kind = b"application/x-www-form-urlencoded" if form else b"application/json"
    return send(target, raw_request("POST", path.encode(), [b"Content-Type: " + kind, *lines], body))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(start=EXTREME_INSTANTS, end=EXTREME_INSTANTS)
def test_instants_at_the_ends_of_the_calendar_are_refused_everywhere_they_enter(
    hostile: Hostile, start: str, end: str
) -> None:
    key = b"Authorization: Bearer " + hostile.key.encode()
    body = intake_body()
    body["pickup_window"] = {"start": "START", "end": "END"}
    shipment = json.dumps(body, ensure_ascii=False).replace('"START"', start).replace('"END"', end).encode()
    resp = _post(hostile, "/v1/shipments", shipment, key)
    assert_answered(resp, ("pickup_window", start, end))
    assert resp.status in (400, 422) and resp.content_type == PROBLEM, (start, end, resp.body[:300])

    token = b"Authorization: Bearer " + hostile.staff_token.encode()
    scan = f'{{"scan_id":"dev-1","code":"{hostile.tracking_code}","action":"pickup","scanned_at":{start}}}'
    resp = _post(hostile, "/v1/scans", scan.encode(), token)
    assert resp.status in (400, 422) and resp.content_type == PROBLEM, (start, resp.body[:300])

    slot = f"{_unquoted(start)}/{_unquoted(end)}"
    form = urlencode({**APPLICANT, "choice": "mail", "postcode": "450041", "slot": slot})
    resp = _post(hostile, f"/a/{hostile.applicant_token}", form.encode(), form=True)
    assert_answered(resp, ("slot", slot))
    assert resp.status == 422, (slot, resp.status)

    event = json.dumps(left_hub_event("1179843321506"), ensure_ascii=False).replace('"2026-11-26 14:05:00"', start)
    push = json.dumps({"serialNo": "fuzz-push-1", "logitcsInterface": seal(event, SIGN_KEY)}).encode()
    resp = _post(hostile, "/carriers/ems/push", push)
    assert resp.status == 200 and json.loads(resp.body)["code"] == "S00001", (start, resp.status, resp.body[:300])


# The reported cases, one each, on the process production runs.


def test_a_control_byte_in_a_header_is_a_problem_json_400_that_quotes_nothing(hostile: Hostile) -> None:
    line = b"Authorization: Bearer " + hostile.key.encode() + b"\x01"
    resp = send(hostile, raw_request("GET", b"/v1/shipments", [line]))
    assert (resp.status, resp.content_type) == (400, PROBLEM)
    assert resp.json()["title"] == "Bad request"
    assert hostile.key.encode() not in resp.body


def test_a_100_kb_header_is_a_problem_json_400(hostile: Hostile) -> None:
    resp = send(hostile, raw_request("GET", b"/v1/shipments", [b"X-Padding: " + b"x" * 100_000]))
    assert (resp.status, resp.content_type) == (400, PROBLEM)
    assert resp.headers["x-request-id"] == resp.json()["request_id"]


def test_a_bearer_value_that_is_not_utf8_is_a_problem_json_401(hostile: Hostile) -> None:
    resp = send(hostile, raw_request("GET", b"/v1/shipments", [b"Authorization: Bearer lgk_\xff\xfe"]))
    assert (resp.status, resp.content_type) == (401, PROBLEM)
