"""Staff scans of the unhappy path: a courier's failed attempt names a reason from the EMS list, a failed door
pickup moves nothing but counts, and a clerk takes a returned envelope back at the hall (``returned``)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from people_support import MARKET_BUREAU, advance, bearer, events_of, ordered, scan, status_of
from sqlalchemy import select

from logistics.accounts import clients, staff
from logistics.accounts.staff import StaffMember
from logistics.api.scans import ScanIn, refusal
from logistics.domain.tables import shipments
from logistics.domain.wording import failure_reasons
from logistics.storage.db import Database

from support import intake_body

COURIER = StaffMember("stf_01JEBZ3Q8W9X0Y1Z2A3B4C5D6E", "欧阳娜娜", "courier", (MARKET_BUREAU,))
CLERK = StaffMember("stf_01JEBZ3Q8W9X0Y1Z2A3B4C5D6F", "李建国", "clerk", (MARKET_BUREAU,))


def _code(member: StaffMember, action: str, status: str, kind: str = "delivery", **fields: Any) -> str | None:
    item = ScanIn.model_validate({"scan_id": "dev-1:42", "code": "1295780512499", "action": action, **fields})
    refused = refusal(
        member, item, {"status": status, "kind": kind, "department": MARKET_BUREAU}, False, failure_reasons()
    )
    return None if refused is None else refused.code


@pytest.mark.parametrize(
    ("member", "status", "kind", "expected"),
    [
        (CLERK, "returning", "delivery", None),
        (CLERK, "delivery_failed", "delivery", None),  # brought back by the courier before any 708 arrived
        (CLERK, "ordered", "delivery", "not-returnable"),  # never handed to the post
        (CLERK, "returned", "delivery", "shipment-closed"),
        (CLERK, "returning", "intake", "role-not-allowed"),  # a returned intake goes back to the applicant
        (COURIER, "returning", "delivery", "role-not-allowed"),
    ],
)
def test_who_may_take_a_parcel_back_at_the_hall(
    member: StaffMember, status: str, kind: str, expected: str | None
) -> None:
    assert _code(member, "returned", status, kind) == expected


def test_a_failed_attempt_needs_a_reason_from_the_list() -> None:
    assert _code(COURIER, "fail", "out_for_delivery") == "reason-required"
    assert _code(COURIER, "fail", "out_for_delivery", reason_code="199") == "unknown-reason"
    assert _code(COURIER, "fail", "out_for_delivery", reason_code="104") is None


async def test_an_unknown_reason_code_is_a_422_that_names_it(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    parcel = await ordered(api, db, hall)
    resp = await api.post(
        "/v1/scans", json=scan(parcel["waybill_no"], "fail", reason_code="199"), headers=bearer(courier.token)
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == "unknown-reason" and "199" in body["message"]


async def test_a_courier_fail_scan_records_the_reason_and_counts_the_attempt(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    parcel = await ordered(api, db, hall)
    await advance(db, parcel["id"], "picked_up", "out_for_delivery")
    resp = await api.post(
        "/v1/scans", json=scan(parcel["waybill_no"], "fail", reason_code="103"), headers=bearer(courier.token)
    )
    assert resp.status == 200, await resp.text()
    event = (await events_of(db, parcel["id"]))[-1]
    assert (event["status"], event["reason_code"], event["reason"]) == ("delivery_failed", "103", "收件人不在指定地址")
    async with db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == parcel["id"]))).one()
    assert row.attempts == 1
    assert row.last_failure["reason_code"] == "103" and row.last_failure["stage"] == "delivery"


async def test_a_failed_door_pickup_scan_moves_nothing_but_counts(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    resp = await api.post("/v1/shipments", json=intake_body(), headers={"Authorization": f"Bearer {hall.api_key}"})
    assert resp.status == 201, await resp.text()
    sid = (await resp.json())["id"]
    await advance(db, sid, "ordered", waybill_no="1295780512433")
    resp = await api.post(
        "/v1/scans", json=scan("1295780512433", "fail", reason_code="113"), headers=bearer(courier.token)
    )
    assert resp.status == 200, await resp.text()
    assert await status_of(db, sid) == "ordered"
    event = (await events_of(db, sid))[-1]
    assert event["carrier_text"] == "上门取件未成功：无法找到收件人" and event["reason_code"] == "113"
    async with db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == sid))).one()
    assert row.attempts == 1 and row.last_failure["stage"] == "pickup"


async def test_a_clerk_takes_a_returning_envelope_back_and_it_is_returned(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    parcel = await ordered(api, db, hall)
    await advance(db, parcel["id"], "picked_up", "delivery_failed", "returning")
    resp = await api.post("/v1/scans", json=scan(parcel["waybill_no"], "returned"), headers=bearer(clerk.token))
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["message"] == "已登记退件签收"
    assert answer["shipment"]["status_text"] == "邮件已退回办件窗口"
    assert await status_of(db, parcel["id"]) == "returned"
