"""Create-shipment throughput and latency against a bare aiohttp JSON endpoint, same load generator, same run.

    .venv/bin/python benchmarks/api.py [--postgres postgresql://postgres@127.0.0.1:5432/test] [--rounds 3]

Needs `wrk` (Debian package `wrk`). Every server runs as one process, like the bare baseline. The figures
that matter are the ratios: this machine is shared and noisy, so absolute numbers move between runs.
Goals (issue 2): ≥ 40 % of bare on PostgreSQL with p99 ≤ 30 ms at 64 connections; ≥ 30 % on SQLite, zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The script folder holds labels.py and webhooks.py, which would shadow the packages of those names.
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from logistics.config import fresh_carrier_secrets, normalise_database_url  # noqa: E402

from support import delivery_body  # noqa: E402

BARE_SERVER = """
import sys
from aiohttp import web
import orjson

async def handle(request):
    body = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"id": "shp_x", "status": "pending", **body}), status=201,
                        content_type="application/json")

# GET /gongshi.json (benchmarks/gongshi.py) or /page (benchmarks/console.py): the bytes of the file named second,
# as they are
SERVED = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else b"{}"

async def served(request):
    return web.Response(body=SERVED, content_type="application/json")

async def page(request):
    return web.Response(body=SERVED, content_type="text/html", charset="utf-8")

app = web.Application()
app.router.add_post("/v1/shipments", handle)
app.router.add_get("/gongshi.json", served)
app.router.add_get("/page", page)
app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

QUANTILES_LUA = """
function done(summary, latency, requests)
  -- latency quantiles (microseconds), so that windows can be merged into one distribution
  for _, p in ipairs({50, 75, 90, 95, 97, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9}) do
    io.write(string.format("QUANTILE %g %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("QUANTILE 100 %d\\n", latency.max))  -- percentile(100) answers 0
end
"""
POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = [[%s]]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


def run_wrk(port: int, key: str, seconds: int, connections: int, get: str | None = None) -> dict[str, Any]:
    """Creates with ``key``'s credentials; or, with ``get`` (a path), GETs of that path."""
    script = "" if get is not None else POST_LUA % (key, json.dumps(delivery_body(), ensure_ascii=False))
    return run_wrk_script(f"http://127.0.0.1:{port}{get or '/v1/shipments'}", script + QUANTILES_LUA,
                          connections=connections, seconds=seconds)


