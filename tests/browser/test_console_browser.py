"""The hall's console in real headless Chromium at desktop size: sign in, today, find, one shipment, the
exceptions to chase, a complaint answered (and its answer on the public tracking page), sign out. Screenshots
are kept in test-artifacts/console-*.png."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from sqlalchemy import func, select, update

from logistics.accounts import clients, staff
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import personal_data_access, shipments
from logistics.storage.db import Database

from support import APPLICANT, auth, delivery_body

pytestmark = pytest.mark.browser
MARKET = "上街区市场监督管理局"


async def create(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201
    return await resp.json()


async def move(db: Database, shipment_id: str, waybill: str, *statuses: str) -> None:
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=waybill))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text="收寄", location="上街区")


async def views(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(personal_data_access))).scalar_one())


async def test_a_clerk_signs_in_sees_today_finds_a_shipment_and_signs_out(
    desktop_page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    page = desktop_page
    clerk = await staff.create(db, "李秀英", "clerk", [MARKET, "上街区民政局"])
    wanted = await create(api, hall, cases=[{"case_no": "410106-2026-00388", "item_name": "食品经营许可证核发"}])
    picked = await create(
        api,
        hall,
        window="综合受理5号窗口",
        cases=[{"case_no": "410106-2026-00391", "item_name": "药品经营许可证变更"}],
        recipient={**APPLICANT, "name": "司马光明", "phone": "13912345678"},
    )
    await create(api, hall, cases=[{"case_no": "410106-2026-00395", "item_name": "小餐饮登记"}])
    await move(db, picked["id"], "1295780512537", "ordered", "picked_up")
    await move(db, wanted["id"], "1295780512544", "ordered")

    await page.goto(url(api, "/console"))
    await page.wait_for_selector("#token")
    await page.screenshot(path=shot("console-sign-in"), full_page=True)
    await page.fill("#token", "stk_not-a-real-token")
    await page.click("#sign-in")
    await page.wait_for_selector("#sign-in-error")
    await page.fill("#token", clerk.token)
    await page.click("#sign-in")

    await page.wait_for_selector("#count-created")
    assert await page.inner_text("#count-created b") == "3"
    assert await page.inner_text("#count-waiting b") == "2"
    assert await page.inner_text("#count-picked_up b") == "1"
    assert await page.inner_text("#count-delivered b") == "0"
    await page.screenshot(path=shot("console-today"), full_page=True)

    await page.fill("#find-q", "1295780512544")
    await page.click("#find-go")
    await page.wait_for_selector("#recipient")
    assert APPLICANT["phone"] in await page.inner_text("#recipient")
    assert "410106-2026-00388" in await page.inner_text("h1")
    await page.screenshot(path=shot("console-shipment"), full_page=True)
    assert await views(db) == 1

    await page.fill("#find-q", APPLICANT["phone"])
    await page.click("#find-go")
    await page.wait_for_selector("#find-results")
    assert "找到 2 件" in await page.inner_text("#find-summary")
    await page.screenshot(path=shot("console-find"), full_page=True)
    assert await views(db) == 3

    filed = await api.post(
        f"/t/{wanted['tracking_code']}/complaints",
        json={"category": "delay", "text": "下单两天了还没有人来取件，我是欧阳娜娜13803712345"},
    )
    assert filed.status == 201
    await page.click("#nav-exceptions")
    await page.wait_for_selector("#chases")
    chases = await page.inner_text("#chases")
    assert "有1条投诉尚未答复" in chases and "已下单但面单从未打印" in chases
    await page.screenshot(path=shot("console-exceptions"), full_page=True)

    # The exception chased to its end: the complaint answered from the shipment page.
    await page.click("text=410106-2026-00388")
    await page.wait_for_selector("#complaints textarea")
    answer = "已联系EMS上街区揽投部，今天下午上门揽收，明天送达。如有疑问请拨打0371-68123456。"
    await page.fill("#complaints textarea", answer)
    await page.click("#complaints button")
    await page.wait_for_selector("#action-ok")
    assert "答复已发送" in await page.inner_text("#action-ok")
    assert answer in await page.inner_text("#complaints")
    await page.screenshot(path=shot("console-answer"), full_page=True)
    await page.click("#nav-exceptions")
    await page.wait_for_selector("#chases")
    assert "投诉尚未答复" not in await page.inner_text("#chases")

    await page.goto(url(api, f"/t/{wanted['tracking_code']}"))
    await page.wait_for_selector("#answers")
    public = await page.inner_text("#answers")
    assert "今天下午上门揽收，明天送达" in public and "68123456" not in public
    assert "还没有人来取件" not in await page.inner_text("body")  # the complaint itself stays private
    await page.screenshot(path=shot("console-answer-tracking"), full_page=True)
    back = await create(api, hall, cases=[{"case_no": "410106-2026-00402", "item_name": "食品经营许可证变更"}])
    await move(db, back["id"], "1295780512551", "ordered", "picked_up", "returning", "returned")
    await page.goto(url(api, f"/console/shipments/{back['id']}"))
    await page.wait_for_selector("#resolve-form")
    assert await page.input_value("#resend-address") == APPLICANT["address"]  # filled in, to be corrected
    await page.screenshot(path=shot("console-returned"), full_page=True)
    await page.goto(url(api, "/console/today"))
    await page.wait_for_selector("#count-created")

    await page.click("#sign-out")
    await page.wait_for_selector("#token")
    await page.goto(url(api, "/console/today"))
    await page.wait_for_selector("#token")  # the session is gone: back to sign-in
