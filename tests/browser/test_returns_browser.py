"""The way back in real headless Chromium: a clerk takes a returned envelope back at the hall from the staff page,
and the applicant's tracking page says where the parcel is. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from test_pages_browser import WAYBILL, create, move, sign_in, status_of

from logistics.accounts import clients, staff
from logistics.storage.db import Database

pytestmark = pytest.mark.browser
BUREAU = "上街区市场监督管理局"


async def test_a_clerk_records_a_returned_envelope_back_at_the_hall(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    clerk = await staff.create(db, "李建国", "clerk", [BUREAU])
    shipment = await create(api, hall)
    await move(
        db,
        shipment["id"],
        ("ordered", None),
        ("picked_up", "【郑州市上街区揽投部】已收寄"),
        ("delivery_failed", "未妥投,原因:收件人拒收"),
        ("returning", "邮件退回中,原因:收件人拒收,已离开【郑州市邮区中心】"),
    )
    await sign_in(page, api, clerk.token)
    assert await page.locator("#action-fail").is_hidden()  # a clerk records no failed attempt
    await page.fill("#code", WAYBILL)
    await page.click("#action-returned")
    done = page.locator("#results li.ok")
    await done.first.wait_for()
    assert "已登记退件签收" in await done.first.inner_text()
    await page.screenshot(path=shot("staff-returned"), full_page=True)
    assert await status_of(db, shipment["id"]) == "returned"

    await page.goto(url(api, f"/t/{shipment['tracking_code']}"))
    assert "邮件已退回办件窗口" in await page.locator("body").inner_text()
    await page.screenshot(path=shot("tracking-returned"), full_page=True)


async def test_a_courier_has_no_returned_button(page: Any, api: TestClient, db: Database) -> None:
    courier = await staff.create(db, "王建国", "courier", [BUREAU])
    await sign_in(page, api, courier.token)
    assert await page.locator("#action-returned").is_hidden()
    assert await page.locator("#action-fail").is_visible()
