"""The console's 月结对账单 in real headless Chromium at desktop size: the form from the navigation, the CSV
downloaded as a clerk gets it, and a refused month shown beside its field. Screenshots in
test-artifacts/console-statements-*.png."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url
from sqlalchemy import update

from logistics.accounts import clients, staff
from logistics.api.schemas import BEIJING
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import auth, delivery_body

pytestmark = pytest.mark.browser
MARKET = "上街区市场监督管理局"


async def handed_over(api: TestClient, db: Database, hall: clients.Credentials, waybill: str, at: datetime) -> str:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    assert resp.status == 201
    sid = str((await resp.json())["id"])
    async with db.write() as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == sid)
            .values(waybill_no=waybill, created_at=at - timedelta(days=1), status="ordered")
        )
        row = await lock_shipment(conn, sid)
        assert row is not None
        await apply_event(conn, row, status="picked_up", source="carrier_push", occurred_at=at, carrier_code="203")
    return sid


async def test_a_clerk_downloads_the_months_statement_from_the_console(
    desktop_page: Any, api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    page = desktop_page
    clerk = await staff.create(db, "李秀英", "clerk", [MARKET, "上街区民政局"])
    sid = await handed_over(api, db, hall, "1295780512499", datetime(2026, 11, 1, 0, 10, tzinfo=BEIJING))

    await page.goto(url(api, "/console"))
    await page.fill("#token", clerk.token)
    await page.click("#sign-in")
    await page.wait_for_selector("#count-created")
    await page.click("#nav-statements")
    await page.wait_for_selector("#statement-form")
    await page.screenshot(path=shot("console-statements-form"), full_page=True)

    await page.select_option("#department", MARKET)
    await page.fill("#month", "2026-11")
    async with page.expect_download() as info:
        await page.click("#download")
    download = await info.value
    assert download.suggested_filename == f"{MARKET}-2026-11.csv"
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["运单号", "交寄日期", "类型", "付款方式", "办件编号", "寄递编号"],
        ["1295780512499", "2026-11-01", "送达", "月结", "410106-2018-00095", sid],
    ]

    await page.goto(url(api, f"/console/statements?department={MARKET}&month=2026-13"))
    await page.wait_for_selector("#month-error")
    await page.screenshot(path=shot("console-statements-error"), full_page=True)
