"""No personal data, 取件验证码 or credential in the logs (PRODUCT §9: masked everywhere, including logs).

A realistic day runs over real HTTP with every log record captured — the root logger at DEBUG, with the
production configuration of ``logistics.logs.setup`` (JSON lines, the same per-library levels), read both as
records and as the JSON text an operator would ship: shipments created (one replayed), an applicant's choice
(after a mistyped phone), orders placed by the worker with the EMS simulator, its tracking pushes, labels,
staff scans with a wrong and a right 取件验证码, the public tracking page, a complaint, a cancellation, signed
webhooks to the approval system. Then every name, phone, street address, code and token is searched for.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from security_support import (
    CHOOSING_APPLICANT,
    INTAKE_APPLICANT,
    LICENCE_HOLDER,
    MARKET_BUREAU,
    PERSONAL_DATA,
    bearer,
    create,
    refusing_shipment_inserts,
    refusing_shipment_writes,
)
from sqlalchemy import select

from carriers.simulator.config import SimConfig
from carriers.simulator.server import create_app as create_sim_app
from logistics import logs
from logistics.accounts import clients, staff
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.tables import shipments, webhook_deliveries
from logistics.jobs import carrier as handlers
from logistics.jobs.runner import Runtime, process_due
from logistics.jobs.worker import build_runtime
from logistics.storage.db import Database

from support import auth, delivery_body, eventually, intake_body, raw_request, send_raw

# The EMS simulator is a stand-in for the carrier's systems, not part of this service: its own lines are not ours.
NOT_OURS = ("carriers.simulator",)
# A record's own attributes (time, thread, file...); everything else on it is an ``extra`` some code logged.
STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Captured:
    collector: Collector
    stream: io.StringIO

    def text(self) -> str:
        """Everything logged by this service: each record's message, every extra field, any traceback, and the
        JSON lines as written."""
        plain = logging.Formatter()
        parts = []
        for record in self.collector.records:
            if record.name.startswith(NOT_OURS):
                continue
            parts.append(record.getMessage())
            parts.extend(f"{k}={v!r} {v}" for k, v in record.__dict__.items() if k not in STANDARD)
            if record.exc_info:
                parts.append(plain.formatException(record.exc_info))
        lines = [line for line in self.stream.getvalue().splitlines() if not any(n in line for n in NOT_OURS)]
        return "\n".join(parts + lines)


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    handlers_before, level_before = root.handlers[:], root.level
    levels_before = {
        name: lg.level for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    logs.setup("DEBUG", "json")  # production's handler, formatter and library levels
    (json_handler,) = root.handlers
    stream = io.StringIO()
    assert isinstance(json_handler, logging.StreamHandler)
    json_handler.setStream(stream)
    collector = Collector()
    root.handlers[:] = [*handlers_before, json_handler, collector]  # pytest's capture keeps working too
    try:
        yield Captured(collector, stream)
    finally:
        root.handlers[:] = handlers_before
        root.setLevel(level_before)
        for name, level in levels_before.items():
            logging.getLogger(name).setLevel(level)


@dataclass
class Receiver:
    """The approval system's webhook endpoint."""

    bodies: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=204)


@dataclass
class Day:
    captured: Captured
    secrets: dict[str, list[str]]  # kind → values that must not be logged
    shipment_ids: list[str]


async def _all(db: Database, status: str, ids: list[str]) -> bool:
    async with db.read() as conn:
        rows = await conn.execute(select(shipments.c.status).where(shipments.c.id.in_(ids)))
        return all(r.status == status for r in rows)


async def _waybills(db: Database, ids: list[str]) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(select(shipments.c.id, shipments.c.waybill_no).where(shipments.c.id.in_(ids)))
        return {r.id: r.waybill_no for r in rows}


