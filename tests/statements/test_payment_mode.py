"""Who pays EMS: the halls file's payment_mode per department (default monthly), an optional payment_mode on the
create, fixed on the shipment; a delivery's result is never charged to its recipient."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from statement_support import CIVIL, MARKET, problem

from logistics.accounts.clients import Credentials
from logistics.api.app import create_app
from logistics.carrier import order_request
from logistics.config import Settings
from logistics.domain.halls import HallsError, load_halls, load_payment_modes
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import HALL, auth, delivery_body, intake_body


def write_halls(tmp_path: Path, halls: object) -> Path:
    path = tmp_path / "halls.json"
    path.write_text(json.dumps(halls, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
async def halls_api(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings.halls_file = write_halls(tmp_path, {MARKET: {**HALL, "payment_mode": "sender_pays"}, CIVIL: HALL})
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    yield client
    await client.close()


async def created(api: TestClient, hall: Credentials, body: dict[str, object]) -> dict[str, object]:
    resp = await api.post("/v1/shipments", json=body, headers=auth(hall))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_a_delivery_asking_the_recipient_to_pay_is_refused_with_the_reason(
    api: TestClient, hall: Credentials
) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(payment_mode="recipient_pays"), headers=auth(hall))
    body = await problem(resp, 422)
    assert "delivered at the hall's cost" in body["detail"]
    assert "办件结果寄递费用由政务服务中心承担" in body["detail"]
    assert body["errors"] == [{"field": "payment_mode", "message": body["detail"]}]


async def test_an_intake_asking_the_recipient_to_pay_is_refused_the_hall_pays_monthly(
    api: TestClient, hall: Credentials
) -> None:
    resp = await api.post("/v1/shipments", json=intake_body(payment_mode="recipient_pays"), headers=auth(hall))
    body = await problem(resp, 422)
    assert "the hall is the recipient" in body["detail"] and "use monthly" in body["detail"]


async def test_an_unknown_payment_mode_is_a_422_on_the_field(api: TestClient, hall: Credentials) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(payment_mode="cash"), headers=auth(hall))
    body = await problem(resp, 422)
    assert [e["field"] for e in body["errors"]] == ["payment_mode"]


async def test_without_a_halls_file_a_shipment_is_paid_monthly(api: TestClient, hall: Credentials) -> None:
    assert (await created(api, hall, delivery_body()))["payment_mode"] == "monthly"
    assert (await created(api, hall, intake_body()))["payment_mode"] == "monthly"


async def test_the_applicant_may_pay_an_intake_at_the_door_pickup(api: TestClient, hall: Credentials) -> None:
    made = await created(api, hall, intake_body(payment_mode="sender_pays"))
    assert made["payment_mode"] == "sender_pays"
    read = await (await api.get(f"/v1/shipments/{made['id']}", headers=auth(hall))).json()
    assert read["payment_mode"] == "sender_pays"


async def test_the_departments_payment_mode_is_the_default_and_a_request_may_choose(
    halls_api: TestClient, hall: Credentials, db: Database
) -> None:
    market = await created(halls_api, hall, intake_body(department=MARKET, recipient=None))
    civil = await created(halls_api, hall, intake_body(department=CIVIL, recipient=None))
    chosen = await created(halls_api, hall, delivery_body(department=MARKET, payment_mode="monthly"))
    assert (market["payment_mode"], civil["payment_mode"], chosen["payment_mode"]) == (
        "sender_pays",
        "monthly",
        "monthly",
    )
    async with db.read() as conn:
        stored = dict((await conn.execute(select(shipments.c.id, shipments.c.payment_mode))).all())
        rows = {r.id: dict(r._mapping) for r in await conn.execute(select(shipments))}
    assert stored == {market["id"]: "sender_pays", civil["id"]: "monthly", chosen["id"]: "monthly"}
    # The carrier glue turns it into the carrier's own terms.
    assert order_request(rows[market["id"]]).payer == "sender"
    assert order_request(rows[civil["id"]]).payer == "recipient_monthly"
    assert order_request(rows[chosen["id"]]).payer == "sender"


def test_a_shipment_from_before_payment_modes_leaves_the_carriers_default() -> None:
    row = {
        "id": "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
        "kind": "intake",
        "sender": HALL,
        "recipient": HALL,
        "contents": [],
        "created_at": None,
        "pickup_start": None,
        "pickup_end": None,
        "verification_code": None,
        "payment_mode": None,
    }
    assert order_request(row).payer is None


def test_a_halls_file_entry_without_payment_mode_is_monthly(tmp_path: Path) -> None:
    path = write_halls(tmp_path, {MARKET: {**HALL, "payment_mode": "sender_pays"}, CIVIL: HALL})
    assert load_payment_modes(path) == {MARKET: "sender_pays", CIVIL: "monthly"}
    assert load_halls(path)[MARKET].name == HALL["name"]  # payment_mode is no part of the hall's address


@pytest.mark.parametrize("mode", ["cash", "recipient_pays", "", 4, None, ["monthly"]])
def test_a_bad_payment_mode_in_the_halls_file_names_file_department_and_field(tmp_path: Path, mode: object) -> None:
    path = write_halls(tmp_path, {MARKET: {**HALL, "payment_mode": mode}})
    with pytest.raises(HallsError) as raised:
        load_payment_modes(path)
    message = str(raised.value)
    assert str(path) in message and MARKET in message
    assert "payment_mode must be one of sender_pays, monthly" in message


async def test_a_bad_halls_file_stops_the_app_before_it_serves(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    settings.halls_file = write_halls(tmp_path, {MARKET: {**HALL, "payment_mode": "到付"}})
    with pytest.raises(HallsError, match="payment_mode"):
        create_app(settings, db=db)