def run_wrk_script(url: str, script: str, *, connections: int, seconds: float) -> dict[str, Any]:
    """wrk against ``url`` with a Lua ``script`` (ending with QUANTILES_LUA); its figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", path, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    quantiles = [(float(q), int(us) / 1000) for q, us in re.findall(r"^QUANTILE ([\d.]+) (\d+)$", out, re.M)]
    return {"rps": rps, "requests": total, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "", "p50": pct("50"), "p99": pct("99"),
            "quantiles": quantiles}


def percentile(windows: list[dict[str, Any]], p: float) -> float:
    """The p-th percentile (ms) of all the windows' requests together: the least latency that at least p % of
    them did not exceed, each window's share read from its quantiles (a step below the true share, so the
    answer errs high)."""

    def share(latency: float) -> float:
        return sum(w["requests"] * max((q for q, v in w["quantiles"] if v <= latency), default=0.0) / 100
                   for w in windows)

    total = sum(w["requests"] for w in windows)
    candidates = sorted({v for w in windows for _, v in w["quantiles"]})
    return next((v for v in candidates if share(v) >= p / 100 * total), float("nan"))


def start_logistics(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    # Its log lines go to a file, as in a deployment, and a pipe nobody reads would stop the server once full.
    with open(Path(env["LOGISTICS_DATA_DIR"]) / "api.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "logistics", "api"],
                                env={**env, "LOGISTICS_PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=log)
    wait_ready(port)
    return proc


def read_only_env(data_dir: str, database_url: str) -> dict[str, str]:
    """An API process's environment for a benchmark of pages on a seeded database: quiet logs, no access log,
    a private Redis of its own."""
    env = {
        **os.environ,
        "LOGISTICS_DATA_DIR": data_dir,
        "LOGISTICS_DATABASE_URL": database_url,
        "LOGISTICS_LOG_LEVEL": "WARNING",
        "LOGISTICS_ACCESS_LOG": "false",
        **fresh_carrier_secrets(),
    }
    env.pop("LOGISTICS_REDIS_URL", None)
    return env


def prepare(env: dict[str, str]) -> str:
    subprocess.run([sys.executable, "-m", "logistics", "migrate"], env=env, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-m", "logistics", "clients", "create", "--name", "压测审批系统", "--json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["api_key"]


async def fresh_database(server_url: str, name: str) -> str:
    """A database of the benchmark's own on the given server, so runs never touch anyone's data."""
    engine = create_async_engine(normalise_database_url(server_url), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def count_rows(url: str) -> tuple[int, int]:
    engine = create_async_engine(normalise_database_url(url))
    async with engine.connect() as conn:
        shipments = (await conn.execute(text("SELECT count(*) FROM shipments"))).scalar_one()
        tasks = (await conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'order'"))).scalar_one()
    await engine.dispose()
    return shipments, tasks


# The indexes the console reads by (0016, 0021, 0022); --index-cost also creates on a database without them, where the
# plain status index they replace is back: the same run, with and without (issue 18: ≤ 5 % of the create path).
CONSOLE_INDEXES = ("ix_shipments_status_department", "ix_shipments_department_moved", "ix_shipments_undecided",
                   "ix_shipments_applicant_phone", "ix_shipments_applicant_name")


async def without_console_indexes(url: str) -> None:
    engine = create_async_engine(normalise_database_url(url))
    async with engine.begin() as conn:
        for name in CONSOLE_INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        await conn.execute(text("CREATE INDEX IF NOT EXISTS ix_shipments_status ON shipments (status)"))
    await engine.dispose()


def merge(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's windows as one figure: requests over seconds, percentiles over all their requests."""
    seconds = sum(w["seconds"] for w in windows)
    return {
        "rps": sum(w["requests"] for w in windows) / seconds,
        "requests": sum(w["requests"] for w in windows),
        "non2xx": sum(w["non2xx"] for w in windows),
        "socket_errors": "; ".join(w["socket_errors"] for w in windows if w["socket_errors"]),
        "p50": percentile(windows, 50),
        "p99": percentile(windows, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("LOGISTICS_TEST_POSTGRES_URL"))
    parser.add_argument("--redis", default=os.environ.get("LOGISTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--seconds", type=int, default=4, help="length of one window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per endpoint, taken in turn")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--index-cost", action="store_true",
                        help="also create on a database without the console's indexes (same run)")
    parser.add_argument("--log-level", default="WARNING",
                        help="the API's LOGISTICS_LOG_LEVEL; INFO includes its access line per request")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("benchmarks/api.py needs wrk: apt-get install wrk")

    targets = [("sqlite", None, False)] + ([("postgresql", args.postgres, False)] if args.postgres else [])
    if args.index_cost:
        targets = [t for name, url, _ in targets for t in ((name, url, False), (f"{name} -idx", url, True))]
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[int, str]] = {}  # name → (port, api key)
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
        stack.callback(_stop, bare)
        wait_ready(port)
        servers["bare aiohttp"] = (port, "-")
        stores: dict[str, str] = {}
        for name, url, bare_indexes in targets:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            env = {**os.environ, "LOGISTICS_DATA_DIR": tmp, "LOGISTICS_REDIS_URL": args.redis,
                   "LOGISTICS_QUEUE_NAME": f"bench:{os.getpid()}:{name}", "LOGISTICS_LOG_LEVEL": args.log_level,
                   **fresh_carrier_secrets()}
            if url:
                url = asyncio.run(fresh_database(url, "logistics_bench_api" + ("_idx" if bare_indexes else "")))
                env["LOGISTICS_DATABASE_URL"] = url
            key = prepare(env)
            if bare_indexes:
                asyncio.run(without_console_indexes(url or f"sqlite+aiosqlite:///{tmp}/logistics.db"))
            port = free_port()
            stack.callback(_stop, start_logistics(env, port))
            servers[f"create on {name}"] = (port, key)
            stores[f"create on {name}"] = url or f"sqlite+aiosqlite:///{tmp}/logistics.db"
        for port, key in servers.values():
            run_wrk(port, key, 2, args.connections)  # warm-up
        # The endpoints take turns, a window each, so that the machine's slow and fast spells (it is shared)
        # fall on all of them alike: each ratio compares figures taken minutes apart at most.
        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, (port, key) in servers.items():
                window = run_wrk(port, key, args.seconds, args.connections)
                windows[name].append({**window, "seconds": args.seconds})
        results = {name: merge(w) for name, w in windows.items()}
        for name, url in stores.items():
            results[name]["stored"], results[name]["outbox"] = asyncio.run(count_rows(url))

    base = results["bare aiohttp"]["rps"]
    print(f"\n{args.connections} connections, wrk -t2, one server process each; {args.rounds} rounds of "
          f"{args.seconds}s windows, the endpoints in turn\n")
    print(f"{'endpoint':<22}{'req/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  durable rows")
    for name, r in results.items():
        errors = r["non2xx"] + (1 if r["socket_errors"] else 0)
        durable = f"{r['stored']} shipments, {r['outbox']} outbox" if "stored" in r else ""
        figures = f"{r['rps']:>10.0f}{r['rps'] / base:>8.0%}{r['p50']:>9.1f}{r['p99']:>9.1f}{errors:>8}"
        print(f"{name:<22}{figures}  {durable}")
        if r["socket_errors"]:
            print(f"    socket errors: {r['socket_errors']}")
    for name, r in results.items():
        if name.endswith(" -idx"):
            with_indexes = results[name.removesuffix(" -idx")]["rps"]
            print(f"console indexes cost {name.removesuffix(' -idx')}: {1 - with_indexes / r['rps']:+.1%} of its "
                  f"creates/s ({with_indexes:.0f} with, {r['rps']:.0f} without; goal ≤ 5 %)")
    print("\nper window, req/s (p99 ms):")
    for name, ws in windows.items():
        print(f"  {name:<20}" + "  ".join(f"{w['rps']:.0f} ({w['p99']:.1f})" for w in ws))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait()


if __name__ == "__main__":
    main()