@pytest.fixture
async def day(captured: Captured, settings: Settings, db: Database) -> AsyncIterator[Day]:
    receiver = Receiver()
    hook_app = web.Application()
    hook_app.router.add_post("/hooks/logistics", receiver.handle)
    hooks = TestServer(hook_app, host="127.0.0.1")
    await hooks.start_server()
    settings.webhook_allow_loopback = True  # the receiver listens on this machine
    api = TestClient(TestServer(create_app(settings, db=db)))
    await api.start_server()
    sim = TestClient(
        TestServer(
            create_sim_app(
                SimConfig(
                    sender_no=settings.ems_sender_no,
                    authorization=settings.ems_authorization,
                    sign_key=settings.ems_sign_key,
                    callback_url=str(api.make_url("/carriers/ems/push")),
                    step_seconds=0,
                    seed=20180806,
                    push_retry_seconds=0.2,
                    failed_attempt_rate=0.0,
                )
            ),
            host="127.0.0.1",
        )
    )
    await sim.start_server()
    settings.ems_base_url = str(sim.make_url("")).rstrip("/")
    settings.ems_timeout_seconds = 2.0
    rt: Runtime = build_runtime(settings, db)

    async def work(check: Any) -> Any:
        async def step() -> Any:
            await process_due(rt)
            return await check()

        return await eventually(step, timeout=30)

    try:
        hall = await clients.create(db, "上街区行政审批系统", f"http://127.0.0.1:{hooks.port}/hooks/logistics")
        courier = await staff.create(db, "王建国", "courier", [MARKET_BUREAU])
        key = {"Idempotency-Key": "sj-spxt-2018-00095"}
        body = delivery_body(recipient=dict(LICENCE_HOLDER), verification_code=True)
        licence = await create(api, hall, body)
        await api.post("/v1/shipments", json=body, headers={**auth(hall), **key})
        await api.post("/v1/shipments", json=body, headers={**auth(hall), **key})  # replayed
        intake = await create(api, hall, intake_body(sender=dict(INTAKE_APPLICANT)))
        chooser = await create(api, hall, delivery_body(recipient=None, applicant_choice=True))
        link = "/a/" + chooser["applicant_url"].rsplit("/a/", 1)[1]
        await api.get(link)
        form = {"choice": "mail", **CHOOSING_APPLICANT, "postcode": "450041"}
        assert (await api.post(link, data={**form, "phone": CHOOSING_APPLICANT["phone"][:-1]})).status == 422
        assert (await api.post(link, data=form)).status == 200
        bad = await api.post(
            "/v1/shipments",
            json=delivery_body(recipient={**LICENCE_HOLDER, "phone": "1359876543x"}),
            headers=auth(hall),
        )
        assert bad.status == 422
        ids = [licence["id"], intake["id"], chooser["id"]]
        await work(lambda: _all(db, "ordered", ids))
        waybills = await _waybills(db, ids)

        assert (await api.get(f"/v1/shipments/{licence['id']}/label", headers=auth(hall))).status == 200
        batch = await api.post("/v1/labels", json={"shipment_ids": ids, "format": "zpl"}, headers=auth(hall))
        assert batch.status == 200
        await sim.post("/admin/tick", json={"steps": 3, "waybillNo": waybills[intake["id"]]})
        await work(lambda: _moved(db, intake["id"]))

        staff_auth = bearer(courier.token)
        code = licence["verification_code"]
        wrong = "000000" if code != "000000" else "111111"
        await api.get("/v1/scans/lookup", params={"code": waybills[licence["id"]]}, headers=staff_auth)
        scans = [
            {"scan_id": "dev-1", "code": licence["tracking_url"], "action": "pickup", "location": "上街区投递部"},
            {"scan_id": "dev-2", "code": licence["tracking_code"], "action": "deliver", "verification_code": wrong},
            {"scan_id": "dev-3", "code": licence["tracking_code"], "action": "deliver", "verification_code": code},
        ]
        for scan in scans:
            await api.post("/v1/scans", json=scan, headers=staff_auth)
        assert await _all(db, "delivered", [licence["id"]])

        await api.get(f"/t/{licence['tracking_code']}")
        await api.get(f"/t/{licence['tracking_code']}", headers={"Accept": "application/json"})
        holder = LICENCE_HOLDER
        complaint = f"{holder['name']}反映：投递员没有核实身份，电话{holder['phone']}，地址{holder['address']}"
        await api.post(f"/t/{licence['tracking_code']}/complaints", json={"category": "privacy", "text": complaint})
        await api.post(
            f"/v1/shipments/{chooser['id']}/cancel", json={"reason": "申请人改为窗口自取"}, headers=auth(hall)
        )
        await api.get(f"/v1/shipments/{licence['id']}", headers=auth(hall))
        await api.get("/v1/shipments", headers=auth(hall))
        await api.get("/v1/complaints", headers=auth(hall))
        await work(lambda: _webhooks_sent(db))
        await api.get("/v1/webhook-deliveries", headers=auth(hall))
        assert receiver.bodies

        # Hostile requests, carrying the day's credentials where aiohttp and the handlers choke on them.
        key, token, secret = (s.encode() for s in (hall.api_key, courier.token, hall.webhook_secret))
        hostile = [
            raw_request("GET", b"/v1/shipments", [b"Authorization: Bearer " + key + b"\x01"]),  # control byte
            raw_request("GET", b"/v1/staff/me", [b"Authorization: Bearer " + token + b"\x1b[0m"]),
            raw_request("GET", b"/v1/shipments", [b"Authorization: Bearer " + key + b"\xff"]),  # not UTF-8
            raw_request("GET", b"/v1/webhook-endpoint", [b"X-Webhook-Secret: " + secret + b"\x7f\x02"]),
            raw_request("GET", link.encode() + b"\x01"),  # the applicant link in a broken request line
            raw_request("GET", b"/t/" + licence["tracking_code"].encode(), [b"Referer: " + link.encode() + b"\x01"]),
            raw_request("GET", b"/v1/shipments", [b"Authorization: Bearer " + key, b"X-Padding: " + b"x" * 100_000]),
        ]
        for request in hostile:  # their answers are test_hostile_input's business; here only the logs count
            await send_raw(api.host, api.port, request)
        late_scan = {"scan_id": "dev-4", "code": licence["tracking_code"], "action": "deliver"}
        late_scan |= {"verification_code": code, "scanned_at": "0001-01-01T00:00:00"}
        await api.post("/v1/scans", json=late_scan, headers=staff_auth)

        yield Day(
            captured,
            {
                "personal data": list(PERSONAL_DATA),
                "取件验证码": [code],
                "credentials": [hall.api_key, hall.webhook_secret, courier.token, link.removeprefix("/a/")],
            },
            ids,
        )
    finally:
        await handlers.close(rt)
        await rt.signal.close()
        if rt.signal.redis is not None:
            await rt.signal.redis.aclose()
        await sim.close()
        await api.close()
        await hooks.close()


