"""Helpers for the 好差评 tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import follow_ups, ratings, shipments
from logistics.storage.db import Database

from support import auth, delivery_body, intake_body

MARKET = "上街区市场监督管理局"
TAX = "二七区税务局"
WAYBILL = "1295780512499"
ROUTE = ("ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")


async def delivered(
    api: TestClient, db: Database, creds: clients.Credentials, *, kind: str = "delivery", **overrides: Any
) -> dict[str, Any]:
    """A shipment carried all the way: at the applicant's door (a delivery) or at the hall (an intake)."""
    body = intake_body(**overrides) if kind == "intake" else delivery_body(**overrides)
    resp = await api.post("/v1/shipments", json=body, headers=auth(creds))
    assert resp.status == 201, await resp.text()
    shipment = await resp.json()
    await move(db, shipment["id"], *ROUTE)
    return shipment


async def move(db: Database, shipment_id: str, *statuses: str) -> None:
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=WAYBILL))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_text=None, location="郑州市")


async def rate(api: TestClient, code: str, level: int | str, comment: str = "", **headers: str) -> ClientResponse:
    return await api.post(
        f"/t/{code}/rating", data={"level": str(level), "comment": comment}, allow_redirects=False, headers=headers
    )


async def stored_ratings(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(ratings).order_by(ratings.c.id))]


async def stored_follow_ups(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(follow_ups).order_by(follow_ups.c.id))]
