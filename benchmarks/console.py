"""The hall's console on a big database: today's list, the exception queue and find, through the real HTTP console.

    .venv/bin/python benchmarks/console.py --postgres postgresql://postgres@127.0.0.1:5432/test   # 1,000,000
    .venv/bin/python benchmarks/console.py                                                       # SQLite, 200,000
    .venv/bin/python benchmarks/console.py --database-url URL   # a database seeded before (benchmarks/seed.py)

A scratch database is seeded (benchmarks/seed.py: 12+ months, 30 departments) unless one is given, and migrated
to the head. A clerk of one department signs in on a real API process (or --api-processes N, the clients shared
out among them); 16 clients then GET the pages with the
session cookie, the kinds in turn, and each answer's latency is kept. Then each page's queries are captured and
explained (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
Goals (issue 18): p99 ≤ 50 ms at 16 connections on PostgreSQL with 1,000,000 shipments; ≤ 100 ms on SQLite
with 200,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:1] = [str(ROOT), str(ROOT / "tests")]  # the script folder's labels.py would shadow the package

import aiohttp  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402

from benchmarks.api import (  # noqa: E402
    BARE_SERVER,
    QUANTILES_LUA,
    free_port,
    percentile,
    read_only_env,
    run_wrk_script,
    start_logistics,
    wait_ready,
)
from benchmarks.scratch_db import scratch_database  # noqa: E402
from benchmarks.seed import seed  # noqa: E402
from logistics.accounts import staff  # noqa: E402
from logistics.config import normalise_database_url  # noqa: E402
from logistics.console import exceptions, queries  # noqa: E402
from logistics.console.views import COOKIE  # noqa: E402
from logistics.domain.deadlines import beijing_today  # noqa: E402
from logistics.domain.tables import shipment_cases, shipments  # noqa: E402
from logistics.storage import migrate  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LIMITS = exceptions.Limits(awaiting_days=3, pickup_hours=24, warn_days=2)  # the settings' defaults


@contextlib.asynccontextmanager
async def seeded(args: argparse.Namespace, folder: Path) -> AsyncIterator[str]:
    if args.database_url:
        url = normalise_database_url(args.database_url)
        await migrate.upgrade_async(url)
        yield url
        return
    async with scratch_database(args.postgres, folder, "bench_console") as url:
        db = Database(url)
        try:
            summary = await seed(
                db, shipments=args.shipments, months=args.months, departments=30, seed=1, now=datetime.now(UTC)
            )
        finally:
            await db.dispose()
        print(f"seeded {summary.shipments:,} shipments in {summary.seconds:.0f} s; load {_load()}")
        yield url


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc): the cost per page, whatever the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU used by this machine's PostgreSQL server processes (0 where it runs elsewhere)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            if comm.read_text().strip() == "postgres":
                total += cpu_seconds(int(comm.parent.name))
    return total


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def samples(db: Database, department: str, n: int) -> dict[str, list[str]]:
    """Real case numbers, waybills and applicants' phones of the department's shipments (not yet purged)."""
    rng = random.Random(7)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    shipments.c.id, shipments.c.waybill_no, shipments.c.kind, shipments.c.sender, shipments.c.recipient
                )
                .where(
                    shipments.c.department == department,
                    shipments.c.purged_at.is_(None),
                    shipments.c.waybill_no.is_not(None),
                )
                .order_by(shipments.c.created_at.desc())
                .limit(5000)
            )
        ).all()
        picked = rng.sample(rows, min(n, len(rows)))
        cases = (
            await conn.execute(
                select(shipment_cases.c.case_no).where(shipment_cases.c.shipment_id.in_([r.id for r in picked]))
            )
        ).scalars()
    return {
        "case": list(cases),
        "waybill": [r.waybill_no for r in picked],
        "phone": [(r.sender if r.kind == "intake" else r.recipient)["phone"] for r in picked],
    }


def urls(department: str, found: dict[str, list[str]]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    return {
        "today": [("/console/today", {"department": department})],
        "exceptions": [("/console/exceptions", {})],
        **{f"find by {kind}": [("/console/find", {"q": v}) for v in values] for kind, values in found.items()},
    }


async def sign_in(session: aiohttp.ClientSession, base: str, token: str) -> None:
    form = await (await session.get(f"{base}/console/sign-in")).text()
    csrf = CSRF.search(form)
    assert csrf is not None
    resp = await session.post(f"{base}/console/sign-in", data={"csrf": csrf.group(1), "token": token})
    assert resp.status == 200 and resp.url.path == "/console/today", resp.status


async def load(
    bases: list[str],
    token: str,
    pages: dict[str, list[tuple[str, dict[str, str]]]],
    *,
    connections: int,
    seconds: float,
) -> dict[str, list[float]]:
    """``connections`` clients on one signed-in session, each taking the page kinds in turn for ``seconds``; with
    several API processes the clients are shared out among them, as a load balancer would."""
    latencies: dict[str, list[float]] = {kind: [] for kind in pages}
    errors: list[str] = []
    jar = aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as session:
        await sign_in(session, bases[0], token)
        deadline = time.monotonic() + seconds

        async def client(n: int) -> None:
            rng = random.Random(n)
            base = bases[n % len(bases)]
            kinds = list(pages)
            i = n
            while time.monotonic() < deadline:
                kind = kinds[i % len(kinds)]
                i += 1
                path, params = rng.choice(pages[kind])
                started = time.perf_counter()
                async with session.get(base + path, params=params, allow_redirects=False) as resp:
                    await resp.read()
                    if resp.status not in (200, 303):
                        errors.append(f"{kind}: {resp.status}")
                latencies[kind].append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(client(n) for n in range(connections)))
    if errors:
        print(f"errors: {len(errors)}, e.g. {errors[:3]}")
    return latencies


async def session_cookie(base: str, token: str) -> str:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        await sign_in(session, base, token)
    return next(c.value for c in jar if c.key == COOKIE)


WRK_PAGES_LUA = """
wrk.headers["Cookie"] = "%s=%s"
paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def wrk_pages(
    bases: list[str],
    cookie: str,
    pages: dict[str, list[tuple[str, dict[str, str]]]],
    *,
    api_pids: list[int],
    connections: int,
    seconds: float,
) -> dict[str, dict[str, Any]]:
    """Each page kind on its own, ``connections`` wrk connections for ``seconds``, shared out among the API
    processes (one wrk each, all at once): a load generator in C takes a small share of the machine the server
    runs on, where the Python clients of ``load`` take a large one. First the baseline: bare aiohttp serving the
    bytes of the today page from memory (no session, no database)."""
    out = {"bare aiohttp": bare_page(bases[0], cookie, connections=connections, seconds=seconds)}
    for kind, choices in pages.items():
        paths = ", ".join(f'"{path}?{urlencode(params)}"' for path, params in choices)
        script = WRK_PAGES_LUA % (COOKIE, cookie, paths) + QUANTILES_LUA
        api, database = sum(cpu_seconds(p) for p in api_pids), postgres_cpu_seconds()
        with ThreadPoolExecutor(len(bases)) as pool:
            shares = [connections // len(bases) + (i < connections % len(bases)) for i in range(len(bases))]
            runs = list(
                pool.map(lambda b, c, s=script: run_wrk_script(b, s, connections=c, seconds=seconds), bases, shares)
            )
        requests = sum(r["requests"] for r in runs)
        out[kind] = {
            "rps": sum(r["rps"] for r in runs),
            "p50": percentile(runs, 50),
            "p99": percentile(runs, 99),
            "non2xx": sum(r["non2xx"] for r in runs),
            "api_ms": (sum(cpu_seconds(p) for p in api_pids) - api) / requests * 1000,
            "database_ms": (postgres_cpu_seconds() - database) / requests * 1000,
        }
    return out


def bare_page(base: str, cookie: str, *, connections: int, seconds: float) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/console/today", headers={"Cookie": f"{COOKIE}={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as resp, tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(resp.read())
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port), f.name])
    try:
        wait_ready(port)
        script = 'request = function() return wrk.format("GET", "/page") end\n' + QUANTILES_LUA
        return run_wrk_script(f"http://127.0.0.1:{port}", script, connections=connections, seconds=seconds)
    finally:
        server.terminate()
        server.wait()
        os.unlink(f.name)


