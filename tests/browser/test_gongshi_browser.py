"""/gongshi on a phone (390×844) in real headless Chromium: the tables fit, the month links work, no script
runs. The screenshot is kept in test-artifacts/gongshi-phone.png."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from browser_support import shot, url

from logistics.accounts import clients
from logistics.gongshi import figures, refresh, views
from logistics.storage.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gongshi"))
from gongshi_support import History, Step, write

pytestmark = pytest.mark.browser
DEPARTMENTS = {
    "郑州市上街区市场监督管理局": 40,
    "郑州市上街区民政局": 12,
    "郑州市上街区人力资源和社会保障局": 9,
    "郑州市上街区税务局": 3,
}


def history(department: str, created: datetime, n: int) -> History:
    steps = [Step("ordered", created + timedelta(minutes=20)), Step("picked_up", created + timedelta(hours=3))]
    if n % 9 == 4:
        steps += [Step("returning", created + timedelta(hours=30)), Step("returned", created + timedelta(hours=60))]
    elif n % 5 != 3:
        steps.append(Step("delivered", created + timedelta(hours=18 + (n * 7) % 40)))
    due = (created + timedelta(hours=8)).date() + timedelta(days=2 + n % 3)
    complaint = [(created + timedelta(hours=5), created + timedelta(hours=50))] if n % 6 == 0 else []
    return History(department, "intake" if n % 4 == 0 else "delivery", created, due, steps, complaint)


async def test_the_gongshi_page_reads_well_on_a_phone(page: Any, api: TestClient, db: Database) -> None:
    client = await clients.create(db, "上街区行政审批系统")
    now = datetime.now(UTC)
    last_month = figures.month_bounds(figures.shift_month(figures.month_of(now), -1))[0]
    hs = [
        history(department, last_month + timedelta(hours=7 + 13 * n), n)
        for department, count in DEPARTMENTS.items()
        for n in range(count)
    ]
    await write(db, client.id, hs)
    await refresh(db, now)
    await views.reload(api.app)  # what the background task does within a second
    month = figures.shift_month(figures.month_of(now), -1)
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    await page.goto(url(api, "/gongshi"))
    await page.get_by_role("link", name=f"{int(month[:4])}年{int(month[5:])}月").click()
    await page.wait_for_url(f"**/gongshi?month={month}")
    assert await page.locator("table").count() == 3
    assert await page.locator("tr.total").first.inner_text() != ""
    assert "数据更新于" in await page.locator("main").inner_text()
    # The page itself never scrolls sideways; a wide table scrolls inside its card.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=shot("gongshi-phone"), full_page=True)
    assert scripts == []
