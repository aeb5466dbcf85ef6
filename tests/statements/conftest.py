"""Fixtures of the statement tests: shipments created through the API and handed to the post when a test says."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from statement_support import CIVIL, MARKET, Make, beijing, hand_over

from logistics.accounts import clients, staff
from logistics.storage.db import Database

from support import auth, delivery_body, intake_body


@pytest.fixture
def make(api: TestClient, db: Database, hall: clients.Credentials) -> Make:
    """``await make(waybill, "2026-11-01 00:10", kind=…, creds=…, **body)`` → the id of a shipment handed to the
    post then (Beijing time); ``at=None`` leaves it waiting for the courier."""

    async def made(
        waybill: str | None,
        at: str | None,
        *,
        kind: str = "delivery",
        creds: clients.Credentials | None = None,
        **overrides: Any,
    ) -> str:
        body = delivery_body(**overrides) if kind == "delivery" else intake_body(**overrides)
        resp = await api.post("/v1/shipments", json=body, headers=auth(creds or hall))
        assert resp.status == 201, await resp.text()
        sid = str((await resp.json())["id"])
        if at is not None and waybill is not None:
            await hand_over(db, sid, waybill, beijing(at))
        return sid

    return made


@pytest.fixture
async def clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "李秀英", "clerk", [MARKET, CIVIL])
