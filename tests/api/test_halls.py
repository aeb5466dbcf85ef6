"""Halls configured by department (LOGISTICS_HALLS_FILE): a create may leave out the hall's own address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from logistics.accounts.clients import Credentials
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.halls import HallsError, load_halls
from logistics.storage.db import Database

from support import HALL, auth, delivery_body, intake_body

MARKET = "上街区市场监督管理局"
# Not the hall of the default request bodies (support.HALL): a created shipment shows which one it got.
MARKET_HALL = {**HALL, "name": "上街区市场监督管理局登记窗口", "phone": "0371-68123499", "address": "中心路132号二楼"}


def write_halls(tmp_path: Path, halls: object) -> Path:
    path = tmp_path / "halls.json"
    path.write_text(json.dumps(halls, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
async def halls_api(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings.halls_file = write_halls(tmp_path, {MARKET: MARKET_HALL})
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    yield client
    await client.close()


def without(body: dict[str, object], side: str) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != side}


async def test_a_delivery_without_a_sender_is_sent_from_the_departments_hall(
    halls_api: TestClient, hall: Credentials
) -> None:
    resp = await halls_api.post("/v1/shipments", json=without(delivery_body(), "sender"), headers=auth(hall))
    assert resp.status == 201
    created = await resp.json()
    assert created["sender"] == MARKET_HALL
    stored = await (await halls_api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))).json()
    assert stored["sender"] == MARKET_HALL


async def test_an_intake_without_a_recipient_goes_to_the_departments_hall(
    halls_api: TestClient, hall: Credentials
) -> None:
    resp = await halls_api.post("/v1/shipments", json=intake_body(recipient=None), headers=auth(hall))
    assert resp.status == 201
    assert (await resp.json())["recipient"] == MARKET_HALL


async def test_a_hall_given_in_the_request_is_used_as_given(halls_api: TestClient, hall: Credentials) -> None:
    resp = await halls_api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    assert (await resp.json())["sender"] == HALL


async def test_a_department_without_a_configured_hall_still_needs_one(
    halls_api: TestClient, hall: Credentials
) -> None:
    body = without(delivery_body(department="上街区人力资源和社会保障局"), "sender")
    resp = await halls_api.post("/v1/shipments", json=body, headers=auth(hall))
    assert resp.status == 422
    assert (await resp.json())["errors"] == [
        {"field": "sender", "message": "is required (no hall address is configured for this department)"}
    ]


async def test_without_a_halls_file_the_hall_is_required(api: TestClient, hall: Credentials) -> None:
    resp = await api.post("/v1/shipments", json=without(delivery_body(), "sender"), headers=auth(hall))
    assert resp.status == 422
    assert (await resp.json())["errors"] == [{"field": "sender", "message": "is required"}]


def test_the_file_is_repaired_like_a_request(tmp_path: Path) -> None:
    typed = {**MARKET_HALL, "phone": "（0371）68123456", "address": " 中心路132号 "}
    halls = load_halls(write_halls(tmp_path, {" 上街区市场监督管理局": typed}))
    assert halls[MARKET].phone == "0371-68123456" and halls[MARKET].address == "中心路132号"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({MARKET: {**MARKET_HALL, "phone": "68123456"}}, f"{MARKET}: phone must be a mobile number"),
        ({MARKET: {**MARKET_HALL, "district": None}}, f"{MARKET}: district"),
        ({MARKET: "中心路132号"}, f"{MARKET}: must be an object"),
        ([MARKET_HALL], "must be an object: department → hall address"),
    ],
)
def test_a_bad_file_is_refused_naming_the_department_and_field(tmp_path: Path, content: object, says: str) -> None:
    with pytest.raises(HallsError, match=says):
        load_halls(write_halls(tmp_path, content))


def test_a_file_that_is_not_json_or_not_there_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "halls.json"
    broken.write_text("{上街区市场监督管理局: ", encoding="utf-8")
    with pytest.raises(HallsError, match="is not JSON"):
        load_halls(broken)
    with pytest.raises(HallsError, match="cannot read the halls file"):
        load_halls(tmp_path / "missing.json")
