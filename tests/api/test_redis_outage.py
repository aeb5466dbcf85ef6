"""A create while Redis is down is still answered 201, and the worker picks the work up once Redis is back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from carriers.simulator import SimConfig
from carriers.simulator import create_app as create_sim
from logistics.accounts.clients import Credentials
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.tables import outbox, shipments
from logistics.jobs.worker import run_forever
from logistics.redis.private_server import PrivateRedis
from logistics.storage.db import Database

from support import auth, delivery_body, eventually


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_create_survives_a_redis_outage_and_the_work_resumes(
    settings: Settings, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path / "own-redis")
    settings.redis_url = redis.start()
    sim = TestServer(create_sim(SimConfig(sender_no=settings.ems_sender_no, authorization=settings.ems_authorization,
                                          sign_key=settings.ems_sign_key)), port=_free_port())
    await sim.start_server()
    settings.ems_base_url = str(sim.make_url("")).rstrip("/")
    api = TestClient(TestServer(create_app(settings, db=db)))
    await api.start_server()
    worker: asyncio.Task[None] | None = None
    try:
        redis.stop()
        resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
        assert resp.status == 201
        shipment_id = (await resp.json())["id"]
        async with db.read() as conn:
            queued = (await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == shipment_id))).all()
        assert [r.kind for r in queued] == ["order"]

        worker = asyncio.create_task(run_forever(settings))  # keeps retrying while Redis is down
        redis.start()

        async def ordered() -> str | None:
            async with db.read() as conn:
                row = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).one()
            return row.waybill_no if row.status == "ordered" else None

        waybill = await eventually(ordered, timeout=30)
        assert len(waybill) == 13 and waybill.isdigit()
    finally:
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await api.close()
        await sim.close()
        redis.stop()
