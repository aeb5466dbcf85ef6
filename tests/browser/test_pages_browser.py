"""The people's pages in real headless Chromium: applicant choice, tracking timeline, staff scans online and
offline. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from sqlalchemy import func, select, update

from logistics.accounts import clients, staff
from logistics.api.schemas import BEIJING
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import scans, shipment_events, shipments
from logistics.storage.db import Database

from support import auth, delivery_body, eventually, intake_body

pytestmark = pytest.mark.browser
WAYBILL = "1295780512499"


async def create(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201
    return await resp.json()


async def move(db: Database, shipment_id: str, *steps: tuple[str, str | None]) -> None:
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=WAYBILL))
        for status, text in steps:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text=text, location="郑州市")


async def status_of(db: Database, shipment_id: str) -> str:
    async with db.read() as conn:
        return (await conn.execute(select(shipments.c.status).where(shipments.c.id == shipment_id))).scalar_one()


async def test_the_applicant_chooses_mail_and_the_shipment_becomes_pending(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await create(api, hall, recipient=None, applicant_choice=True)
    await page.goto(url(api, shipment["applicant_url"].removeprefix("http://127.0.0.1:8080")))
    await page.fill("#name", "欧阳娜娜")
    await page.fill("#phone", "13803712345")
    await page.fill("#address", "新安路街道济源路8号院3号楼2单元501室")
    await page.fill("#postcode", "450041")
    await page.screenshot(path=shot("applicant-form"), full_page=True)
    await page.click("#choose-mail")
    await page.wait_for_selector("text=已选择邮寄")
    await page.screenshot(path=shot("applicant-done"), full_page=True)
    assert await status_of(db, shipment["id"]) == "pending"


async def test_the_tracking_page_shows_the_timeline_masked_and_no_full_phone(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await create(api, hall)
    await move(
        db,
        shipment["id"],
        ("ordered", None),
        ("picked_up", "上街区揽投部已收件"),
        ("in_transit", "离开郑州处理中心，发往上街区揽投部"),
        ("out_for_delivery", "投递员：王师傅，电话13912345678，正在派送"),
    )
    await page.goto(url(api, f"/t/{shipment['tracking_code']}"))
    timeline = page.locator("#timeline li")
    assert await timeline.count() == 5
    assert await page.locator("#status").inner_text() == "正在派送"
    assert "欧阳**" in await page.locator("#recipient").inner_text()
    await page.screenshot(path=shot("tracking"), full_page=True)
    html = await page.content()
    for secret in ("13803712345", "13912345678", "欧阳娜娜", "2单元501室", shipment["verification_code"]):
        assert secret not in html


# The distinct lines the text of ``element`` occupies: one per line box, however the inline is split.
LINES_OF = """element => {
    const range = document.createRange();
    range.selectNodeContents(element);
    return new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size;
}"""


async def test_the_halls_phone_is_shown_whole_on_one_line_on_a_phone(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    # A long hall name puts the phone where the line ends on a 390 px screen.
    sender = {**delivery_body()["sender"], "name": "郑州市上街区政务服务中心综合受理三号窗口"}
    shipment = await create(api, hall, sender=sender)
    await move(db, shipment["id"], ("ordered", None))
    await page.goto(url(api, f"/t/{shipment['tracking_code']}"))
    await page.screenshot(path=shot("tracking-hall-phone"), full_page=True)
    phone = page.locator("#sender .phone")
    assert await phone.inner_text() == "0371-68123456"
    assert await phone.evaluate(LINES_OF) == 1
    assert "138******45" in await page.locator("#recipient").inner_text()


async def test_an_intake_tracking_page_shows_the_booked_pickup_window_on_a_phone(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    day = (datetime.now(BEIJING) + timedelta(days=1)).date()
    opens = datetime(day.year, day.month, day.day, 9, 0, tzinfo=BEIJING)
    window = {"start": opens.isoformat(), "end": (opens + timedelta(hours=3)).isoformat()}
    resp = await api.post("/v1/shipments", json=intake_body(pickup_window=window), headers=auth(hall))
    assert resp.status == 201
    shipment = await resp.json()
    await move(db, shipment["id"], ("ordered", None))
    await page.goto(url(api, f"/t/{shipment['tracking_code']}"))
    await page.screenshot(path=shot("tracking-pickup-window"), full_page=True)
    fact = page.locator("#pickup-window")
    assert await fact.inner_text() == f"{opens.month}月{opens.day}日 09:00–12:00"
    # Read on a 390 px screen: label and time range each on one line, inside the card.
    assert await fact.evaluate(LINES_OF) == 1
    assert await page.locator("#pickup-window-label").evaluate(LINES_OF) == 1
    box, card = await fact.bounding_box(), await page.locator("#summary").bounding_box()
    assert box is not None and card is not None and box["x"] + box["width"] <= card["x"] + card["width"]
    assert "张* 139******45" in await page.locator("#sender").inner_text()


async def sign_in(page: Any, api: TestClient, token: str) -> None:
    await page.goto(url(api, "/staff"))
    await page.fill("#token", token)
    await page.click("#signin-button")
    await page.wait_for_selector("#app:not(.hidden)")


async def test_the_staff_page_records_a_manually_entered_scan(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    courier = await staff.create(db, "王建国", "courier", ["上街区市场监督管理局"])
    shipment = await create(api, hall)
    await move(db, shipment["id"], ("ordered", None))
    await sign_in(page, api, courier.token)
    await page.fill("#code", WAYBILL)
    await page.fill("#location", "上街区投递部")
    await page.click("#action-pickup")
    done = page.locator("#results li.ok")
    await done.first.wait_for()
    assert "已登记揽收" in await done.first.inner_text()
    await page.screenshot(path=shot("staff-scan"), full_page=True)
    assert await status_of(db, shipment["id"]) == "picked_up"


async def test_a_scan_queued_offline_is_uploaded_exactly_once_after_reconnecting(
    page: Any, browser_context: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    courier = await staff.create(db, "王建国", "courier", ["上街区市场监督管理局"])
    shipment = await create(api, hall)
    await move(db, shipment["id"], ("ordered", None))
    uploads: list[str] = []

    def watch(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/v1/scans"):
            uploads.extend(s["scan_id"] for s in orjson.loads(request.post_data)["scans"])

    # Attempts made while offline fail inside the browser; only finished requests reached the server.
    page.on("requestfinished", watch)
    await sign_in(page, api, courier.token)
    await browser_context.set_offline(True)
    await page.fill("#code", WAYBILL)
    await page.click("#action-pickup")
    await page.locator("#results li.queued").first.wait_for()
    assert await page.locator("#queue-count").inner_text() == "待上传 1"
    await page.screenshot(path=shot("staff-offline-queued"), full_page=True)
    assert await status_of(db, shipment["id"]) == "ordered"

    await browser_context.set_offline(False)
    await page.locator("#results li.ok").first.wait_for()
    assert await page.locator("#queue-count").inner_text() == "待上传 0"
    # Another reconnect signal must find nothing left to send.
    await page.evaluate("window.dispatchEvent(new Event('online'))")
    await page.wait_for_function("document.querySelector('#queue-count').textContent === '待上传 0'")
    await page.screenshot(path=shot("staff-offline-uploaded"), full_page=True)

    async def one_event() -> bool:
        async with db.read() as conn:
            picked = (
                await conn.execute(
                    select(func.count())
                    .select_from(shipment_events)
                    .where(shipment_events.c.shipment_id == shipment["id"], shipment_events.c.status == "picked_up")
                )
            ).scalar_one()
            rows = (await conn.execute(select(func.count()).select_from(scans))).scalar_one()
        return picked == 1 and rows == 1

    assert await eventually(one_event)
    assert len(uploads) == 1
    assert await status_of(db, shipment["id"]) == "picked_up"


async def test_the_staff_page_opens_without_any_network_and_queues_scans(
    page: Any, api: TestClient, db: Database
) -> None:
    courier = await staff.create(db, "王建国", "courier", ["上街区市场监督管理局"])
    await sign_in(page, api, courier.token)
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    await page.reload()  # now controlled by the service worker
    await page.wait_for_function("navigator.serviceWorker.controller !== null")
    await api.server.close()  # the service is really gone: no request can reach it any more
    await page.reload()
    await page.wait_for_selector("#app:not(.hidden)")
    await page.fill("#code", WAYBILL)
    await page.click("#action-pickup")
    await page.locator("#results li.queued").first.wait_for()
    await page.screenshot(path=shot("staff-no-network"), full_page=True)
    assert await page.locator("#queue-count").inner_text() == "待上传 1"
