"""Helpers for the statement tests (a unique module name: test folders here are not packages): shipments handed
to the post at chosen instants — moved to ``picked_up`` with the carrier's time, as a push would — and the CSV read
back."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, update

from logistics.accounts import clients
from logistics.api.schemas import BEIJING
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipment_events, shipments
from logistics.storage.db import Database

from support import auth

MARKET = "上街区市场监督管理局"
CIVIL = "上街区民政局"
Make = Callable[..., Awaitable[str]]


def beijing(text: str) -> datetime:
    """``2026-10-31 23:30`` on a Beijing wall clock, as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


async def hand_over(db: Database, shipment_id: str, waybill: str, at: datetime) -> None:
    """The shipment, made a day before ``at``, is collected by the post at ``at`` (EMS 203 收寄)."""
    async with db.write() as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == shipment_id)
            .values(waybill_no=waybill, created_at=at - timedelta(days=1), status="ordered")
        )
        row = await lock_shipment(conn, shipment_id)
        assert row is not None
        await apply_event(
            conn, row, status="picked_up", source="carrier_push", occurred_at=at, carrier_code="203", location="郑州市"
        )


async def refused_pickup(db: Database, shipment_id: str, at: datetime) -> None:
    """A ``picked_up`` event the forward-only rule refused (kept for the record, never a hand-over)."""
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        assert row is not None
        await conn.execute(
            insert(shipment_events).values(
                shipment_id=shipment_id,
                sequence=row["last_sequence"] + 1,
                status="picked_up",
                occurred_at=at,
                recorded_at=at,
                source="carrier_push",
                carrier_code="203",
                refused=True,
            )
        )
        await conn.execute(
            update(shipments).where(shipments.c.id == shipment_id).values(last_sequence=row["last_sequence"] + 1)
        )


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode()), "the statement starts with a UTF-8 byte-order mark (Excel)"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


async def statement(
    api: TestClient, creds: clients.Credentials, month: str, department: str = MARKET
) -> list[list[str]]:
    resp = await api.get("/v1/statements", params={"department": department, "month": month}, headers=auth(creds))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    return read_csv(await resp.read())


def ids_of(rows: list[list[str]]) -> list[str]:
    return [r[5] for r in rows[1:]]


async def problem(resp: ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    return dict(await resp.json())
