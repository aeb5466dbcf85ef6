"""The 公示 figures on a big database: the refresh's time, and /gongshi.json against bare aiohttp, same run.

    .venv/bin/python -m benchmarks.seed --database-url URL --shipments 1000000 --months 24 --departments 30
    .venv/bin/python benchmarks/gongshi.py --database-url URL [--connections 64] [--seconds 5] [--rounds 3]

First a full refresh (every month shown, as the first run after deploying), then a normal one (the current
month, and months touched since). Then a real API process serves /gongshi.json (one process, its own private
Redis), and a bare aiohttp process serves the same bytes; wrk GETs each in turn, a window at a time, so the
shared machine's slow spells fall on both alike (benchmarks/api.py's load generator and figures).
Goals (issue 19): p99 ≤ 20 ms at 64 connections on PostgreSQL with 1,000,000 shipments; ≤ 50 ms on SQLite
with 200,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]  # the script folder's labels.py would shadow the package

from sqlalchemy import func, select  # noqa: E402

from benchmarks.api import (  # noqa: E402
    BARE_SERVER,
    free_port,
    merge,
    read_only_env,
    run_wrk,
    start_logistics,
    wait_ready,
)
from logistics.config import normalise_database_url  # noqa: E402
from logistics.domain.tables import shipments  # noqa: E402
from logistics.gongshi import refresh  # noqa: E402
from logistics.storage import migrate  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

PATH = "/gongshi.json"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def refreshes(url: str) -> tuple[int, list[str]]:
    await migrate.upgrade_async(url)
    db = Database(url)
    lines = []
    try:
        async with db.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(shipments))).scalar_one()
        for label, full in (("full (first run)", True), ("normal", False), ("normal, again", False)):
            started = time.perf_counter()
            done = await refresh(db, datetime.now(UTC), full=full)
            seconds = time.perf_counter() - started
            lines.append(
                f"refresh {label:<17} {seconds * 1000:>9.0f} ms  {len(done.months):>2} months, "
                f"{done.cells} cells; load {load_average()}"
            )
    finally:
        await db.dispose()
    return total, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database seeded by benchmarks/seed.py")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=5, help="length of one window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per server, taken in turn")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("benchmarks/gongshi.py needs wrk: apt-get install wrk")
    url = normalise_database_url(args.database_url)
    total, refreshed = asyncio.run(refreshes(url))
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{backend}, {total:,} shipments")
    print("\n".join(refreshed))
    with tempfile.TemporaryDirectory() as tmp:
        env = read_only_env(tmp, url)
        ports = {"logistics": free_port(), "bare aiohttp": free_port()}
        api = start_logistics(env, ports["logistics"])
        bare = None
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{ports['logistics']}{PATH}", timeout=10).read()
            served = Path(tmp) / "gongshi.json"
            served.write_bytes(body)
            bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(ports["bare aiohttp"]), str(served)])
            wait_ready(ports["bare aiohttp"])
            windows: dict[str, list[dict[str, object]]] = {name: [] for name in ports}
            loads = [load_average()]
            for port in ports.values():
                run_wrk(port, "", 2, args.connections, get=PATH)  # warm-up
            for _ in range(args.rounds):
                for name, port in ports.items():
                    window = run_wrk(port, "", args.seconds, args.connections, get=PATH)
                    window["seconds"] = args.seconds
                    windows[name].append(window)
            loads.append(load_average())
        finally:
            for proc in (api, bare):
                if proc is not None:
                    proc.terminate()
                    proc.wait()
    goal = 50 if backend == "SQLite" else 20
    print(
        f"\nGET {PATH} ({len(body):,} bytes), {args.connections} connections, wrk -t2, one server process each; "
        f"{args.rounds} rounds of {args.seconds} s; load {loads[0]} → {loads[1]}"
    )
    print(f"{'server':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}  goal p99 ≤ {goal} ms")
    results = {name: merge(ws) for name, ws in windows.items()}
    for name, r in results.items():
        verdict = ("met" if r["p99"] <= goal else "NOT met") if name == "logistics" else ""
        print(f"{name:<14}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['non2xx']:>9}  {verdict}")
    share = results["logistics"]["rps"] / results["bare aiohttp"]["rps"]
    print(f"logistics serves {share:.0%} of bare aiohttp's requests per second")


if __name__ == "__main__":
    main()