async def functions(
    url: str, department: str, found: dict[str, list[str]], *, connections: int, seconds: float
) -> dict[str, list[float]]:
    """The query functions alone, ``connections`` tasks on a pool of as many connections (no HTTP, no page)."""
    db = Database(url, pool_size=connections)
    calls = {
        "today": lambda: queries.today(db, department, beijing_today(datetime.now(UTC))),
        "exceptions": lambda: exceptions.to_chase(db, [department], datetime.now(UTC), LIMITS),
        **{f"find by {k}": (lambda v=v: queries.find(db, [department], random.choice(v))) for k, v in found.items()},
    }
    latencies: dict[str, list[float]] = {kind: [] for kind in calls}
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        kinds = list(calls)
        while time.monotonic() < deadline:
            kind = kinds[n % len(kinds)]
            n += 1
            started = time.perf_counter()
            await calls[kind]()
            latencies[kind].append((time.perf_counter() - started) * 1000)

    try:
        await asyncio.gather(*(worker(n) for n in range(connections)))
    finally:
        await db.dispose()
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def plans(db: Database, department: str, found: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(page, statement, plan) for every statement each page's query function runs."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    calls = {
        "today": lambda: queries.today(db, department, beijing_today(datetime.now(UTC))),
        "exceptions": lambda: exceptions.to_chase(db, [department], datetime.now(UTC), LIMITS),
        **{f"find by {k}": (lambda v=v: queries.find(db, [department], v[0])) for k, v in found.items()},
    }
    out = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        for page, call in calls.items():
            captured.clear()
            await call()
            statements = list(captured)
            async with db.read() as conn:
                for statement, parameters in statements:
                    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, COSTS OFF) "
                    rows = await conn.exec_driver_sql(explain + statement, parameters)
                    plan = "\n".join(str(r[-1]) for r in rows)
                    out.append((page, " ".join(statement.split()), plan))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    return out


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with seeded(args, Path(tmp)) as url:
            db = Database(url)
            try:
                async with db.read() as conn:
                    total = (await conn.execute(text("SELECT count(*) FROM shipments"))).scalar_one()
                    department = (
                        await conn.execute(select(shipments.c.department).order_by(shipments.c.created_at.desc()))
                    ).scalar()
                clerk = await staff.create(db, "压测窗口", "clerk", [department])
                found = await samples(db, department, 200)
                explained = await plans(db, department, found)
            finally:
                await db.dispose()
            env = read_only_env(tmp, url)
            ports = [free_port() for _ in range(args.api_processes)]
            procs = [await asyncio.to_thread(start_logistics, env, port) for port in ports]
            try:
                bases = [f"http://127.0.0.1:{port}" for port in ports]
                pages = urls(department, found)
                await load(bases, clerk.token, pages, connections=args.connections, seconds=3)  # warm-up
                load_before, cpu_before = _load(), sum(cpu_seconds(p.pid) for p in procs)
                latencies = await load(bases, clerk.token, pages, connections=args.connections, seconds=args.seconds)
                load_after, cpu = _load(), sum(cpu_seconds(p.pid) for p in procs) - cpu_before
                by_wrk: dict[str, dict[str, Any]] = {}
                if args.wrk:
                    load_wrk = _load()
                    cookie = await session_cookie(bases[0], clerk.token)
                    by_wrk = await asyncio.to_thread(
                        wrk_pages,
                        bases,
                        cookie,
                        pages,
                        api_pids=[p.pid for p in procs],
                        connections=args.connections,
                        seconds=args.seconds / 4,
                    )
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait()
            load_functions = _load()
            direct = await functions(url, department, found, connections=args.connections, seconds=args.seconds / 2)
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    goal = 100 if backend == "SQLite" else 50
    print(
        f"\n{backend}, {total:,} shipments; department {department}; {args.connections} connections, "
        f"{args.seconds:.0f} s, {args.api_processes} API process(es); load {load_before} → {load_after}\n"
    )
    requests = sum(len(v) for v in latencies.values())
    print(f"API CPU: {cpu / requests * 1000:.1f} ms per page over {requests} pages (all kinds)\n")
    print(f"{'page':<18}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  goal p99 ≤ {goal} ms")
    for kind, values in latencies.items():
        p99 = quantile(values, 0.99)
        verdict = "met" if p99 <= goal else "NOT met"
        print(f"{kind:<18}{len(values):>9}{quantile(values, 0.5):>9.1f}{p99:>9.1f}{max(values):>9.1f}  {verdict}")
    if by_wrk:
        print(
            f"\nwrk, each page kind on its own: {args.connections} connections, {args.seconds / 4:.0f} s each, "
            f"{len(bases)} API process(es); load {load_wrk} → {_load()}\n"
        )
        print(
            f"{'page':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'API CPU':>9}{'PG CPU':>9}"
            f"  goal p99 ≤ {goal} ms   (CPU: ms per page)"
        )
        for kind, r in by_wrk.items():
            verdict = "met" if r["p99"] <= goal else "NOT met"
            cpu_cells = f"{r['api_ms']:>9.2f}{r['database_ms']:>9.2f}" if "api_ms" in r else f"{'—':>9}{'—':>9}"
            print(f"{kind:<18}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['non2xx']:>9}{cpu_cells}  {verdict}")
    print(
        f"\nthe query functions alone, {args.connections} tasks on a {args.connections}-connection pool in this "
        f"process, {args.seconds / 2:.0f} s; load {load_functions}\n"
    )
    print(f"{'function':<18}{'calls':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values in direct.items():
        print(
            f"{kind:<18}{len(values):>9}{quantile(values, 0.5):>9.1f}{quantile(values, 0.99):>9.1f}{max(values):>9.1f}"
        )
    print("\nquery plans (one call of each page's query function):")
    for page, statement, plan in explained:
        print(f"\n[{page}] {statement[:160]}{'…' if len(statement) > 160 else ''}")
        print("    " + plan.replace("\n", "\n    "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LOGISTICS_TEST_POSTGRES_URL"),
        help="server URL: seed a scratch database there (default: SQLite)",
    )
    parser.add_argument("--database-url", help="a database seeded before (kept)")
    parser.add_argument("--shipments", type=int, help="default 1,000,000 on PostgreSQL, 200,000 on SQLite")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--api-processes", type=int, default=1, help="API processes sharing the clients")
    parser.add_argument("--wrk", action="store_true", help="also load each page kind with wrk (C), one at a time")
    args = parser.parse_args()
    if args.shipments is None:
        args.shipments = 1_000_000 if args.postgres else 200_000
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
