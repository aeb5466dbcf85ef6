"""What keeping the 公示 figures costs the create path and the pipeline: each with and without, same run.

    .venv/bin/python benchmarks/gongshi_cost.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--seconds 10] [--rounds 3] [--refresh-every 10] [-n 2000]

"without": the schema minus migration 0015's two indexes, no refresh; "indexes": with them, no refresh;
"with": the indexes, and a process
running ``logistics.gongshi.refresh`` every ``--refresh-every`` seconds (the worker's default is 30, so the
default 10 overstates the refresh's share threefold). The two servers take turns, a window each (benchmarks/api.py's
load generator and figures), so the shared machine's slow spells fall on both alike. Goal (issue 19): keeping the
figures costs at most 5 % of create throughput and of the pipeline's rate. The refresh's durations are printed too.

The pipeline (API accept → `ordered`, benchmarks/pipeline.py's processes and measurement, label PDFs included):
one simulator, API and worker; windows of ``-n`` shipments in turn, the refresh switched off and on. It runs in
the worker's process, as in production, at once when switched on and then every ``--refresh-every`` seconds, so
a short window gets one refresh: more often than the worker's 30 s. The partial indexes cover no row written on
the way to `ordered`, so the pipeline's "without" has them too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from logistics.config import fresh_carrier_secrets, normalise_database_url  # noqa: E402
from logistics.gongshi import refresh  # noqa: E402


def _benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


api, pipeline = _benchmark("api"), _benchmark("pipeline")

# without: no 0015 indexes, no refresh; indexes: the indexes only; with: the indexes and a refresh running.
VARIANTS = ("without", "indexes", "with")
INDEXES = ("ix_shipment_events_gongshi_recorded", "ix_shipment_events_gongshi_ended")

REFRESHER = """
import asyncio, sys, time
from datetime import UTC, datetime
from logistics.gongshi import refresh
from logistics.storage.db import Database

async def main(url, every):
    db = Database(url)
    while True:
        started = time.perf_counter()
        done = await refresh(db, datetime.now(UTC))
        print(f"REFRESH {1000 * (time.perf_counter() - started):.1f} ms {len(done.months)} months", flush=True)
        await asyncio.sleep(every)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""

# The service's worker with its own 公示 loop made a no-op, and the refresh run instead behind a switch (a file):
# at once when the switch appears, then every EVERY seconds while it is there, whatever the queue holds.
GATED_WORKER = """
import asyncio, sys, time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from logistics.cli import main
from logistics.jobs import worker
from logistics.storage.db import Database

switch, every = Path(sys.argv[1]), float(sys.argv[2])
refresh, run_forever = worker.refresh_gongshi, worker.run_forever

async def refresh_while_on(db):
    last = float("-inf")
    while True:
        if switch.exists() and time.monotonic() - last >= every:
            last = time.monotonic()
            done = await refresh(db, datetime.now(UTC))
            print(f"REFRESH {1000 * (time.monotonic() - last):.1f} ms {len(done.months)} months", flush=True)
        await asyncio.sleep(0.05)

async def with_refresh(settings):
    task = asyncio.create_task(refresh_while_on(Database(settings.resolved_database_url)))
    try:
        await run_forever(settings)
    finally:
        task.cancel()

async def no_refresh(db, now):
    return SimpleNamespace(cells=0)

worker.refresh_gongshi, worker.run_forever = no_refresh, with_refresh
sys.exit(main(["worker"]))
"""


async def drop_indexes(url: str) -> None:
    engine = create_async_engine(normalise_database_url(url))
    async with engine.begin() as conn:
        for name in INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    await engine.dispose()


