"""POST /v1/labels with 1,000 shipments → one PDF, against the bare library rendering the same labels, same run.

    .venv/bin/python benchmarks/labels_api.py [--n 1000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                              [--redis redis://127.0.0.1:6379/0]

The API runs in-process over real HTTP (aiohttp's test server) on a fresh SQLite file, or on a fresh PostgreSQL
database with --postgres. What the endpoint adds over ``labels.render_pdf`` is authentication, loading the rows
and cases, storing the first print times (first call only) and the transfer. Goal (issue 4): 1,000 labels in one
PDF in ≤ 7 s; the ratio to the bare library shows the app's share. The body is streamed as it is drawn, so the
first byte arrives long before the last: both times are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The script folder holds labels.py and webhooks.py, which would shadow the packages of those names.
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from benchmarks.scratch_db import scratch_settings  # noqa: E402
from labels import render_pdf  # noqa: E402
from labels.text import load_face  # noqa: E402
from logistics.accounts import clients  # noqa: E402
from logistics.api.app import create_app  # noqa: E402
from logistics.config import Settings  # noqa: E402
from logistics.domain.tables import shipments  # noqa: E402
from logistics.label_store import label_data, load_cases  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

from support import auth, delivery_body  # noqa: E402


async def _seed(api: TestClient, db: Database, creds: clients.Credentials, n: int) -> list[str]:
    async def one(_: int) -> str:
        resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(creds))
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    ids: list[str] = []
    for start in range(0, n, 50):
        ids += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 50))))
    # What the order task stores on success; the carrier is not what is measured here.
    async with db.write() as conn:
        for k, sid in enumerate(ids):
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == sid)
                .values(
                    status="ordered",
                    waybill_no=f"1295{k:09d}",
                    route_code="451-A07",
                    destination_code="450041",
                    destination_name="郑州上街",
                )
            )
    return ids


async def _bare(db: Database, settings: Settings, ids: list[str]) -> tuple[float, int]:
    async with db.read() as conn:
        rows = {r.id: dict(r._mapping) for r in await conn.execute(select(shipments).where(shipments.c.id.in_(ids)))}
        cases = await load_cases(conn, ids)
    labels = [label_data(rows[i], cases[i], settings.base_url, rows[i]["label_printed_at"]) for i in ids]
    started = time.perf_counter()
    body = render_pdf(labels, "100x150")
    return time.perf_counter() - started, len(body)


async def main(args: argparse.Namespace) -> None:
    load_face()  # once per process either way; not part of either figure
    async with scratch_settings(args.postgres, args.redis, "bench_labels", label_batch_max=max(args.n, 1)) as settings:
        db = Database(settings.resolved_database_url)
        api = TestClient(TestServer(create_app(settings, db=db)))
        await api.start_server()
        try:
            creds = await clients.create(db, "上街区行政审批系统")
            ids = await _seed(api, db, creds, args.n)
            timings: list[tuple[str, float, float, int]] = []
            for name in ("first call (stores print times)", "second call"):
                started = time.perf_counter()
                resp = await api.post("/v1/labels", json={"shipment_ids": ids}, headers=auth(creds))
                first = await resp.content.readany()
                first_byte = time.perf_counter() - started
                body = first + await resp.read()
                assert resp.status == 200, body[:300]
                timings.append((name, first_byte, time.perf_counter() - started, len(body)))
            bare_s, bare_bytes = await _bare(db, settings, ids)
        finally:
            await api.close()
            await db.dispose()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{args.n} labels, one PDF (100x150), {backend}")
    print(f"labels.render_pdf, same labels:       {bare_s:6.2f} s  ({bare_bytes / 2**20:.1f} MiB)   <- baseline")
    for name, first_byte, seconds, size in timings:
        print(
            f"POST /v1/labels, {name:<32} {seconds:6.2f} s  ({size / 2**20:.1f} MiB)   ratio {seconds / bare_s:.2f}"
            f"   first byte after {first_byte:.2f} s   (goal ≤ 7 s for 1,000)"
        )


def _args() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="labels in the batch")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server; a fresh database is made and dropped")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args()))