async def _moved(db: Database, shipment_id: str) -> bool:
    async with db.read() as conn:
        status = (await conn.execute(select(shipments.c.status).where(shipments.c.id == shipment_id))).scalar_one()
    return status not in ("ordered", "pending")


async def _webhooks_sent(db: Database) -> bool:
    async with db.read() as conn:
        statuses = set((await conn.execute(select(webhook_deliveries.c.status))).scalars())
    return statuses == {"delivered"}


def hits(text_: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text_]


async def test_the_capture_sees_the_days_work(day: Day) -> None:
    """The search below means something: the day's events are in the captured logs, with their ids."""
    logged = day.captured.text()
    for event in ("scan", "verification_failed", "complaint", "applicant_chose_mail", "label_stored"):
        assert f'"event":"{event}"' in logged, event
    assert all(sid in logged for sid in day.shipment_ids)


async def test_no_name_phone_or_address_is_logged(day: Day) -> None:
    assert hits(day.captured.text(), day.secrets["personal data"]) == []


async def test_no_verification_code_is_logged(day: Day) -> None:
    # Six digits: searched as a whole number, so that a request id or a timestamp holding them is not a hit.
    (code,) = day.secrets["取件验证码"]
    assert re.findall(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", day.captured.text()) == []


async def test_no_api_key_token_or_webhook_secret_is_logged(day: Day) -> None:
    assert hits(day.captured.text(), day.secrets["credentials"]) == []


async def test_the_hostile_requests_were_logged_without_what_they_carried(day: Day) -> None:
    """aiohttp's own error lines are kept (the operators see the attacks), with only the kind of error."""
    logged = day.captured.text()
    assert "Invalid header value char" in logged or "http_unparseable_request" in logged
    assert "Invalid char in url path" in logged or "http_unparseable_request" in logged


# An applicant link is a credential in a path: a failure while answering one names its route template.


async def test_a_failure_on_an_applicant_link_logs_its_route_not_its_token(
    captured: Captured, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    chooser = await create(api, hall, delivery_body(recipient=None, applicant_choice=True))
    link = "/a/" + chooser["applicant_url"].rsplit("/a/", 1)[1]
    form = {"choice": "mail", **CHOOSING_APPLICANT, "postcode": "450041"}
    async with refusing_shipment_writes(db, "UPDATE"):
        resp = await api.post(link, data=form)
    assert resp.status >= 500
    logged = captured.text()
    assert "refused by the test" in logged  # the failure is logged, for the operators
    assert "/a/{token}" in logged
    assert link.removeprefix("/a/") not in logged


async def test_aiohttp_access_lines_name_no_applicant_link(
    captured: Captured, api: TestClient, hall: clients.Credentials
) -> None:
    """An operator may turn aiohttp's access log on: its lines quote the request line and the Referer."""
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)  # the captured fixture restores the level
    chooser = await create(api, hall, delivery_body(recipient=None, applicant_choice=True))
    link = "/a/" + chooser["applicant_url"].rsplit("/a/", 1)[1]
    assert (await api.get(link, headers={"Referer": f"http://127.0.0.1:8080{link}"})).status == 200
    logged = captured.text()
    assert '"logger":"aiohttp.access"' in logged
    assert hits(logged, [link.removeprefix("/a/"), hall.api_key]) == []


# A database error must not carry the rows it was writing into the logs (SQLAlchemy puts statement parameters
# into its exception text unless the engine hides them).


@pytest.fixture
async def refusing_inserts(db: Database) -> AsyncIterator[None]:
    async with refusing_shipment_inserts(db):
        yield


async def test_a_failed_write_logs_no_personal_data(
    captured: Captured, api: TestClient, hall: clients.Credentials, refusing_inserts: None
) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(recipient=dict(LICENCE_HOLDER)), headers=auth(hall))
    assert resp.status >= 500
    logged = captured.text()
    assert "refused by the test" in logged  # the failure itself is logged, for the operators
    assert hits(logged, list(PERSONAL_DATA)) == []
    assert hits(await resp.text(), list(PERSONAL_DATA)) == []


