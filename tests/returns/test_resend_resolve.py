"""The hall decides on a parcel that came back: POST /v1/shipments/{id}/resend and /resolve (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from returns_support import CORRECTED, ems_item, new_shipment, push, refused_and_returned
from sqlalchemy import func, select

from logistics.accounts.clients import Credentials
from logistics.domain.tables import outbox, shipments, utcnow
from logistics.jobs.purge import PURGED_TEXT, purge_finished
from logistics.storage.db import Database

from support import auth


async def _returned(db: Database, hall: Credentials) -> str:
    made = await new_shipment(db, hall.id)
    await push(db, *refused_and_returned(made["waybill"]))
    return made["id"]


async def _get(api: TestClient, hall: Credentials, sid: str) -> dict[str, Any]:
    resp = await api.get(f"/v1/shipments/{sid}", headers=auth(hall))
    assert resp.status == 200
    return dict(await resp.json())


async def test_a_refused_parcel_shows_its_reason_attempts_and_return(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _returned(db, hall)
    body = await _get(api, hall, sid)
    assert body["status"] == "returned"
    assert body["attempts"] == 1
    assert body["last_failure"] == {
        "reason_code": "104",
        "reason": "拒收",
        "occurred_at": "2026-12-03T06:30:00Z",
        "stage": "delivery",
    }
    reasons = [(e["carrier_code"], e["status"], e["reason_code"], e["reason"]) for e in body["events"][1:]]
    assert reasons == [
        ("203", "picked_up", None, None),
        ("702", "out_for_delivery", None, None),
        ("705", "delivery_failed", "104", "拒收"),
        ("708", "returning", "104", "收件人拒收"),
        ("711", "returned", None, None),
    ]


async def test_three_failed_attempts_are_counted_and_the_latest_is_the_last_failure(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await new_shipment(db, hall.id)
    w = made["waybill"]
    # The third attempt's push arrives before the second's: the latest by time is still the last failure.
    await push(
        db,
        ems_item(w, "705", "投递结果反馈-未妥投", "未妥投，原因：收件人不在指定地址", 60),
        ems_item(w, "705", "投递结果反馈-未妥投", "收件人电话关机，无法联系，未妥投", 2940),
        ems_item(w, "705", "投递结果反馈-未妥投", "因收件人不在指定地址,将再次投递", 1500),
        ems_item(w, "705", "投递结果反馈-未妥投", "因收件人不在指定地址,将再次投递", 1500),  # a repeated push
    )
    body = await _get(api, hall, made["id"])
    assert body["attempts"] == 3
    assert body["last_failure"]["reason_code"] == "113"
    assert body["last_failure"]["reason"] == "无法找到收件人"


async def test_resend_creates_a_linked_shipment_ordered_anew(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _returned(db, hall)
    resp = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert resp.status == 201, await resp.text()
    new = await resp.json()
    assert resp.headers["Location"] == f"/v1/shipments/{new['id']}"
    assert new["id"] != sid and new["resend_of"] == sid and new["status"] == "pending"
    assert new["recipient"]["address"] == CORRECTED["address"]
    assert new["cases"] == [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}]
    assert new["metadata"] == {"approval_system": "sj-spxt"}
    assert new["verification_code"] is not None and new["verification_code"] != "402715"
    assert (await _get(api, hall, sid))["resent_as"] == new["id"]
    assert (await _get(api, hall, new["id"]))["resend_of"] == sid
    async with db.read() as conn:
        orders = (await conn.execute(select(outbox.c.shipment_id).where(outbox.c.kind == "order"))).scalars().all()
    assert orders == [new["id"]]


async def test_resend_with_an_idempotency_key_is_replayed_not_repeated(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _returned(db, hall)
    headers = {**auth(hall), "Idempotency-Key": "resend-410106-2018-00095"}
    first = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=headers)
    again = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=headers)
    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json()) == (await first.json())
    other = await api.post(
        f"/v1/shipments/{sid}/resend", json={"recipient": {**CORRECTED, "phone": "13903712222"}}, headers=headers
    )
    assert other.status == 422 and (await other.json())["type"].endswith("/idempotency-mismatch")
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(shipments))).scalar_one() == 2


async def test_a_second_resend_is_a_409_that_names_the_first(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _returned(db, hall)
    first = await (
        await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    ).json()
    resp = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"].endswith("/already-resent") and first["id"] in problem["detail"]


async def test_a_delivered_parcel_cannot_be_resent_or_resolved(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await new_shipment(db, hall.id)
    await push(
        db, ems_item(made["waybill"], "704", "投递结果反馈-妥投", "已签收,本人签收,投递员:王强 138****5678", 300)
    )
    for path, body in (("resend", {"recipient": CORRECTED}), ("resolve", {"action": "closed", "note": "已公告送达"})):
        resp = await api.post(f"/v1/shipments/{made['id']}/{path}", json=body, headers=auth(hall))
        assert resp.status == 409
        problem = await resp.json()
        assert problem["type"].endswith("/not-returned") and "was delivered" in problem["detail"]


async def test_a_parcel_still_on_its_way_out_cannot_be_resent(api: TestClient, db: Database, hall: Credentials) -> None:
    made = await new_shipment(db, hall.id)
    await push(db, ems_item(made["waybill"], "705", "投递结果反馈-未妥投", "未妥投，原因：收件人不在指定地址", 60))
    resp = await api.post(f"/v1/shipments/{made['id']}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert resp.status == 409
    assert "is delivery_failed" in (await resp.json())["detail"]


async def test_resolve_records_the_decision_once(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _returned(db, hall)
    resp = await api.post(
        f"/v1/shipments/{sid}/resolve",
        json={"action": "window_pickup", "note": "申请人将到3号窗口领取"},
        headers=auth(hall),
    )
    assert resp.status == 200, await resp.text()
    resolution = (await resp.json())["resolution"]
    assert resolution["action"] == "window_pickup" and resolution["note"] == "申请人将到3号窗口领取"
    assert datetime.fromisoformat(resolution["resolved_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    again = await api.post(f"/v1/shipments/{sid}/resolve", json={"action": "closed"}, headers=auth(hall))
    assert again.status == 409 and (await again.json())["type"].endswith("/already-resolved")
    resend = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert resend.status == 409 and "window_pickup" in (await resend.json())["detail"]


async def test_a_returning_parcel_may_be_resolved_before_it_is_back(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await new_shipment(db, hall.id)
    await push(db, *refused_and_returned(made["waybill"])[:4])
    resp = await api.post(
        f"/v1/shipments/{made['id']}/resolve", json={"action": "closed", "note": "已公告送达"}, headers=auth(hall)
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "returning" and body["resolution"]["action"] == "closed"


async def test_bad_bodies_are_422(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _returned(db, hall)
    cases = [
        ("resend", {}, "recipient"),
        ("resend", {"recipient": {**CORRECTED, "phone": "1380371234"}}, "recipient.phone"),
        ("resend", {"pickup_window": {"start": "2026-12-20T09:00:00", "end": "2026-12-20T12:00:00"}}, "recipient"),
        ("resend", {"recipient": CORRECTED, "note": "改址"}, "note"),
        ("resolve", {"action": "destroy"}, "action"),
        ("resolve", {"action": "closed", "note": ""}, "note"),
        ("resolve", {}, "action"),
    ]
    for path, body, field in cases:
        resp = await api.post(f"/v1/shipments/{sid}/{path}", json=body, headers=auth(hall))
        assert resp.status == 422, (path, body, await resp.text())
        assert resp.content_type == "application/problem+json"
        assert field in {e["field"] for e in (await resp.json())["errors"]}, (path, body)


async def test_another_clients_shipment_is_not_found(
    api: TestClient, db: Database, hall: Credentials, other_hall: Credentials
) -> None:
    sid = await _returned(db, hall)
    resp = await api.post(f"/v1/shipments/{sid}/resolve", json={"action": "closed"}, headers=auth(other_hall))
    assert resp.status == 404


async def test_an_intake_whose_door_pickup_failed_is_resent_with_a_new_window(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await new_shipment(db, hall.id, kind="intake")
    w = made["waybill"]
    await push(
        db,
        ems_item(w, "206", "揽收失败", "揽收失败,原因:寄件人不在指定地址,揽投员:刘洋 139****2222", 60),
        ems_item(
            w,
            "206",
            "揽收失败",
            "揽收失败,原因:寄件人电话关机,无法联系",
            1500,
            reasonCode="113",
            reasonDesc="联系不上寄件人",
        ),
        ems_item(w, "207", "作废", "揽收未成功,订单已作废,原因:联系不上寄件人", 1510),
    )
    old = await _get(api, hall, made["id"])
    assert old["status"] == "failed" and old["attempts"] == 2
    assert old["last_failure"]["stage"] == "pickup" and old["last_failure"]["reason_code"] == "113"
    assert [e["status"] for e in old["events"][1:]] == ["ordered", "ordered", "failed"]

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()}
    wrong = await api.post(f"/v1/shipments/{made['id']}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert wrong.status == 422
    resp = await api.post(f"/v1/shipments/{made['id']}/resend", json={"pickup_window": window}, headers=auth(hall))
    assert resp.status == 201, await resp.text()
    new = await resp.json()
    assert new["kind"] == "intake" and new["resend_of"] == made["id"]
    assert new["pickup_window"]["start"] == start.isoformat().replace("+00:00", "Z")
    assert new["sender"]["address"] == "新安路街道济源路8号院3号楼2单元501室"


async def test_an_intake_the_carrier_refused_to_order_is_not_a_failed_pickup(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await new_shipment(db, hall.id, kind="intake", status="failed")
    resp = await api.post(f"/v1/shipments/{made['id']}/resolve", json={"action": "closed"}, headers=auth(hall))
    assert resp.status == 409
    assert "no failed pickup is on record" in (await resp.json())["detail"]


async def test_the_purge_removes_the_resolution_note_and_keeps_the_decision(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _returned(db, hall)
    note = "申请人欧阳娜娜电话13803712345，约定12月8日到3号窗口领取"
    resp = await api.post(
        f"/v1/shipments/{sid}/resolve", json={"action": "window_pickup", "note": note}, headers=auth(hall)
    )
    assert resp.status == 200
    assert await purge_finished(db, after=timedelta(days=180), now=utcnow() + timedelta(days=181)) == 1
    body = await _get(api, hall, sid)
    assert body["resolution"]["action"] == "window_pickup"
    assert body["resolution"]["note"] == PURGED_TEXT
    assert body["last_failure"]["reason_code"] == "104" and body["attempts"] == 1


async def test_a_purged_parcel_cannot_be_resent(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _returned(db, hall)
    assert await purge_finished(db, after=timedelta(days=180), now=utcnow() + timedelta(days=181)) == 1
    resp = await api.post(f"/v1/shipments/{sid}/resend", json={"recipient": CORRECTED}, headers=auth(hall))
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/purged")
