"""Helpers for the people's-side tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import scans, shipment_events, shipments
from logistics.storage.db import Database

from support import auth, delivery_body

MARKET_BUREAU = "上街区市场监督管理局"
WAYBILL = "1295780512499"


async def create_shipment(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def advance(
    db: Database, shipment_id: str, *statuses: str, occurred_at: datetime | None = None, **fields: Any
) -> None:
    """Move a shipment along as the carrier would (push events), optionally setting columns like waybill_no."""
    async with db.write() as conn:
        if fields:
            await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(**fields))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", occurred_at=occurred_at)


async def ordered(
    api: TestClient, db: Database, creds: clients.Credentials, *, waybill: str = WAYBILL, **overrides: Any
) -> dict[str, Any]:
    """A shipment EMS has accepted: it has its waybill and waits for pickup."""
    created = await create_shipment(api, creds, **overrides)
    await advance(db, created["id"], "ordered", waybill_no=waybill)
    return {**created, "waybill_no": waybill, "status": "ordered"}


async def status_of(db: Database, shipment_id: str) -> str:
    async with db.read() as conn:
        return (await conn.execute(select(shipments.c.status).where(shipments.c.id == shipment_id))).scalar_one()


async def events_of(db: Database, shipment_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(shipment_events)
            .where(shipment_events.c.shipment_id == shipment_id)
            .order_by(shipment_events.c.sequence)
        )
        return [dict(r._mapping) for r in rows]


async def scan_rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(scans).order_by(scans.c.id))]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scan(code: str, action: str, *, ago: timedelta = timedelta(0), **extra: Any) -> dict[str, Any]:
    """One scan as the staff page sends it: a device-made scan_id and the phone's clock."""
    return {
        "scan_id": f"dev-{uuid.uuid4().hex}",
        "code": code,
        "action": action,
        "scanned_at": (datetime.now(UTC) - ago).isoformat(),
        "location": "郑州市上街区投递部",
        **extra,
    }
