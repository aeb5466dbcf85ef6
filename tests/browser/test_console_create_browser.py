"""Create by hand on the console in real headless Chromium at desktop size, against the whole pipeline (the EMS
simulator and a worker that orders at EMS): a mistake shown beside its field, fixed, the shipment created with its
取件验证码 shown once, and its label printed as soon as the worker has ordered it. Screenshots are kept in
test-artifacts/console-create-*.png."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from browser_support import shot, url
from sqlalchemy import select

from carriers.simulator.config import SimConfig
from carriers.simulator.server import create_app as create_sim_app
from logistics.accounts import staff
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.console.create import CONSOLE_CLIENT_ID
from logistics.domain.tables import shipments
from logistics.jobs import carrier as handlers
from logistics.jobs.worker import build_runtime, create_worker
from logistics.storage.db import Database

from support import HALL

pytestmark = pytest.mark.browser
MARKET = "上街区市场监督管理局"


@pytest.fixture
async def pipeline(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    """The API with the market bureau's hall configured, the EMS simulator, and one worker ordering at it."""
    sim = TestClient(
        TestServer(
            create_sim_app(
                SimConfig(
                    sender_no=settings.ems_sender_no,
                    authorization=settings.ems_authorization,
                    sign_key=settings.ems_sign_key,
                    step_seconds=0,  # parcels stay where they are ordered: nothing moves on its own
                    seed=20261204,
                )
            ),
            host="127.0.0.1",
        )
    )
    await sim.start_server()
    halls = tmp_path / "halls.json"
    halls.write_text(json.dumps({MARKET: HALL}, ensure_ascii=False), encoding="utf-8")
    settings.halls_file = halls
    settings.ems_base_url = str(sim.make_url("")).rstrip("/")
    settings.ems_timeout_seconds = 2.0
    api = TestClient(TestServer(create_app(settings, db=db), host="127.0.0.1"))
    await api.start_server()
    rt = build_runtime(settings, db)
    worker = create_worker(settings, rt)
    task = asyncio.create_task(worker.async_run(), name="console-create-worker")
    try:
        yield api
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await handlers.close(rt)
        await rt.signal.close()
        if rt.signal.redis is not None:
            await rt.signal.redis.aclose()
        await api.close()
        await sim.close()


async def test_a_clerk_creates_a_delivery_by_hand_fixes_a_mistake_and_prints_its_label(
    desktop_page: Any, pipeline: TestClient, db: Database
) -> None:
    page, api = desktop_page, pipeline
    clerk = await staff.create(db, "李秀英", "clerk", [MARKET])
    await page.goto(url(api, "/console"))
    await page.fill("#token", clerk.token)
    await page.click("#sign-in")
    await page.wait_for_selector("#count-created")

    await page.click("#nav-new")
    await page.wait_for_selector("#create-form")
    assert await page.locator("#f-pickup_start").is_hidden()  # a delivery: no pickup window to fill in
    await page.check("#kind-intake")
    assert await page.locator("#f-pickup_start").is_visible() and await page.locator("#f-due_by").is_hidden()
    await page.screenshot(path=shot("console-create-intake"), full_page=True)
    await page.check("#kind-delivery")
    await page.fill("#f-window", "综合受理3号窗口")
    await page.fill("#f-case_no_0", "410106-2026-00388")
    await page.fill("#f-item_name_0", "食品经营许可证核发")
    await page.fill("#f-name", "张晓明")
    await page.fill("#f-phone", "1381234567")  # one digit short
    await page.fill("#f-province", "河南省")
    await page.fill("#f-city", "郑州市")
    await page.fill("#f-district", "上街区")
    await page.fill("#f-address", "济源路12号")
    await page.check("#f-verification_code")
    await page.screenshot(path=shot("console-create-form"), full_page=True)
    await page.click("#create-submit")

    await page.wait_for_selector("#error-phone")
    assert "11 位手机号码" in await page.inner_text("#error-phone")
    assert await page.input_value("#f-address") == "济源路12号"  # nothing typed is lost
    assert await page.input_value("#f-item_name_0") == "食品经营许可证核发"
    assert await page.is_checked("#f-verification_code")
    await page.screenshot(path=shot("console-create-error"), full_page=True)

    await page.fill("#f-phone", "13812345678")
    await page.click("#create-submit")
    await page.wait_for_selector("#verification-code")
    async with db.read() as conn:
        made = (await conn.execute(select(shipments).where(shipments.c.client_id == CONSOLE_CLIENT_ID))).one()
    assert await page.inner_text("#verification-code") == made.verification_code
    await page.screenshot(path=shot("console-create-done"), full_page=True)

    # The worker orders at the simulator; the page's own script offers the label as soon as the waybill exists.
    await page.wait_for_selector("#label-print", state="visible", timeout=30_000)
    async with db.read() as conn:
        waybill = (await conn.execute(select(shipments.c.waybill_no).where(shipments.c.id == made.id))).scalar_one()
    assert waybill and await page.inner_text("#label-waybill") == waybill
    assert await page.inner_text("#created-status") == "已通知邮政，等待揽收"
    await page.screenshot(path=shot("console-create-label"), full_page=True)
    href = await page.get_attribute("#label-print", "href")
    label = await page.request.get(url(api, str(href)))  # the browser's own session cookie
    assert label.status == 200 and label.headers["content-type"] == "application/pdf"
    assert (await label.body()).startswith(b"%PDF")

    await page.click("#shipment-link")
    await page.wait_for_selector("#facts")
    assert made.verification_code not in await page.inner_text("#facts")  # shown once, never again
    assert await page.locator("#label-print").is_visible()
    await page.screenshot(path=shot("console-create-shipment"), full_page=True)
