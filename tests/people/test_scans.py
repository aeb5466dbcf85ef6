"""POST /v1/scans: every scan rule, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from people_support import (
    WAYBILL,
    advance,
    bearer,
    create_shipment,
    events_of,
    ordered,
    scan,
    scan_rows,
    status_of,
)
from sqlalchemy import select

from logistics.accounts import clients, staff
from logistics.domain.tables import shipments, verification_guards, webhook_deliveries
from logistics.storage.db import Database

from support import auth


async def post(api: TestClient, who: staff.NewStaff, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.post("/v1/scans", json=body, headers=bearer(who.token))
    return resp.status, await resp.json()


async def test_pickup_scan_moves_an_ordered_shipment_to_picked_up(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    assert status == 200, body
    assert body["ok"] is True and body["result"] == "recorded"
    assert body["message"] == "已登记揽收"
    assert await status_of(db, shipment["id"]) == "picked_up"
    last = (await events_of(db, shipment["id"]))[-1]
    assert (last["status"], last["source"], last["location"]) == ("picked_up", "scan", "郑州市上街区投递部")


@pytest.mark.parametrize(
    "form",
    ["qr_url", "tracking_code_lower", "waybill", "waybill_spaced"],
)
async def test_a_code_may_be_the_qr_url_the_tracking_code_or_the_waybill(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff, form: str
) -> None:
    shipment = await ordered(api, db, hall)
    code = {
        "qr_url": shipment["tracking_url"],
        "tracking_code_lower": shipment["tracking_code"].lower(),
        "waybill": WAYBILL,
        "waybill_spaced": "1295 7805 12499",
    }[form]
    status, body = await post(api, courier, scan(code, "pickup"))
    assert status == 200, body
    assert body["shipment"]["tracking_code"] == shipment["tracking_code"]


async def test_the_answer_says_what_the_parcel_is_and_what_comes_next(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    _, body = await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    parcel = body["shipment"]
    assert parcel["kind"] == "delivery" and parcel["kind_text"].startswith("快递送达")
    assert parcel["recipient"]["name"] == "欧阳**"
    assert parcel["recipient"]["phone"] == "138******45"
    assert parcel["cases"] == [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}]
    assert parcel["verification_required"] is True
    assert parcel["next_action"] == "arrive"


async def test_unknown_code_is_a_404_with_a_chinese_message(api: TestClient, courier: staff.NewStaff) -> None:
    resp = await api.post("/v1/scans", json=scan("9999999999999", "pickup"), headers=bearer(courier.token))
    status, body = resp.status, await resp.json(content_type=None)
    assert resp.content_type == "application/problem+json"
    assert status == 404
    assert body["error"]["code"] == "unknown-code"
    assert body["message"].startswith("查不到这个单号")


async def test_the_same_scan_id_twice_records_one_event(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    one = scan(shipment["tracking_code"], "pickup")
    _, first = await post(api, courier, one)
    status, again = await post(api, courier, one)
    assert status == 200
    assert again["replayed"] is True
    assert {k: v for k, v in again.items() if k != "replayed"} == {k: v for k, v in first.items() if k != "replayed"}
    assert [e["status"] for e in await events_of(db, shipment["id"])].count("picked_up") == 1
    assert len(await scan_rows(db)) == 1


async def test_a_batch_answers_per_scan_and_bad_scans_do_not_fail_the_good_ones(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    mine = await ordered(api, db, hall)
    foreign = await ordered(api, db, hall, waybill="1295780512501", department="二七区税务局")
    good = scan(mine["tracking_code"], "pickup")
    batch = [
        good,
        scan("ZZZZZZZZZZZZZ", "pickup"),
        {"scan_id": "dev-no-action", "code": mine["tracking_code"]},
        scan(foreign["tracking_code"], "pickup"),
    ]
    status, body = await post(api, courier, {"scans": batch})
    assert status == 200
    results = body["results"]
    assert [r["scan_id"] for r in results] == [
        good["scan_id"],
        batch[1]["scan_id"],
        "dev-no-action",
        batch[3]["scan_id"],
    ]
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert [r["error"]["code"] for r in results[1:]] == ["unknown-code", "invalid-scan", "not-your-hall"]
    assert results[2]["errors"][0]["field"] == "action"
    assert await status_of(db, mine["id"]) == "picked_up"
    assert await status_of(db, foreign["id"]) == "ordered"


async def test_another_halls_courier_gets_not_your_hall_and_learns_nothing(
    api: TestClient, db: Database, hall: clients.Credentials, outsider: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    status, body = await post(api, outsider, scan(shipment["tracking_code"], "pickup"))
    assert status == 403
    assert body["error"]["code"] == "not-your-hall"
    assert body["shipment"] is None
    assert "欧阳" not in str(body)
    assert await status_of(db, shipment["id"]) == "ordered"


async def test_a_clerk_cannot_record_a_failed_delivery(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    status, body = await post(api, clerk, scan(shipment["tracking_code"], "fail", reason_code="103"))
    assert status == 403
    assert body["error"]["code"] == "role-not-allowed"
    assert await status_of(db, shipment["id"]) == "in_transit"


async def test_a_clerk_cannot_hand_a_licence_to_the_applicant(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    status, body = await post(api, clerk, scan(shipment["tracking_code"], "deliver", verification_code="123456"))
    assert status == 403
    assert body["error"]["code"] == "role-not-allowed"


async def test_a_clerk_receives_intake_materials_at_the_hall(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    from support import intake_body

    created = await api.post("/v1/shipments", json=intake_body(), headers=auth(hall))
    shipment = await created.json()
    await advance(db, shipment["id"], "ordered", "picked_up", "in_transit")
    status, body = await post(api, clerk, scan(shipment["tracking_code"], "deliver"))
    assert status == 200, body
    assert await status_of(db, shipment["id"]) == "delivered"


async def test_delivering_a_licence_without_the_verification_code_is_refused(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver"))
    assert status == 422
    assert body["error"]["code"] == "verification-required"
    assert await status_of(db, shipment["id"]) == "in_transit"


async def test_a_wrong_verification_code_is_refused_and_says_how_many_tries_are_left(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    wrong = "000000" if shipment["verification_code"] != "000000" else "111111"
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", verification_code=wrong))
    assert status == 422
    assert body["error"]["code"] == "wrong-verification-code"
    assert "还可以再试 4 次" in body["message"]
    assert await status_of(db, shipment["id"]) == "in_transit"


async def test_the_right_verification_code_delivers(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    code = shipment["verification_code"]
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", verification_code=code))
    assert status == 200, body
    assert await status_of(db, shipment["id"]) == "delivered"


async def test_five_wrong_codes_lock_the_hand_over_until_an_operator_unlocks_it(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    right = shipment["verification_code"]
    wrong = "000000" if right != "000000" else "111111"
    codes = []
    for _ in range(5):
        _, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", verification_code=wrong))
        codes.append(body["error"]["code"])
    assert codes == ["wrong-verification-code"] * 4 + ["verification-locked"]
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", verification_code=right))
    assert status == 423
    assert body["error"]["code"] == "verification-locked"
    assert await status_of(db, shipment["id"]) == "in_transit"
    await staff.unlock_verification(db, WAYBILL)
    status, _ = await post(api, courier, scan(shipment["tracking_code"], "deliver", verification_code=right))
    assert status == 200
    assert await status_of(db, shipment["id"]) == "delivered"


async def test_no_staff_answer_ever_contains_the_verification_code(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    code = shipment["verification_code"]
    texts = []
    for action in ("pickup", "arrive"):
        resp = await api.post("/v1/scans", json=scan(shipment["tracking_code"], action), headers=bearer(courier.token))
        texts.append(await resp.text())
    resp = await api.post("/v1/scans", json=scan(shipment["tracking_code"], "deliver"), headers=bearer(courier.token))
    texts.append(await resp.text())
    lookup = await api.get(f"/v1/scans/lookup?code={WAYBILL}", headers=bearer(courier.token))
    texts.append(await lookup.text())
    assert all(code not in t for t in texts)


async def test_a_failed_attempt_needs_an_ems_reason(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    status, body = await post(api, courier, scan(shipment["tracking_code"], "fail"))
    assert status == 422
    assert body["error"]["code"] == "reason-required"


async def test_a_failed_attempt_is_recorded_with_its_reason(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    status, _ = await post(api, courier, scan(shipment["tracking_code"], "fail", reason_code="103"))
    assert status == 200
    last = (await events_of(db, shipment["id"]))[-1]
    assert (last["status"], last["carrier_code"], last["carrier_text"]) == (
        "delivery_failed",
        "103",
        "投递未成功：收件人不在指定地址",
    )
    assert await status_of(db, shipment["id"]) == "delivery_failed"


async def _late_pickup(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> tuple[dict[str, Any], dict[str, Any], int, dict[str, Any]]:
    """A parcel in transit, and a pickup scan made offline three hours ago sent now: the shipment, the scan, and
    the answer's status and body."""
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    late = scan(shipment["tracking_code"], "pickup", ago=timedelta(hours=3))
    status, body = await post(api, courier, late)
    return shipment, late, status, body