async def pipeline_windows(database_url: str, args: argparse.Namespace, data_dir: Path) -> dict[str, list[float]]:
    """Seconds each window of ``args.n`` shipments took from the first POST to all `ordered`, per variant."""
    switch = data_dir / "refresh-on"
    worker = ("-c", GATED_WORKER, str(switch), str(args.refresh_every))
    pipe = pipeline.Pipeline(database_url, args.redis, data_dir, 64, worker=worker)
    windows: dict[str, list[float]] = {"without": [], "with": []}
    try:
        with pipeline.processes() as running:
            await pipe.start(running)
            async with aiohttp.ClientSession(trust_env=False, connector=aiohttp.TCPConnector(limit=64)) as session:
                await pipe.latency(session, 0)
                await pipe.run(session, min(200, args.n))  # warm-up: connections and caches
                await refresh(pipe.db, datetime.now(UTC))  # the first refresh computes every month: no window's
                await pipe.settle()
                for round_no in range(args.rounds):
                    for variant in ("without", "with") if round_no % 2 == 0 else ("with", "without"):
                        if variant == "with":
                            switch.touch()
                        windows[variant].append((await pipe.run(session, args.n))["seconds"])
                        switch.unlink(missing_ok=True)
                        await pipe.settle()  # the window's label PDFs, outside every window
    finally:
        await pipe.db.dispose()
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("LOGISTICS_TEST_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("LOGISTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--refresh-every", type=float, default=10.0)
    parser.add_argument("-n", type=int, default=2000, help="shipments per pipeline window")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    targets = [] if args.skip_sqlite else [("sqlite", None)]
    targets += [("postgresql", args.postgres)] if args.postgres else []
    for name, server_url in targets:
        load_before = os.getloadavg()
        with contextlib.ExitStack() as stack:
            servers: dict[str, tuple[int, str]] = {}
            refreshers: list[tuple[subprocess.Popen[str], Path]] = []
            for variant in VARIANTS:
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                env = {
                    **os.environ,
                    "LOGISTICS_DATA_DIR": tmp,
                    "LOGISTICS_REDIS_URL": args.redis,
                    "LOGISTICS_QUEUE_NAME": f"bench:{os.getpid()}:{name}:{variant}",
                    "LOGISTICS_LOG_LEVEL": "WARNING",
                    **fresh_carrier_secrets(),
                }
                url = f"sqlite+aiosqlite:///{tmp}/logistics.db"
                if server_url:
                    url = asyncio.run(api.fresh_database(server_url, f"logistics_bench_gongshi_{variant}"))
                    env["LOGISTICS_DATABASE_URL"] = url
                key = api.prepare(env)
                if variant == "without":
                    asyncio.run(drop_indexes(url))
                elif variant == "with":
                    log = Path(tmp) / "refresh.log"
                    out = stack.enter_context(log.open("w"))
                    proc = subprocess.Popen(
                        [sys.executable, "-c", REFRESHER, normalise_database_url(url), str(args.refresh_every)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                    stack.callback(api._stop, proc)
                    refreshers.append((proc, log))
                port = api.free_port()
                stack.callback(api._stop, api.start_logistics(env, port))
                servers[variant] = (port, key)
            for port, key in servers.values():
                api.run_wrk(port, key, 2, args.connections)
            windows: dict[str, list[dict[str, Any]]] = {v: [] for v in servers}
            order = list(servers)
            for round_no in range(args.rounds):
                # Each round starts with another variant: the first window of a round runs on a quieter machine.
                for variant in order[round_no % len(order) :] + order[: round_no % len(order)]:
                    port, key = servers[variant]
                    windows[variant].append(
                        {**api.run_wrk(port, key, args.seconds, args.connections), "seconds": args.seconds}
                    )
            results = {v: api.merge(w) for v, w in windows.items()}
            refresh_lines = [
                line for _, log in refreshers for line in log.read_text().splitlines() if "REFRESH" in line
            ]
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/pipeline.db"
            if server_url:
                url = asyncio.run(api.fresh_database(server_url, "logistics_bench_gongshi_pipeline"))
            pipe_windows = asyncio.run(pipeline_windows(url, args, Path(tmp)))
            pipe_log = (Path(tmp) / "pipeline.log").read_text().splitlines()
        pipe_refreshes = [line for line in pipe_log if line.startswith("REFRESH")]
        rates = {v: args.n * len(ws) / sum(ws) for v, ws in pipe_windows.items()}
        base = results["without"]["rps"]
        print(f"\n{name}: {args.rounds} × {args.seconds}s windows in turn, {args.connections} connections")
        for variant, r in results.items():
            print(
                f"  create {variant:<8}{r['rps']:>9.0f} req/s {r['rps'] / base:>7.1%}  p99 {r['p99']:.1f} ms  "
                f"errors {r['non2xx']}"
            )
        print(
            "  per window: " + "; ".join(f"{v} " + " ".join(f"{w['rps']:.0f}" for w in ws) for v, ws in windows.items())
        )
        print(
            f"  refreshes (every {args.refresh_every:g}s): "
            + ", ".join(line.split(" ", 1)[1] for line in refresh_lines)
        )
        print(f"  pipeline, {args.rounds} × 2 windows of {args.n} shipments in turn, accept → ordered:")
        for variant, rate in rates.items():
            print(f"  pipeline {variant:<8}{rate:>7.0f} shipments/s {rate / rates['without']:>7.1%}")
        print(
            "  per window (shipments/s): "
            + "; ".join(f"{v} " + " ".join(f"{args.n / s:.0f}" for s in ws) for v, ws in pipe_windows.items())
        )
        print(
            f"  {len(pipe_refreshes)} refreshes in the worker (at once when on, then every {args.refresh_every:g}s): "
            + ", ".join(line.split(" ", 1)[1] for line in pipe_refreshes)
        )
        load = " ".join(f"{x:.2f}" for x in load_before) + " → " + " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average {load}")


if __name__ == "__main__":
    main()
