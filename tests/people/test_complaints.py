"""Complaints from the tracking page: stored, listed to the owning client only, sent as a webhook."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from people_support import create_shipment
from sqlalchemy import select

from logistics.accounts import clients
from logistics.domain.tables import complaints, webhook_deliveries
from logistics.storage.db import Database

from support import auth

COMPLAINT = {"category": "delay", "text": "营业执照寄出五天了还没有收到，电话也联系不上投递员。"}


async def complain(api: TestClient, tracking_code: str, **form: str) -> Any:
    return await api.post(f"/t/{tracking_code}/complaints", data=form or COMPLAINT, allow_redirects=False)


async def test_a_complaint_is_stored_and_the_page_says_so(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await create_shipment(api, hall)
    resp = await complain(api, shipment["tracking_code"])
    assert resp.status == 303
    assert resp.headers["Location"] == f"/t/{shipment['tracking_code']}?complaint=sent#complaint"
    page = await (await api.get(resp.headers["Location"])).text()
    assert "投诉已收到" in page
    async with db.read() as conn:
        stored = (await conn.execute(select(complaints))).one()
    assert (stored.shipment_id, stored.client_id, stored.category) == (shipment["id"], hall.id, "delay")


async def test_the_client_lists_its_complaints(api: TestClient, hall: clients.Credentials) -> None:
    shipment = await create_shipment(api, hall)
    await complain(api, shipment["tracking_code"])
    body = await (await api.get(f"/v1/complaints?shipment_id={shipment['id']}", headers=auth(hall))).json()
    assert [(c["shipment_id"], c["category"], c["text"]) for c in body["data"]] == [
        (shipment["id"], "delay", COMPLAINT["text"])
    ]
    assert body["data"][0]["category_text"] == "寄递太慢 / 超时未到"
    assert body["next_cursor"] is None


async def test_another_client_cannot_see_the_complaint(
    api: TestClient, hall: clients.Credentials, other_hall: clients.Credentials
) -> None:
    shipment = await create_shipment(api, hall)
    await complain(api, shipment["tracking_code"])
    body = await (await api.get("/v1/complaints", headers=auth(other_hall))).json()
    assert body["data"] == []


async def test_complaints_are_listed_in_cursor_pages(api: TestClient, hall: clients.Credentials) -> None:
    shipment = await create_shipment(api, hall)
    for n in range(3):
        await complain(api, shipment["tracking_code"], category="other", text=f"第{n + 1}次反映：派送时间与预约不符。")
    first = await (await api.get("/v1/complaints?limit=2", headers=auth(hall))).json()
    second = await (await api.get(f"/v1/complaints?limit=2&cursor={first['next_cursor']}", headers=auth(hall))).json()
    texts = [c["text"][:3] for c in first["data"] + second["data"]]
    assert texts == ["第3次", "第2次", "第1次"]
    assert second["next_cursor"] is None


async def test_a_complaint_is_sent_to_the_client_as_a_webhook(api: TestClient, db: Database) -> None:
    hooked = await clients.create(db, "上街区卫健审批系统", "https://wj.sj.gov.cn/hooks")
    shipment = await create_shipment(api, hooked)
    await complain(api, shipment["tracking_code"])
    async with db.read() as conn:
        delivery = (
            await conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.type == "shipment.complaint"))
        ).one()
    assert delivery.payload["data"]["complaint"]["text"] == COMPLAINT["text"]
    assert delivery.payload["data"]["id"] == shipment["id"]


async def test_a_complaint_without_a_category_is_refused_and_nothing_is_stored(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await create_shipment(api, hall)
    resp = await complain(api, shipment["tracking_code"], category="", text=COMPLAINT["text"])
    assert resp.status == 422
    assert "请选择问题类型" in await resp.text()
    async with db.read() as conn:
        assert (await conn.execute(select(complaints))).all() == []


async def test_a_complaint_about_an_unknown_code_is_a_404(api: TestClient) -> None:
    resp = await complain(api, "23456789ABCDE")
    assert resp.status == 404


async def test_complaints_are_rate_limited(settings: Any, db: Database, hall: clients.Credentials) -> None:
    from logistics.api.app import create_app

    settings.complaint_rate_per_hour = 2
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    try:
        shipment = await create_shipment(client, hall)
        statuses = [(await complain(client, shipment["tracking_code"])).status for _ in range(3)]
        assert statuses == [303, 303, 429]
    finally:
        await client.close()


async def test_json_complaints_answer_with_the_id(api: TestClient, hall: clients.Credentials) -> None:
    shipment = await create_shipment(api, hall)
    resp = await api.post(f"/t/{shipment['tracking_code']}/complaints", json=COMPLAINT)
    assert resp.status == 201
    assert (await resp.json())["id"].startswith("cmp_")
