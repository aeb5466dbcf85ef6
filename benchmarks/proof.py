"""The proof of service (送达回证) against the label, same run: rendering one PDF, and serving a stored one.

    .venv/bin/python benchmarks/proof.py [--rounds 7] [--n 60] [--requests 2000] [--concurrency 16]
                                         [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                         [--redis redis://127.0.0.1:6379/0]

Goals (issue 17): rendering a proof PDF costs at most 2 × rendering a label PDF; serving a stored proof through
the API runs at least 50 % of the rate of serving a stored label.

1. Rendering: ``logistics.proof_document.render`` of a realistic proof (a failed attempt, eight carrier events)
   against ``labels.render_pdf`` of one 100x150 label, each ``--n`` times per round, the two alternating over
   ``--rounds`` rounds; the median round of each is compared.
2. Serving: the API in-process over real HTTP (aiohttp's test server) on a fresh SQLite file, or a fresh
   PostgreSQL database with --postgres. 20 delivered shipments, each label and proof fetched once (rendered and
   stored), then ``GET …/label`` and ``GET …/proof`` with ``--concurrency`` requests in flight, alternating
   rounds of ``--requests``; the median rate of each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The script folder holds labels.py, which would shadow the package of that name.
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy import select  # noqa: E402

from benchmarks.scratch_db import scratch_settings  # noqa: E402
from labels import render_pdf  # noqa: E402
from labels.text import load_face  # noqa: E402
from logistics import proof_document  # noqa: E402
from logistics.accounts import clients  # noqa: E402
from logistics.api.app import create_app  # noqa: E402
from logistics.config import Settings  # noqa: E402
from logistics.domain.events import apply_event, lock_shipment  # noqa: E402
from logistics.domain.tables import shipments  # noqa: E402
from logistics.label_store import label_data, load_cases  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

from support import auth, delivery_body  # noqa: E402

SHIPMENTS = 20
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
JOURNEY = [
    ("203", "picked_up", "【郑州市上街区揽投部】已收寄,揽投员:刘洋 139****1234", "郑州市上街区揽投部"),
    ("954", "in_transit", "到达【郑州处理中心】", "郑州处理中心"),
    ("989", "in_transit", "离开【郑州处理中心】,下一站【郑州市上街区揽投部】", "郑州处理中心"),
    ("306", "in_transit", "到达【郑州市上街区揽投部】", "郑州市上街区揽投部"),
    ("702", "out_for_delivery", "【郑州市上街区揽投部】正在投递,投递员:王强 138****5678", "郑州市上街区揽投部"),
    ("705", "delivery_failed", "未妥投,原因:收件人不在指定地址,将再次投递", "郑州市上街区揽投部"),
    ("702", "out_for_delivery", "【郑州市上街区揽投部】正在投递,投递员:王强 138****5678", "郑州市上街区揽投部"),
    ("704", "delivered", "已签收,他人代收:家人,投递员:王强 138****5678", "郑州市上街区揽投部"),
]


async def _delivered(api: TestClient, db: Database, creds: clients.Credentials, k: int) -> str:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    sid = str((await resp.json())["id"])
    steps = [(None, "ordered", None, None), *JOURNEY]
    async with db.write() as conn:
        for n, (code, status, carrier_text, location) in enumerate(steps):
            row = await lock_shipment(conn, sid)
            assert row is not None
            await apply_event(
                conn,
                row,
                status=status,
                source="system" if code is None else "carrier_push",
                occurred_at=START + timedelta(hours=5 * n),
                carrier_code=code,
                carrier_text=carrier_text,
                location=location,
                updates={"waybill_no": f"1151{k:09d}", "destination_name": "郑州上街"} if code is None else None,
            )
    return sid


async def _render_inputs(db: Database, settings: Settings, sid: str) -> tuple[Any, dict[str, Any]]:
    async with db.read() as conn:
        row = dict((await conn.execute(select(shipments).where(shipments.c.id == sid))).one()._mapping)
        cases = await load_cases(conn, [sid])
    return label_data(row, cases[sid], settings.base_url, row["label_printed_at"]), row["proof"]


def _per_call(fn: Any, arg: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn(arg)
    return (time.perf_counter() - started) / n


def rendering(label: Any, facts: dict[str, Any], rounds: int, n: int) -> tuple[float, float]:
    """Median seconds per label PDF and per proof PDF, alternating rounds so both see the same machine."""
    _per_call(lambda lab: render_pdf([lab], "100x150"), label, 3)
    _per_call(proof_document.render, facts, 3)
    labels_s, proofs_s = [], []
    for _ in range(rounds):
        labels_s.append(_per_call(lambda lab: render_pdf([lab], "100x150"), label, n))
        proofs_s.append(_per_call(proof_document.render, facts, n))
    return statistics.median(labels_s), statistics.median(proofs_s)


async def _rate(api: TestClient, creds: clients.Credentials, paths: list[str], total: int, concurrency: int) -> float:
    headers = auth(creds)
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        k = w
        while done < total:
            done += 1
            resp = await api.get(paths[k % len(paths)], headers=headers)
            body = await resp.read()
            assert resp.status == 200 and body[:5] == b"%PDF-", (resp.status, body[:200])
            k += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return total / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    load_face()  # once per process either way; not part of either figure
    async with scratch_settings(args.postgres, args.redis, "bench_proof", access_log=False) as settings:
        db = Database(settings.resolved_database_url)
        api = TestClient(TestServer(create_app(settings, db=db)))
        await api.start_server()
        try:
            creds = await clients.create(db, "上街区行政审批系统")
            ids = [await _delivered(api, db, creds, k) for k in range(SHIPMENTS)]
            label_paths = [f"/v1/shipments/{sid}/label" for sid in ids]
            proof_paths = [f"/v1/shipments/{sid}/proof" for sid in ids]
            for path in label_paths + proof_paths:  # the first fetch renders and stores
                resp = await api.get(path, headers=auth(creds))
                assert resp.status == 200, await resp.text()
            label, facts = await _render_inputs(db, settings, ids[0])
            label_s, proof_s = await asyncio.to_thread(rendering, label, facts, args.rounds, args.n)
            label_rates, proof_rates = [], []
            for _ in range(args.rounds):
                label_rates.append(await _rate(api, creds, label_paths, args.requests, args.concurrency))
                proof_rates.append(await _rate(api, creds, proof_paths, args.requests, args.concurrency))
        finally:
            await api.close()
            await db.dispose()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    label_rate, proof_rate = statistics.median(label_rates), statistics.median(proof_rates)
    print(f"Proof of service vs label, same run ({backend}; medians of {args.rounds} alternating rounds)")
    print(f"render one label PDF (100x150):   {label_s * 1000:7.2f} ms   <- baseline")
    print(
        f"render one proof PDF (A4):        {proof_s * 1000:7.2f} ms   ratio {proof_s / label_s:.2f} × (goal ≤ 2 ×)"
    )
    print(f"GET stored label, {args.concurrency} in flight:   {label_rate:7.0f} req/s   <- baseline")
    print(
        f"GET stored proof, {args.concurrency} in flight:   {proof_rate:7.0f} req/s   "
        f"{proof_rate / label_rate:.0%} of the label's (goal ≥ 50 %)"
    )


def _args() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=60, help="renderings of each per round")
    parser.add_argument("--requests", type=int, default=2000, help="requests of each per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server; a fresh database is made and dropped")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args()))