# The access line: one per request, naming the route the request matched, never the path or query it asked for
# (a path holds shipment ids and applicant-link tokens, a query whatever the caller put in it).


def access_lines(captured: Captured, request_id: str) -> list[str]:
    """The JSON access lines written for one request."""
    return [
        line
        for line in captured.stream.getvalue().splitlines()
        if '"event":"http_request"' in line and json.loads(line)["request_id"] == request_id
    ]


async def test_a_shipment_read_has_one_access_line_with_its_route_template(
    captured: Captured, api: TestClient, hall: clients.Credentials
) -> None:
    shipment = await create(api, hall, delivery_body(recipient=dict(LICENCE_HOLDER)))
    headers = {**auth(hall), "X-Request-ID": "sj-spxt-2018-00095-read"}
    assert (await api.get(f"/v1/shipments/{shipment['id']}", headers=headers)).status == 200
    (line,) = access_lines(captured, "sj-spxt-2018-00095-read")
    logged = json.loads(line)
    assert (logged["logger"], logged["method"], logged["route"], logged["status"]) == (
        "logistics.access",
        "GET",
        "/v1/shipments/{id}",
        200,
    )
    assert logged["ms"] >= 0
    assert shipment["id"] not in line


async def test_an_applicant_link_has_one_access_line_without_its_token_or_query(
    captured: Captured, api: TestClient, hall: clients.Credentials
) -> None:
    chooser = await create(api, hall, delivery_body(recipient=None, applicant_choice=True))
    link = "/a/" + chooser["applicant_url"].rsplit("/a/", 1)[1]
    phone = CHOOSING_APPLICANT["phone"]
    resp = await api.get(link, params={"phone": phone}, headers={"X-Request-ID": "applicant-link-0001"})
    assert resp.status == 200
    (line,) = access_lines(captured, "applicant-link-0001")
    logged = json.loads(line)
    assert (logged["method"], logged["route"], logged["status"]) == ("GET", "/a/{token}", 200)
    assert hits(captured.text(), [link.removeprefix("/a/"), phone]) == []


async def test_a_path_no_route_matches_is_logged_as_unmatched(captured: Captured, api: TestClient) -> None:
    phone = LICENCE_HOLDER["phone"]
    resp = await api.get(f"/v1/applicants/{phone}", params={"name": LICENCE_HOLDER["name"]})
    assert resp.status == 404
    (line,) = access_lines(captured, resp.headers["X-Request-ID"])
    assert (json.loads(line)["route"], json.loads(line)["status"]) == ("unmatched", 404)
    assert hits(captured.text(), [phone, LICENCE_HOLDER["name"]]) == []
