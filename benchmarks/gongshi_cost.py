"""What keeping the 公示 figures costs the create path: create throughput with and without, same run.

    .venv/bin/python benchmarks/gongshi_cost.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--seconds 10] [--rounds 3] [--refresh-every 10]

"without": the schema minus migration 0015's two indexes, no refresh; "indexes": with them, no refresh;
"with": the indexes, and a process
running ``logistics.gongshi.refresh`` every ``--refresh-every`` seconds (the worker's default is 30, so the
default 10 overstates the refresh's share threefold). The two servers take turns, a window each (benchmarks/api.py's
load generator and figures), so the shared machine's slow spells fall on both alike. Goal (issue 19): keeping the
figures costs at most 5 % of create throughput. The refresh's own durations are printed too.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from logistics.config import fresh_carrier_secrets, normalise_database_url  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_api", ROOT / "benchmarks" / "api.py")
assert _spec is not None and _spec.loader is not None
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

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


async def drop_indexes(url: str) -> None:
    engine = create_async_engine(normalise_database_url(url))
    async with engine.begin() as conn:
        for name in INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("LOGISTICS_TEST_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("LOGISTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--refresh-every", type=float, default=10.0)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    targets = [] if args.skip_sqlite else [("sqlite", None)]
    targets += [("postgresql", args.postgres)] if args.postgres else []
    for name, server_url in targets:
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


if __name__ == "__main__":
    main()
