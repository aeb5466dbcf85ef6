"""Printing and the hand-over in real headless Chromium: a clerk prints the ticked parcels' labels and makes the
courier's 交接清单 on the console (desktop), and the courier scans the manifest's QR on /staff (phone): its
parcels become picked_up, and the page says how many and which had already moved. Screenshots (and the manifest
PDF drawn as an image) are kept in test-artifacts/handover-*.png."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from sqlalchemy import select, update

from logistics.accounts import clients, staff
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import APPLICANT, auth, delivery_body, sign_in

pytestmark = pytest.mark.browser
MARKET = "上街区市场监督管理局"


async def ordered(
    api: TestClient, db: Database, hall: clients.Credentials, waybill: str, case_no: str, **kw: Any
) -> str:
    resp = await api.post(
        "/v1/shipments",
        json=delivery_body(cases=[{"case_no": case_no, "item_name": "食品经营许可证核发"}], **kw),
        headers=auth(hall),
    )
    assert resp.status == 201
    shipment_id = str((await resp.json())["id"])
    await move(db, shipment_id, "ordered", waybill=waybill)
    return shipment_id


async def move(db: Database, shipment_id: str, *statuses: str, waybill: str | None = None) -> None:
    async with db.write() as conn:
        if waybill:
            await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=waybill))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text="收寄", location="上街区")


async def status_of(db: Database, shipment_id: str) -> str:
    async with db.read() as conn:
        return str((await conn.execute(select(shipments.c.status).where(shipments.c.id == shipment_id))).scalar_one())


async def console_sign_in(page: Any, api: TestClient, token: str) -> None:
    await page.goto(url(api, "/console"))
    await page.fill("#token", token)
    await page.click("#sign-in")
    await page.wait_for_selector("#count-created")


async def test_a_clerk_prints_the_ticked_labels_and_makes_the_couriers_manifest(
    desktop_page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    page = desktop_page
    clerk = await staff.create(db, "李秀英", "clerk", [MARKET])
    first = await ordered(api, db, hall, "1295780512499", "410106-2026-00388")
    second = await ordered(
        api, db, hall, "1295780512506", "410106-2026-00391", recipient={**APPLICANT, "name": "张晓明"}
    )
    left = await ordered(api, db, hall, "1295780512513", "410106-2026-00395", window="综合受理5号窗口")
    await console_sign_in(page, api, clerk.token)

    await page.check(f'input[value="{first}"]')
    await page.check(f'input[value="{second}"]')
    await page.select_option("#print-format", "pdf")
    await page.screenshot(path=shot("handover-today-ticked"), full_page=True)
    async with page.expect_download() as info:
        await page.click("#print-selected")
    download = await info.value
    printed = await asyncio.to_thread(Path(await download.path()).read_bytes)
    texts = [p.get_textpage().get_text_range() for p in pdfium.PdfDocument(printed)]
    waybills = ("1295780512499", "1295780512506", "1295780512513")
    assert len(texts) == 2 and sorted(w for t in texts for w in waybills if w in t) == list(waybills[:2])

    await page.click("#nav-handover")
    await page.wait_for_selector("#waiting")
    assert await page.is_checked(f'input[value="{left}"]')  # all ticked to begin with
    await page.uncheck(f'input[value="{left}"]')  # stays at the hall today
    await page.screenshot(path=shot("handover-list"), full_page=True)
    await page.click("#make-manifest")
    await page.wait_for_selector("#manifest-items")
    assert await page.inner_text("#manifest-count") == "2 件"
    assert "尚未交接" in await page.inner_text("#taken-over")
    await page.screenshot(path=shot("handover-manifest"), full_page=True)

    pdf = await page.request.get(url(api, await page.get_attribute("#manifest-pdf", "href") or ""))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    image = pdfium.PdfDocument(await pdf.body())[0].render(scale=150 / 72).to_pil()
    image.save(shot("handover-manifest-pdf"))
    (qr,) = [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]
    assert "/m/" in qr

    # Back on the list, the listed parcels wait unticked, each marked with its manifest; the one left behind is
    # ticked again for the next.
    await page.click("#nav-handover")
    await page.wait_for_selector("#waiting")
    assert await page.is_checked(f'input[value="{left}"]')
    assert await page.locator("#waiting .badge.warn").count() == 2
    await page.screenshot(path=shot("handover-list-after-manifest"), full_page=True)


async def test_the_courier_scans_the_manifest_on_the_staff_page_and_its_parcels_are_picked_up(
    page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    clerk = await staff.create(db, "李秀英", "clerk", [MARKET])
    courier = await staff.create(db, "王建国", "courier", [MARKET])
    ids = [
        await ordered(api, db, hall, waybill, case_no)
        for waybill, case_no in (
            ("1295780512499", "410106-2026-00388"),
            ("1295780512506", "410106-2026-00391"),
            ("1295780512513", "410106-2026-00395"),
        )
    ]
    csrf = await sign_in(api, clerk.token)
    made = await api.post(
        "/console/manifests", data=[("csrf", csrf), ("department", MARKET)] + [("id", i) for i in ids]
    )
    assert made.status == 200
    pdf = await (await api.get(f"{made.url.path}/pdf")).read()
    image = pdfium.PdfDocument(pdf)[0].render(scale=200 / 72).to_pil().convert("L")
    (qr,) = [r.text for r in zxingcpp.read_barcodes(image)]
    await move(db, ids[2], "cancelled")  # the applicant came to the window after all

    await page.goto(url(api, "/staff"))
    await page.fill("#token", courier.token)
    await page.click("#signin-button")
    await page.wait_for_selector("#app:not(.hidden)")
    await page.fill("#code", qr)  # what the camera (or a hand scanner typing into the field) gives
    await page.locator("#parcel", has_text="交接清单").wait_for()  # the lookup, before any action
    assert "共 3 件" in await page.inner_text("#parcel")
    await page.click("#action-pickup")
    done = page.locator("#results li.ok .manifest-count")
    await done.first.wait_for()
    assert await done.first.inner_text() == "本次揽收 2 件 / 清单共 3 件"
    moved = await page.inner_text("#results li.ok ul.moved")
    assert "1295780512513" in moved and "已取消" in moved
    await page.screenshot(path=shot("handover-staff-scan"), full_page=True)
    assert [await status_of(db, i) for i in ids] == ["picked_up", "picked_up", "cancelled"]

    await page.fill("#code", qr)  # scanned again: nothing changes, the same answer
    await page.click("#action-pickup")
    await page.locator("#results li.ok").nth(1).wait_for()
    assert await page.locator("#results li.ok .manifest-count").nth(0).inner_text() == "本次揽收 2 件 / 清单共 3 件"
    assert [await status_of(db, i) for i in ids] == ["picked_up", "picked_up", "cancelled"]
    await page.screenshot(path=shot("handover-staff-rescan"), full_page=True)
