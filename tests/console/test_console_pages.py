"""What the console shows a clerk: today's parcels per department and window, find, and the exceptions to chase,
most urgent first, each with why and the next step."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from aiohttp.test_utils import TestClient
from console_support import CIVIL, MARKET, create, move, sign_in
from sqlalchemy import update

from logistics.accounts import clients, staff
from logistics.api.schemas import BEIJING
from logistics.console.queries import looks_personal
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import shipment_events, shipments, utcnow
from logistics.storage.db import Database

from support import APPLICANT, auth


def count(page: str, section: str) -> int:
    found = re.search(rf'id="count-{section}">[^<]*<b>(\d+)</b>', page)
    assert found is not None, section
    return int(found.group(1))


async def set_columns(db: Database, shipment_id: str, **values: object) -> None:
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(**values))


async def test_today_counts_and_lists_a_departments_parcels_by_window(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    waiting = await create(api, hall, window="综合受理3号窗口")
    picked = await create(api, hall, window="综合受理3号窗口")
    delivered = await create(api, hall, window="综合受理5号窗口")
    yesterday = await create(api, hall, window="综合受理5号窗口")
    elsewhere = await create(api, hall, department=CIVIL)
    handed = datetime.combine(beijing_today(utcnow()), time(9, 15), tzinfo=BEIJING)
    await move(db, picked["id"], "ordered", waybill="1295780512505")
    await move(db, picked["id"], "picked_up", occurred_at=handed)
    await move(db, delivered["id"], "ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")
    await set_columns(db, yesterday["id"], created_at=utcnow() - timedelta(days=1, hours=1))
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/today", params={"department": MARKET})).text()
    assert [count(page, s) for s in ("created", "waiting", "picked_up", "delivered")] == [3, 2, 2, 1]
    assert f"<td>{handed:%Y-%m-%d %H:%M}</td>" in page  # handed to the post, beside the deadline
    assert page.index("综合受理3号窗口") < page.index("综合受理5号窗口")
    for shipment in (waiting, picked, delivered, yesterday):
        assert f"/console/shipments/{shipment['id']}" in page
    assert elsewhere["id"] not in page
    assert APPLICANT["phone"] not in page and APPLICANT["name"] not in page  # lists carry no personal data


async def test_a_listed_parcel_is_shown_anew_once_it_changes(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    """List rows are written once and kept while nothing they show changes: a change is never hidden."""
    parcel = await create(api, hall)
    await move(db, parcel["id"], "ordered", waybill="1295780512506")
    await sign_in(api, clerk.token)

    async def rows() -> list[str]:
        page = await (await api.get("/console/today")).text()
        return [r for r in re.findall(r"<tr>.*?</tr>", page) if f'/console/shipments/{parcel["id"]}"' in r]

    before = await rows()
    assert before and all("已通知邮政，等待揽收" in r and "已超期" not in r for r in before)
    handed = datetime.combine(beijing_today(utcnow()), time(0, 5), tzinfo=BEIJING)
    await move(db, parcel["id"], "picked_up", occurred_at=handed)
    await set_columns(db, parcel["id"], due_by=beijing_today(utcnow()), overdue_at=utcnow())
    after = await rows()
    shown = f"<td>{handed:%Y-%m-%d %H:%M}</td>"
    assert after and all("邮政已揽收" in r and shown in r and "已超期" in r for r in after)


async def test_find_by_case_number_waybill_or_tracking_code_opens_the_shipment(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall, cases=[{"case_no": "410106-2026-00321", "item_name": "食品经营许可证核发"}])
    await move(db, shipment["id"], waybill="1295780512519")
    await sign_in(api, clerk.token)
    for q in ("410106-2026-00321", "1295780512519", shipment["tracking_code"].lower()):
        resp = await api.get("/console/find", params={"q": q})
        assert resp.status == 200 and resp.url.path == f"/console/shipments/{shipment['id']}", q
        assert APPLICANT["address"] in await resp.text()


async def test_find_by_name_lists_every_match_of_the_clerks_departments(
    api: TestClient, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    first = await create(api, hall)
    second = await create(api, hall, department=CIVIL)
    await create(api, hall, recipient={**APPLICANT, "name": "司马光明", "phone": "13912345678"})
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/find", params={"q": APPLICANT["name"]})).text()
    assert "找到 2 件" in page
    assert first["id"] in page and second["id"] in page


async def test_exceptions_are_listed_most_urgent_first_with_why_and_next_step(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    today = beijing_today(utcnow())
    fresh = await create(api, hall)
    waiting_long = await create(api, hall, recipient=None, applicant_choice=True)
    await set_columns(db, waiting_long["id"], created_at=utcnow() - timedelta(days=4))
    not_picked = await create(api, hall)
    await move(db, not_picked["id"], "ordered", waybill="1295780512526")
    async with db.write() as conn:
        await conn.execute(
            update(shipment_events)
            .where(shipment_events.c.shipment_id == not_picked["id"], shipment_events.c.status == "ordered")
            .values(occurred_at=utcnow() - timedelta(hours=30))
        )
    ordered_today = await create(api, hall)
    await move(db, ordered_today["id"], "ordered", waybill="1295780512533")
    due_soon = await create(api, hall)
    await set_columns(db, due_soon["id"], due_by=today + timedelta(days=1))
    overdue = await create(api, hall)
    await set_columns(db, overdue["id"], due_by=today - timedelta(days=1))
    failed_delivery = await create(api, hall)
    await move(db, failed_delivery["id"], "ordered", "picked_up", "in_transit", "out_for_delivery", "delivery_failed")
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/exceptions")).text()
    expected = [overdue, failed_delivery, due_soon, not_picked, waiting_long]
    positions = [page.index(f"/console/shipments/{s['id']}") for s in expected]
    assert positions == sorted(positions)
    assert fresh["id"] not in page
    # Ordered today: only its unprinted label is to chase, not a missed pickup.
    assert "已下单超过24小时仍未揽收" not in page.split(ordered_today["id"])[1].split("</tr>")[0]
    assert "已超过法定送达期限" in page and "立即联系EMS揽投部催办" in page
    assert "已下单超过24小时仍未揽收" in page and "联系EMS揽投员确认上门揽收时间" in page
    assert "申请人超过3天未选择领取方式" in page
    # The ordered parcel whose label was never printed is listed once, with that as a further reason.
    assert page.count(f"/console/shipments/{not_picked['id']}") == 1
    assert "另：已下单但面单从未打印" in page


async def test_a_complaint_puts_its_shipment_on_the_list_to_chase(
    api: TestClient, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)
    resp = await api.post(
        f"/t/{shipment['tracking_code']}/complaints",
        json={"category": "delay", "text": "已经过了一周还没有收到许可证，请尽快处理。"},
    )
    assert resp.status == 201, await resp.text()
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/exceptions")).text()
    assert f"/console/shipments/{shipment['id']}" in page and "有1条投诉尚未答复" in page
    detail = await (await api.get(f"/console/shipments/{shipment['id']}")).text()
    assert "已经过了一周还没有收到许可证" in detail
    again = await api.post(
        f"/t/{shipment['tracking_code']}/complaints",
        json={"category": "attitude", "text": "打电话给窗口也没有人接，请给个答复。"},
    )
    assert again.status == 201, await again.text()
    page = await (await api.get("/console/exceptions")).text()  # the row shown before is not shown again as it was
    assert "有2条投诉尚未答复" in page and "有1条投诉尚未答复" not in page


@pytest.mark.parametrize(
    ("query", "personal"),
    [
        ("13803712345", True),
        ("0371-68123456", True),
        ("欧阳娜娜", True),
        ("410106-2026-00321", False),
        ("1295780512519", False),
        ("KX95CMB62N7J4", False),
    ],
)
def test_only_a_phone_or_a_name_is_matched_against_the_parties(query: str, personal: bool) -> None:
    assert looks_personal(query) is personal


async def test_a_parcel_that_came_back_is_chased_until_the_hall_decides(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    refused = await create(api, hall)
    await move(db, refused["id"], "ordered", "picked_up", "out_for_delivery", "delivery_failed", "returned")
    await set_columns(
        db,
        refused["id"],
        attempts=1,
        last_failure={"reason_code": "104", "reason": "收件人拒收", "occurred_at": "2026-12-03T02:00:00Z"}
        | {"stage": "delivery"},
    )
    on_its_way = await create(api, hall)
    await move(db, on_its_way["id"], "ordered", "picked_up", "out_for_delivery", "delivery_failed", "returning")
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/exceptions")).text()
    assert page.index(f"/console/shipments/{refused['id']}") < page.index(f"/console/shipments/{on_its_way['id']}")
    assert "邮件已退回本中心，尚待处理：收件人拒收（投递1次）" in page
    assert "邮件正在退回" in page

    decision = {"action": "window_pickup"}
    resp = await api.post(f"/v1/shipments/{refused['id']}/resolve", json=decision, headers=auth(hall))
    assert resp.status == 200, await resp.text()
    page = await (await api.get("/console/exceptions")).text()
    assert f"/console/shipments/{refused['id']}" not in page
