"""A courier's hand-over checked with the 取件验证码 is the strongest proof of service there is."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from people_support import advance, bearer, events_of, ordered, scan

from logistics.accounts import clients, staff
from logistics.storage.db import Database

from support import auth


async def _proof(api: TestClient, hall: clients.Credentials, shipment_id: str) -> dict[str, Any]:
    resp = await api.get(f"/v1/shipments/{shipment_id}/proof", headers=auth(hall) | {"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_hand_over_checked_with_the_code_is_verified_and_proves_personal_service(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)  # issued with a 取件验证码
    await advance(db, shipment["id"], "picked_up", "in_transit")
    body = scan(shipment["tracking_code"], "deliver", verification_code=shipment["verification_code"])
    resp = await api.post("/v1/scans", json=body, headers=bearer(courier.token))
    assert resp.status == 200, await resp.text()
    assert (await events_of(db, shipment["id"]))[-1]["carrier_text"] == "扫描登记：投递签收（已核验取件验证码）"
    proof = await _proof(api, hall, shipment["id"])
    assert proof["signer"]["class"] == "unknown"  # a scan does not say who took it, only that the code was given
    assert (proof["verified_by_code"], proof["personal_service_proven"]) == (True, True)
    assert proof["events"][-1]["source"] == "scan"


async def test_a_hand_over_of_a_parcel_without_a_code_proves_nothing_about_the_person(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall, verification_code=False)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    resp = await api.post("/v1/scans", json=scan(shipment["tracking_code"], "deliver"), headers=bearer(courier.token))
    assert resp.status == 200, await resp.text()
    assert (await events_of(db, shipment["id"]))[-1]["carrier_text"] == "扫描登记：投递签收"
    proof = await _proof(api, hall, shipment["id"])
    assert (proof["verified_by_code"], proof["personal_service_proven"]) == (False, False)
