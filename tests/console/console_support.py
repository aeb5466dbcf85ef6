"""Helpers for the console tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import text, update

from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import auth, csrf_of, delivery_body, sign_in  # noqa: F401  (the console tests import them from here)

MARKET = "上街区市场监督管理局"
CIVIL = "上街区民政局"
TAX = "二七区税务局"


async def create(api: TestClient, creds: clients.Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def move(
    db: Database, shipment_id: str, *statuses: str, waybill: str | None = None, occurred_at: datetime | None = None
) -> None:
    async with db.write() as conn:
        if waybill is not None:
            await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(waybill_no=waybill))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(
                conn,
                row,
                status=status,
                source="carrier_push",
                occurred_at=occurred_at,
                carrier_text=None,
                location="郑州市",
            )


async def explain(db: Database, statement: str, parameters: Any = None) -> str:
    """The database's plan for ``statement``; on PostgreSQL with sequential scans priced out (a test's few rows
    are cheaper to read whole, a real department's are not)."""
    async with db.write() as conn:
        if db.is_sqlite:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        else:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(r[-1]) for r in rows)
