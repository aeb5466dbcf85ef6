"""The applicant's choice link: mail (party stored, pending, order task) or window (declined); single use, expiring."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from people_support import create_shipment, events_of, status_of
from sqlalchemy import select, update

from logistics.accounts import applicant, clients
from logistics.domain.tables import outbox, shipments, utcnow, webhook_deliveries
from logistics.storage.db import Database

from support import APPLICANT, auth, intake_body

MAIL_FORM = {
    "choice": "mail",
    "name": "欧阳娜娜",
    "phone": "13803712345",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "新安路街道济源路8号院3号楼2单元501室",
    "postcode": "450041",
}


async def awaiting(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    return await create_shipment(api, creds, recipient=None, applicant_choice=True, **overrides)


def path_of(shipment: dict[str, Any]) -> str:
    return shipment["applicant_url"].removeprefix("http://127.0.0.1:8080")


async def task_kinds(db: Database, shipment_id: str) -> list[str]:
    async with db.read() as conn:
        return [r.kind for r in await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == shipment_id))]


async def webhook_types(db: Database, shipment_id: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(webhook_deliveries.c.type)
            .where(webhook_deliveries.c.shipment_id == shipment_id)
            .order_by(webhook_deliveries.c.position)
        )
        return [r.type for r in rows]


async def expire(db: Database, shipment_id: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == shipment_id)
            .values(applicant_expires_at=utcnow() - timedelta(minutes=1))
        )


async def test_create_with_applicant_choice_gives_an_unguessable_link(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    assert shipment["status"] == "awaiting_applicant"
    token = shipment["applicant_url"].rsplit("/a/", 1)[1]
    assert len(token) >= 43  # 256 random bits
    async with db.read() as conn:
        stored = (await conn.execute(select(shipments).where(shipments.c.id == shipment["id"]))).one()
    assert stored.applicant_token_hash != token and token not in str(dict(stored._mapping))


async def test_the_link_opens_the_choice_page(api: TestClient, hall: clients.Credentials) -> None:
    shipment = await awaiting(api, hall)
    resp = await api.get(path_of(shipment))
    assert resp.status == 200
    page = await resp.text()
    assert "请选择办理结果的领取方式" in page and "食品经营许可证核发" in page
    assert resp.headers["Referrer-Policy"] == "same-origin"


async def test_choosing_mail_stores_the_address_and_queues_the_carrier_order(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    resp = await api.post(path_of(shipment), data=MAIL_FORM)
    assert resp.status == 200
    assert "已选择邮寄" in await resp.text()
    assert await status_of(db, shipment["id"]) == "pending"
    assert await task_kinds(db, shipment["id"]) == ["order"]
    got = await (await api.get(f"/v1/shipments/{shipment['id']}", headers=auth(hall))).json()
    assert got["recipient"] == {**APPLICANT, "postcode": "450041"}
    assert got["events"][-1]["source"] == "applicant"


async def test_choosing_mail_for_an_intake_books_the_pickup_slot(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    resp = await api.post(
        "/v1/shipments", json=intake_body(sender=None, pickup_window=None, applicant_choice=True), headers=auth(hall)
    )
    shipment = await resp.json()
    form_page = await (await api.get(path_of(shipment))).text()
    slot = form_page.split('<option value="', 1)[1].split('"', 1)[0]
    resp = await api.post(path_of(shipment), data={**MAIL_FORM, "slot": slot})
    assert resp.status == 200, await resp.text()
    got = await (await api.get(f"/v1/shipments/{shipment['id']}", headers=auth(hall))).json()
    assert got["status"] == "pending"
    assert got["sender"]["name"] == "欧阳娜娜"
    assert got["pickup_window"]["start"] is not None


async def test_a_bad_phone_number_is_explained_in_chinese_and_changes_nothing(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    resp = await api.post(path_of(shipment), data={**MAIL_FORM, "phone": "1380371"})
    assert resp.status == 422
    page = await resp.text()
    assert '<div class="field-error" id="error-phone">请填写正确的手机号码' in page
    assert 'value="新安路街道济源路8号院3号楼2单元501室"' in page  # what was typed stays in the form
    assert await status_of(db, shipment["id"]) == "awaiting_applicant"
    assert await task_kinds(db, shipment["id"]) == []


async def test_choosing_the_window_declines_the_shipment(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    resp = await api.post(path_of(shipment), data={"choice": "window"})
    assert resp.status == 200
    assert "已选择到窗口办理" in await resp.text()
    assert await status_of(db, shipment["id"]) == "declined"
    assert await task_kinds(db, shipment["id"]) == []
    assert (await events_of(db, shipment["id"]))[-1]["source"] == "applicant"


async def test_a_used_link_cannot_be_used_again(api: TestClient, db: Database, hall: clients.Credentials) -> None:
    shipment = await awaiting(api, hall)
    await api.post(path_of(shipment), data=MAIL_FORM)
    again = await api.post(path_of(shipment), data={"choice": "window"})
    assert again.status == 410
    assert "链接已使用" in await again.text()
    assert await status_of(db, shipment["id"]) == "pending"
    assert (await api.get(path_of(shipment))).status == 410


async def test_an_expired_link_is_gone_and_the_client_is_told_once(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    hooked = await clients.create(db, "上街区社保审批系统", "https://sb.sj.gov.cn/hooks")
    shipment = await awaiting(api, hooked)
    await expire(db, shipment["id"])
    first = await api.get(path_of(shipment))
    assert first.status == 410
    assert "链接已过期" in await first.text()
    assert (await api.post(path_of(shipment), data=MAIL_FORM)).status == 410
    assert await webhook_types(db, shipment["id"]) == ["shipment.applicant_link_expired"]
    assert await status_of(db, shipment["id"]) == "awaiting_applicant"


async def test_the_periodic_check_reports_expired_links_once(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    hooked = await clients.create(db, "上街区公积金审批系统", "https://gjj.sj.gov.cn/hooks")
    shipment = await awaiting(api, hooked)
    fresh = await awaiting(api, hooked)
    await expire(db, shipment["id"])
    assert await applicant.notify_expired_links(db) == 1
    assert await applicant.notify_expired_links(db) == 0
    assert await webhook_types(db, shipment["id"]) == ["shipment.applicant_link_expired"]
    assert await webhook_types(db, fresh["id"]) == []


async def test_an_unknown_link_is_a_404(api: TestClient) -> None:
    resp = await api.get("/a/nD3kq0w8Zr4u1bT6yVxA2cE5fG7hJ9kL0mN1pQ3rS5t")
    assert resp.status == 404
    assert "链接无效" in await resp.text()


async def test_a_cancelled_shipment_closes_its_link(api: TestClient, hall: clients.Credentials) -> None:
    shipment = await awaiting(api, hall)
    await api.post(f"/v1/shipments/{shipment['id']}/cancel", headers=auth(hall))
    resp = await api.get(path_of(shipment))
    assert resp.status == 410


async def test_the_link_is_shown_once_and_can_be_issued_again(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    got = await (await api.get(f"/v1/shipments/{shipment['id']}", headers=auth(hall))).json()
    assert got["applicant_url"] is None
    resp = await api.post(f"/v1/shipments/{shipment['id']}/applicant-link", headers=auth(hall))
    assert resp.status == 201
    new = await resp.json()
    assert (await api.get(new["applicant_url"].removeprefix("http://127.0.0.1:8080"))).status == 200
    assert (await api.get(path_of(shipment))).status == 404


async def test_another_client_cannot_issue_a_link(
    api: TestClient, hall: clients.Credentials, other_hall: clients.Credentials
) -> None:
    shipment = await awaiting(api, hall)
    resp = await api.post(f"/v1/shipments/{shipment['id']}/applicant-link", headers=auth(other_hall))
    assert resp.status == 404
