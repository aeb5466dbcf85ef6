"""Helpers for the console tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import auth, delivery_body

MARKET = "上街区市场监督管理局"
CIVIL = "上街区民政局"
TAX = "二七区税务局"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def sign_in(api: TestClient, token: str) -> str:
    """Sign in through the form; returns the session's CSRF token (read from the page it lands on)."""
    form = await api.get("/console/sign-in")
    resp = await api.post("/console/sign-in", data={"csrf": csrf_of(await form.text()), "token": token})
    assert resp.status == 200 and resp.url.path == "/console/today", await resp.text()
    return csrf_of(await resp.text())


async def create(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def move(db: Database, shipment_id: str, *statuses: str, waybill: str | None = None) -> None:
    async with db.write() as conn:
        if waybill is not None:
            await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=waybill))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text=None, location="郑州市")
