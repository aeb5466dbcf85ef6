"""好差评 in real headless Chromium at a phone's size: the rating form of a delivered shipment, a 不满意 with a
comment holding a phone number, the confirmation, and the number gone from what was stored. Screenshots are
kept in test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from sqlalchemy import select

from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import follow_ups, ratings, shipments
from logistics.storage.db import Database

from support import auth, delivery_body

pytestmark = pytest.mark.browser
COMMENT = "投递员没打电话就放在小区门卫，我的手机13803712345一直开着，希望改进。"


async def delivered(api: TestClient, db: Database, creds: clients.Credentials) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(creds))
    assert resp.status == 201
    shipment = await resp.json()
    async with db.write() as conn:
        from sqlalchemy import update

        await conn.execute(update(shipments).where(shipments.c.id == shipment["id"]).values(waybill_no="1295780512499"))
        for status in ("ordered", "picked_up", "in_transit", "out_for_delivery", "delivered"):
            row = await lock_shipment(conn, shipment["id"])
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text=None, location="郑州市")
    return shipment


async def test_a_bad_rating_with_a_phone_number_on_a_phone(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await delivered(api, db, hall)
    await page.goto(url(api, f"/t/{shipment['tracking_code']}"))
    await page.locator("#rating").scroll_into_view_if_needed()
    await page.check("#level-2")
    await page.fill("#rating-comment", COMMENT)
    await page.screenshot(path=shot("rating-form"), full_page=True)
    # The five choices are full-width touch targets, one a row.
    box = await page.locator("label:has(#level-2)").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] >= 40
    await page.click("#rating-form button[type=submit]")
    await page.wait_for_selector("#rating-sent")
    assert await page.locator("#rating-given").inner_text() == "您已评价：不满意"
    assert await page.locator("#rating-form").count() == 0
    await page.locator("#rating").scroll_into_view_if_needed()
    await page.screenshot(path=shot("rating-done"), full_page=True)
    html = await page.content()
    assert "13803712345" not in html and "小区门卫" not in html  # the comment is never public
    async with db.read() as conn:
        stored = (await conn.execute(select(ratings))).one()
        opened = (await conn.execute(select(follow_ups))).one()
    assert stored.level == 2 and "13803712345" not in stored.comment and "[号码已隐去]" in stored.comment
    assert opened.rating_id == stored.id


async def test_a_clerk_sees_the_follow_up_in_the_queue_and_closes_it_on_a_desktop(
    desktop_page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    from logistics.accounts import staff

    page = desktop_page
    clerk = await staff.create(db, "李秀英", "clerk", ["上街区市场监督管理局"])
    shipment = await delivered(api, db, hall)
    rated = await api.post(f"/t/{shipment['tracking_code']}/rating", json={"level": 1, "comment": COMMENT})
    assert rated.status == 201
    await page.goto(url(api, "/console"))
    await page.fill("#token", clerk.token)
    await page.click("#sign-in")
    await page.wait_for_selector("#count-created")
    await page.goto(url(api, "/console/exceptions"))
    row = page.locator("#chases tr", has_text="差评待回访")
    assert await row.count() == 1
    await page.screenshot(path=shot("rating-console-exceptions"), full_page=True)
    await row.locator("a").click()
    await page.wait_for_selector("#follow-up-form")
    assert await page.inner_text("#rating-level") == "非常不满意"
    await page.fill("#follow-up-action", "已电话回访申请人，说明原因并致歉；已督促揽投部按约投递。")
    await page.click("#follow-up-form button[type=submit]")
    await page.wait_for_selector("#action-ok")
    await page.locator("#rating").scroll_into_view_if_needed()
    await page.screenshot(path=shot("rating-console-closed"), full_page=True)
    assert "李秀英 登记于" in await page.inner_text("#rating")