async def test_a_late_offline_scan_is_placed_by_its_scan_time_and_moves_nothing_back(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment, late, status, body = await _late_pickup(api, db, hall, courier)
    assert status == 200
    assert body["result"] == "recorded_late"
    assert await status_of(db, shipment["id"]) == "in_transit"
    event = (await events_of(db, shipment["id"]))[-1]
    assert event["status"] == "picked_up"
    assert event["occurred_at"].isoformat()[:19] == late["scanned_at"][:19]


async def test_a_late_offline_pickup_scan_becomes_the_hand_over_time(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment, late, _, _ = await _late_pickup(api, db, hall, courier)
    async with db.read() as conn:
        handed = (await conn.execute(select(shipments.c.handed_at).where(shipments.c.id == shipment["id"]))).scalar()
    assert handed is not None and handed.isoformat()[:19] == late["scanned_at"][:19]


async def test_a_late_failed_attempt_does_not_undo_a_later_delivery_run(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "out_for_delivery")
    status, body = await post(
        api, courier, scan(shipment["tracking_code"], "fail", reason_code="113", ago=timedelta(hours=2))
    )
    assert status == 200
    assert body["result"] == "recorded_late"
    assert await status_of(db, shipment["id"]) == "out_for_delivery"
    assert (await events_of(db, shipment["id"]))[-1]["status"] == "delivery_failed"


async def test_an_offline_batch_is_applied_in_scan_order(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall, verification_code=False)
    deliver = scan(shipment["tracking_code"], "deliver", ago=timedelta(minutes=10))
    pickup = scan(shipment["tracking_code"], "pickup", ago=timedelta(hours=2))
    status, body = await post(api, courier, {"scans": [deliver, pickup]})
    assert status == 200
    assert [r["result"] for r in body["results"]] == ["recorded", "recorded"]
    assert await status_of(db, shipment["id"]) == "delivered"
    assert [e["status"] for e in await events_of(db, shipment["id"])][-2:] == ["picked_up", "delivered"]


async def test_delivering_twice_is_already_delivered(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall, verification_code=False)
    await advance(db, shipment["id"], "picked_up", "in_transit", "delivered")
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver"))
    assert status == 409
    assert body["error"]["code"] == "already-delivered"
    assert body["message"] == "这件邮件已经签收，无需再次投递"


async def test_a_cancelled_shipment_cannot_be_scanned(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await api.post(f"/v1/shipments/{shipment['id']}/cancel", headers=auth(hall))
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    assert status == 409
    assert body["error"]["code"] == "shipment-closed"
    assert await status_of(db, shipment["id"]) == "cancelled"


async def ended(api: TestClient, db: Database, hall: clients.Credentials, how: str, **overrides: Any) -> dict[str, Any]:
    """A code-protected shipment that ended without a delivery: cancelled by the hall, returned or failed at EMS."""
    shipment = await ordered(api, db, hall, **overrides)
    if how == "cancelled":
        assert (await api.post(f"/v1/shipments/{shipment['id']}/cancel", headers=auth(hall))).status == 200
    else:
        await advance(db, shipment["id"], *({"returned": ("picked_up", "in_transit"), "failed": ()}[how]), how)
    return shipment


async def failures_of(db: Database, shipment_id: str) -> int:
    async with db.read() as conn:
        query = select(verification_guards.c.failures).where(verification_guards.c.shipment_id == shipment_id)
        return (await conn.execute(query)).scalar() or 0


@pytest.mark.parametrize("how", ["cancelled", "returned", "failed"])
@pytest.mark.parametrize("code", ["none", "right"])
async def test_a_back_dated_delivery_never_reaches_a_shipment_that_ended_otherwise(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff, how: str, code: str
) -> None:
    shipment = await ended(api, db, hall, how)
    before = await events_of(db, shipment["id"])
    extra = {"verification_code": shipment["verification_code"]} if code == "right" else {}
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", ago=timedelta(days=1), **extra))
    assert status == 409
    assert body["type"].endswith("/shipment-closed")
    assert body["title"] == "Shipment has ended"
    assert "不能再补记投递" in body["message"]
    assert await events_of(db, shipment["id"]) == before
    assert await status_of(db, shipment["id"]) == how


async def test_a_wrong_code_on_a_back_dated_delivery_to_a_cancelled_shipment_still_counts(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ended(api, db, hall, "cancelled")
    before = await events_of(db, shipment["id"])
    wrong = "000000" if shipment["verification_code"] != "000000" else "111111"
    late = scan(shipment["tracking_code"], "deliver", ago=timedelta(days=1), verification_code=wrong)
    status, body = await post(api, courier, late)
    assert status == 422
    assert body["error"]["code"] == "wrong-verification-code"
    assert "还可以再试 4 次" in body["message"]
    assert await failures_of(db, shipment["id"]) == 1
    assert await events_of(db, shipment["id"]) == before


async def test_a_back_dated_pickup_is_not_added_to_a_cancelled_shipment(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ended(api, db, hall, "cancelled")
    before = await events_of(db, shipment["id"])
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup", ago=timedelta(days=1)))
    assert status == 409
    assert body["error"]["code"] == "shipment-closed"
    assert await events_of(db, shipment["id"]) == before


async def test_the_public_timeline_of_a_cancelled_shipment_shows_no_delivery_after_late_scans(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ended(api, db, hall, "cancelled")
    for extra in ({}, {"verification_code": shipment["verification_code"]}):
        await post(api, courier, scan(shipment["tracking_code"], "deliver", ago=timedelta(days=1), **extra))
    resp = await api.get(f"/t/{shipment['tracking_code']}", headers={"Accept": "application/json"})
    view = await resp.json()
    assert view["status"] == "cancelled"
    assert "delivered" not in [e["status"] for e in view["events"]]


@pytest.mark.parametrize("code", ["none", "right"])
async def test_a_late_delivery_scan_adds_no_second_delivery_to_a_delivered_shipment(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff, code: str
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "delivered")
    before = await events_of(db, shipment["id"])
    extra = {"verification_code": shipment["verification_code"]} if code == "right" else {}
    status, body = await post(api, courier, scan(shipment["tracking_code"], "deliver", ago=timedelta(days=1), **extra))
    assert status == 409
    assert body["error"]["code"] == "already-delivered"
    assert await events_of(db, shipment["id"]) == before


async def test_a_wrong_code_on_a_late_delivery_to_a_delivered_shipment_counts(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "delivered")
    wrong = "000000" if shipment["verification_code"] != "000000" else "111111"
    late = scan(shipment["tracking_code"], "deliver", ago=timedelta(days=1), verification_code=wrong)
    status, body = await post(api, courier, late)
    assert status == 422
    assert body["error"]["code"] == "wrong-verification-code"
    assert await failures_of(db, shipment["id"]) == 1


async def test_a_late_pickup_on_a_delivered_shipment_is_kept_as_history(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "delivered")
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup", ago=timedelta(days=1)))
    assert status == 200
    assert body["result"] == "recorded_late"
    assert await status_of(db, shipment["id"]) == "delivered"


async def test_a_backward_scan_is_kept_as_history_without_moving_the_status(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "out_for_delivery")
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    assert status == 200
    assert await status_of(db, shipment["id"]) == "out_for_delivery"
    assert "不变" in body["message"]


async def test_a_shipment_awaiting_the_applicant_cannot_be_picked_up(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await create_shipment(api, hall, recipient=None, applicant_choice=True)
    status, body = await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    assert status == 409
    assert body["error"]["code"] == "not-ready"


async def test_a_scan_that_changes_the_status_owes_the_client_a_webhook(
    api: TestClient, db: Database, courier: staff.NewStaff
) -> None:
    hooked = await clients.create(db, "上街区不动产登记系统", "https://bdc.sj.gov.cn/hooks")
    shipment = await ordered(api, db, hooked)
    await post(api, courier, scan(shipment["tracking_code"], "pickup"))
    async with db.read() as conn:
        types = [
            r.type
            for r in await conn.execute(select(webhook_deliveries.c.type).order_by(webhook_deliveries.c.position))
        ]
    assert types[-1] == "shipment.picked_up"


async def test_a_staff_token_does_not_open_the_dispatch_api(api: TestClient, courier: staff.NewStaff) -> None:
    resp = await api.get("/v1/shipments", headers=bearer(courier.token))
    assert resp.status == 401


async def test_a_client_api_key_does_not_open_the_scan_api(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    resp = await api.post("/v1/scans", json=scan(shipment["tracking_code"], "pickup"), headers=auth(hall))
    assert resp.status == 401
    assert await status_of(db, shipment["id"]) == "ordered"


async def test_a_revoked_staff_token_stops_working(settings: Any, db: Database, courier: staff.NewStaff) -> None:
    from aiohttp.test_utils import TestServer

    from logistics.api.app import create_app

    settings.api_key_cache_seconds = 0
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    try:
        assert (await client.get("/v1/staff/me", headers=bearer(courier.token))).status == 200
        await staff.revoke(db, courier.member.id)
        assert (await client.get("/v1/staff/me", headers=bearer(courier.token))).status == 401
    finally:
        await client.close()


async def test_staff_me_names_the_scope_and_the_failure_reasons(api: TestClient, courier: staff.NewStaff) -> None:
    resp = await api.get("/v1/staff/me", headers=bearer(courier.token))
    body = await resp.json()
    assert body["name"] == "王建国"
    assert body["departments"] == ["上街区市场监督管理局", "上街区民政局"]
    assert body["failure_reasons"]["103"] == "收件人不在指定地址"


async def test_lookup_describes_a_parcel_without_recording_anything(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, db, hall)
    resp = await api.get(f"/v1/scans/lookup?code={WAYBILL}", headers=bearer(courier.token))
    assert resp.status == 200
    assert (await resp.json())["shipment"]["next_action"] == "pickup"
    assert len(await events_of(db, shipment["id"])) == 2
    assert await scan_rows(db) == []
