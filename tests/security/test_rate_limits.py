"""Guessing is limited: tracking codes and complaints per client IP (429), 取件验证码 per shipment (423)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from security_support import MARKET_BUREAU, PROBLEM, advance, assert_problem, bearer, create
from sqlalchemy import func, select

from logistics.accounts import clients, staff
from logistics.config import Settings
from logistics.domain.tables import complaints, shipments
from logistics.storage.db import Database

from support import delivery_body

JSON = {"Accept": "application/json"}
UNKNOWN_CODES = ("23456789ABCDE", "3456789ABCDEF", "456789ABCDEFG")


@pytest.fixture
async def shipment(api: TestClient, db: Database, hall: clients.Credentials) -> dict[str, Any]:
    created = await create(api, hall, delivery_body(verification_code=True))
    await advance(db, created["id"], "ordered", "picked_up", "out_for_delivery", waybill_no="1295780519876")
    return created


@pytest.fixture
def tight(settings: Settings) -> Settings:
    """Small limits (the app reads them per request from the same settings object)."""
    settings.tracking_rate_per_minute = 3
    settings.complaint_rate_per_hour = 2
    settings.verification_max_attempts = 3
    return settings


async def test_guessing_tracking_codes_is_stopped_with_a_429_page(
    api: TestClient, tight: Settings, shipment: dict[str, Any]
) -> None:
    assert [(await api.get(f"/t/{code}")).status for code in UNKNOWN_CODES] == [404, 404, 404]
    resp = await api.get(f"/t/{shipment['tracking_code']}")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["Referrer-Policy"] == "same-origin"
    text = await resp.text()
    assert "访问过于频繁" in text and "司马" not in text and shipment["department"] not in text


async def test_the_tracking_limit_answers_json_clients_with_a_problem(
    api: TestClient, tight: Settings, shipment: dict[str, Any]
) -> None:
    for _ in range(3):
        await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)
    body = await assert_problem(await api.get(f"/t/{shipment['tracking_code']}", headers=JSON), 429)
    assert body["type"].endswith("/too-many-requests")


async def test_a_made_up_forwarded_for_does_not_reset_the_limit(
    api: TestClient, tight: Settings, shipment: dict[str, Any]
) -> None:
    statuses = [
        (await api.get(f"/t/{shipment['tracking_code']}", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_behind_a_proxy_only_the_address_the_proxy_saw_counts(
    api: TestClient, tight: Settings, shipment: dict[str, Any]
) -> None:
    tight.trust_forwarded_for = True
    statuses = [
        (
            await api.get(
                f"/t/{shipment['tracking_code']}", headers={"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"}
            )
        ).status
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    other = await api.get(f"/t/{shipment['tracking_code']}", headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status == 200


async def test_complaints_are_limited_and_the_refused_one_is_not_stored(
    api: TestClient, db: Database, tight: Settings, shipment: dict[str, Any]
) -> None:
    path = f"/t/{shipment['tracking_code']}/complaints"
    text = "快递员没有打电话就把邮件退回了，请核实处理。"
    for _ in range(2):
        assert (await api.post(path, json={"category": "delay", "text": text})).status == 201
    body = await assert_problem(await api.post(path, json={"category": "delay", "text": text}, headers=JSON), 429)
    assert body["type"].endswith("/too-many-requests")
    page = await api.post(path, data={"category": "delay", "text": text})
    assert page.status == 429 and "访问过于频繁" in await page.text()
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(complaints))).scalar_one() == 2


def deliver(shipment: dict[str, Any], n: int, code: str) -> dict[str, Any]:
    return {
        "scan_id": f"dev-9c1e-{n:04d}",
        "code": shipment["tracking_code"],
        "action": "deliver",
        "verification_code": code,
    }


def wrong_codes(right: str, count: int) -> list[str]:
    return [c for c in (f"{n:06d}" for n in range(count + 1)) if c != right][:count]


@pytest.fixture
async def courier(db: Database) -> staff.NewStaff:
    return await staff.create(db, "王建国", "courier", [MARKET_BUREAU])


async def test_wrong_verification_codes_lock_the_hand_over_with_a_423(
    api: TestClient, tight: Settings, shipment: dict[str, Any], courier: staff.NewStaff
) -> None:
    answers = []
    for n, code in enumerate(wrong_codes(shipment["verification_code"], 3)):
        resp = await api.post("/v1/scans", json=deliver(shipment, n, code), headers=bearer(courier.token))
        answers.append((resp.status, (await resp.json(content_type=PROBLEM))["error"]["code"]))
    assert answers == [(422, "wrong-verification-code"), (422, "wrong-verification-code"), (423, "verification-locked")]
    right = await api.post(
        "/v1/scans", json=deliver(shipment, 9, shipment["verification_code"]), headers=bearer(courier.token)
    )
    body = await assert_problem(right, 423)
    assert body["error"]["code"] == "verification-locked"
    assert shipment["verification_code"] not in await right.text()


async def test_a_batch_of_guesses_is_counted_one_by_one(
    api: TestClient, db: Database, tight: Settings, shipment: dict[str, Any], courier: staff.NewStaff
) -> None:
    guesses = [deliver(shipment, n, code) for n, code in enumerate(wrong_codes(shipment["verification_code"], 50))]
    guesses.append(deliver(shipment, 99, shipment["verification_code"]))
    resp = await api.post("/v1/scans", json={"scans": guesses}, headers=bearer(courier.token))
    results = (await resp.json())["results"]
    assert [r["result"] for r in results[:3]] == ["wrong-verification-code"] * 2 + ["verification-locked"]
    assert {r["result"] for r in results[3:]} == {"verification-locked"}
    async with db.read() as conn:
        status = (await conn.execute(select(shipments.c.status))).scalar_one()
    assert status == "out_for_delivery"


async def test_the_lock_holds_for_every_courier_not_only_the_guesser(
    api: TestClient, db: Database, tight: Settings, shipment: dict[str, Any], courier: staff.NewStaff
) -> None:
    for n, code in enumerate(wrong_codes(shipment["verification_code"], 3)):
        await api.post("/v1/scans", json=deliver(shipment, n, code), headers=bearer(courier.token))
    colleague = await staff.create(db, "刘海洋", "courier", [MARKET_BUREAU])
    resp = await api.post(
        "/v1/scans", json=deliver(shipment, 7, shipment["verification_code"]), headers=bearer(colleague.token)
    )
    assert (await assert_problem(resp, 423))["error"]["code"] == "verification-locked"


async def test_staff_lookups_are_limited_per_token_with_a_429_problem(
    api: TestClient, db: Database, settings: Settings, shipment: dict[str, Any], courier: staff.NewStaff
) -> None:
    settings.staff_lookup_rate_per_minute = 3
    path = f"/v1/scans/lookup?code={shipment['tracking_code']}"
    statuses = [(await api.get(path, headers=bearer(courier.token))).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await api.get(path, headers=bearer(courier.token))
    body = await assert_problem(refused, 429)
    assert body["type"].endswith("/too-many-requests")
    assert int(refused.headers["Retry-After"]) >= 1
    colleague = await staff.create(db, "刘海洋", "courier", [MARKET_BUREAU])
    assert (await api.get(path, headers=bearer(colleague.token))).status == 200
