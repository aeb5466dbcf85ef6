"""Webhook deliveries through the app (outbox task, per-shipment ordering, database bookkeeping, signing) against a
bare aiohttp POST loop with the same concurrency, measured in the same run.

    .venv/bin/python benchmarks/webhooks_app.py [--shipments 500] [--events 4] [--concurrency 32]
                                                [--database-url postgresql://postgres@127.0.0.1:5432/bench]

The receiver runs in a child process and verifies nothing. The app side runs ``runner.process_due`` in-process,
which is what a worker's arq job calls, with its production batch size: claim a batch of due tasks (one per
shipment), deliver each shipment's webhooks in order, record every attempt. The sender's connection limit is
the concurrency, so at most that many POSTs are in flight, as in the bare loop. Status changes are made before
the clock starts; the figure is the cost of delivering them. A PostgreSQL URL (empty database) measures the
production setup; the default is a temporary SQLite file, whose single writer bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local_receiver import receiving

from logistics.accounts import clients
from logistics.config import Settings, normalise_database_url
from logistics.domain import ids
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import shipment_cases, shipment_events, shipments, utcnow, webhook_deliveries
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime, process_due
from logistics.redis.queue import WorkSignal
from logistics.storage import migrate
from logistics.storage.db import Database

JOURNEY = ("picked_up", "in_transit", "out_for_delivery", "delivered")


async def _make_shipments(db: Database, client_id: str, count: int, events: int) -> None:
    """Ordered delivery shipments, then their carrier events: this writes the deliveries to be measured."""
    now = utcnow()
    rows, cases, firsts = [], [], []
    for n in range(count):
        sid = ids.shipment_id()
        rows.append(
            {
                "id": sid,
                "client_id": client_id,
                "kind": "delivery",
                "status": "ordered",
                "department": "上街区市场监督管理局",
                "window": "综合受理3号窗口",
                "tracking_code": ids.tracking_code(),
                "carrier": "ems",
                "waybill_no": f"11{n:011d}",
                "last_sequence": 1,
                "extra": {"approval_system": "sj-spxt"},
                "created_at": now,
                "updated_at": now,
            }
        )
        cases.append(
            {"shipment_id": sid, "position": 0, "case_no": f"410106-2018-{n:05d}", "item_name": "食品经营许可证核发"}
        )
        firsts.append(
            {
                "shipment_id": sid,
                "sequence": 1,
                "status": "ordered",
                "occurred_at": now,
                "recorded_at": now,
                "source": "system",
            }
        )
    async with db.write() as conn:
        await conn.execute(shipments.insert(), rows)
        await conn.execute(shipment_cases.insert(), cases)
        await conn.execute(shipment_events.insert(), firsts)
    for status in JOURNEY[:events]:
        for row in rows:
            async with db.write() as conn:
                current = await lock_shipment(conn, row["id"])
                assert current is not None
                await apply_event(conn, current, status=status, source="carrier_push", carrier_text="已收寄")


async def _bare(url: str, bodies: int, concurrency: int) -> float:
    body = orjson.dumps({"type": "shipment.picked_up", "data": {"id": "shp_x", "sequence": 2}})
    counter = iter(range(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in counter:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return bodies / (time.perf_counter() - started)


async def bench(url: str, database_url: str, n_shipments: int, events: int, concurrency: int) -> None:
    await migrate.upgrade_async(database_url)
    db = Database(database_url, pool_size=max(10, concurrency))
    settings = Settings(database_url=database_url, webhook_allow_loopback=True, log_format="text")
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    webhook_delivery.setup(rt)
    rt.services[webhook_delivery.SENDER]._limit = concurrency
    creds = await clients.create(db, f"上街区行政审批系统-{ids.ulid()[-6:]}", url)
    await _make_shipments(db, creds.id, n_shipments, events)
    total = n_shipments * events
    try:
        bare_rate = await _bare(url, total, concurrency)
        started = time.perf_counter()
        ran = 0
        while ran < n_shipments:
            ran += await process_due(rt)
        app_rate = total / (time.perf_counter() - started)
        # Everything must really be delivered, or the rate means nothing.
        async with db.read() as conn:
            delivered = (
                await conn.execute(
                    select(func.count()).where(
                        webhook_deliveries.c.client_id == creds.id, webhook_deliveries.c.status == "delivered"
                    )
                )
            ).scalar_one()
        bare_again = await _bare(url, total, concurrency)
    finally:
        await rt.services[webhook_delivery.SENDER].close()
        await db.dispose()
    best_bare = max(bare_rate, bare_again)
    ratio = app_rate / best_bare
    print(f"database               : {db.dialect}, {n_shipments} shipments x {events} status changes")
    print(f"bare aiohttp POST loop : {best_bare:8.0f} posts/s (concurrency {concurrency})")
    print(f"outbox + handler       : {app_rate:8.0f} deliveries/s ({delivered}/{total} delivered, in order)")
    print(f"ratio                  : {ratio:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shipments", type=int, default=500)
    parser.add_argument("--events", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()

    with receiving("/hook") as hook, tempfile.TemporaryDirectory() as tmp:
        url = normalise_database_url(args.database_url or f"sqlite:///{tmp}/bench.db")
        asyncio.run(bench(hook, url, args.shipments, args.events, args.concurrency))


if __name__ == "__main__":
    main()
