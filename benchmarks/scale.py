"""Scale-out: the pipeline (API accept → `ordered`, label rendered) with 1, 2 and 4 worker processes and 1 and 2
API processes on one PostgreSQL, in one run, with the CPU seconds per shipment of each kind of process.

    .venv/bin/python benchmarks/scale.py [-n 3000] [--workers 1,2,4] [--apis 1,2]

Everything is started here, as production runs it: a PostgreSQL cluster of the run's own (chaos/postgres.py;
every configuration gets a fresh database in it), a private Redis, the EMS simulator (no latency, parcels stay
`ordered`), M API processes (behind HAProxy on loopback when M > 1) and N workers (`python -m logistics …`).
Per configuration: a warm-up, then n creates from 64 connections; the rate is shipments `ordered` per second
from the first POST; CPU is counted from the first POST until every order and label task is done, so label
rendering is in the worker's figure. PostgreSQL's CPU is the postmaster's and all its backends' (exited ones
included, through the postmaster's children times).

On a 2-core machine the rate cannot grow with processes beyond the cores: what this shows is the CPU each
shipment costs per kind of process (which does not depend on the cores) and how the rate moves as processes
are added (contention, batching). The projection at the end turns the per-shipment CPU into shipments a day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from pipeline import cpu_seconds, free_port, wait_http  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from chaos.postgres import PrivatePostgres  # noqa: E402
from chaos.run import haproxy_binary, haproxy_config  # noqa: E402
from logistics.config import fresh_carrier_secrets, normalise_database_url  # noqa: E402
from logistics.domain.tables import outbox, shipments  # noqa: E402
from logistics.redis.private_server import PrivateRedis  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

from support import delivery_body  # noqa: E402

KINDS = ("api", "worker", "simulator", "haproxy", "postgres", "client")
SECONDS_A_DAY = 86_400


def postgres_cpu(cluster: PrivatePostgres) -> float:
    """CPU seconds of the cluster so far: the postmaster, its live backends, and the backends it has reaped."""
    try:
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        stat = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(int(stat[i]) for i in (11, 12, 13, 14)) / tick  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Result:
    apis: int
    workers: int
    n: int
    rate: float  # shipments ordered per second, from the first POST
    accept_rate: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU milliseconds per shipment, by kind


class Stack:
    """One configuration's processes on a fresh database of the shared cluster."""

    def __init__(self, cluster: PrivatePostgres, redis_url: str, work: Path, apis: int, workers: int) -> None:
        self.cluster, self.apis, self.workers = cluster, apis, workers
        self.work = work / f"api{apis}-worker{workers}"
        self.work.mkdir(parents=True)
        self.database = f"scale_{apis}_{workers}_{uuid.uuid4().hex[:6]}"
        self.url = (
            make_url(normalise_database_url(cluster.admin_url))
            .set(database=self.database)
            .render_as_string(hide_password=False)
        )
        self.sim_port, self.lb_port = free_port(), free_port()
        self.api_ports = [free_port() for _ in range(apis)]
        self.env = {
            **os.environ,
            "LOGISTICS_DATA_DIR": str(self.work),
            "LOGISTICS_DATABASE_URL": self.url,
            "LOGISTICS_REDIS_URL": redis_url,
            "LOGISTICS_QUEUE_NAME": f"bench:scale:{uuid.uuid4().hex[:8]}",
            "LOGISTICS_EMS_SIM_PORT": str(self.sim_port),
            "LOGISTICS_EMS_BASE_URL": f"http://127.0.0.1:{self.sim_port}",
            "LOGISTICS_LOG_LEVEL": "WARNING",
            "LOGISTICS_LOG_FORMAT": "text",
            **fresh_carrier_secrets(),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.db = Database(self.url)
        self.api_key = ""

    @property
    def url_base(self) -> str:
        return f"http://127.0.0.1:{self.lb_port if self.apis > 1 else self.api_ports[0]}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with (self.work / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)

    async def start(self) -> None:
        engine = create_async_engine(normalise_database_url(self.cluster.admin_url), isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        await engine.dispose()
        py = sys.executable
        await asyncio.to_thread(
            subprocess.run, [py, "-m", "logistics", "migrate"], env=self.env, cwd=ROOT, check=True, capture_output=True
        )
        made = await asyncio.to_thread(
            subprocess.run,
            [py, "-m", "logistics", "clients", "create", "--name", "上街区行政审批系统", "--json"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        self.api_key = json.loads(made.stdout)["api_key"]
        self._spawn("simulator", [py, "-m", "logistics", "ems-sim", "--step-seconds", "0"], self.env)
        for n, port in enumerate(self.api_ports, 1):
            self._spawn(f"api-{n}", [py, "-m", "logistics", "api"], {**self.env, "LOGISTICS_PORT": str(port)})
        for n in range(1, self.workers + 1):
            self._spawn(f"worker-{n}", [py, "-m", "logistics", "worker"], self.env)
        if self.apis > 1:
            config = self.work / "haproxy.cfg"
            config.write_text(haproxy_config(self.lb_port, self.api_ports))
            self._spawn("haproxy", [haproxy_binary(), "-db", "-f", str(config)], self.env)
        await wait_http(f"http://127.0.0.1:{self.sim_port}/healthz", 120)  # a busy machine starts slowly
        for port in self.api_ports:
            await wait_http(f"http://127.0.0.1:{port}/healthz", 120)
        await wait_http(f"{self.url_base}/healthz", 120)

    def cpu(self) -> dict[str, float]:
        spent = dict.fromkeys(KINDS, 0.0)
        for name, proc in self.processes.items():
            try:
                spent[name.split("-")[0]] += cpu_seconds(proc.pid)
            except OSError:
                pass
        spent["postgres"] = postgres_cpu(self.cluster)
        spent["client"] = time.process_time()
        return spent

    async def count(self, query: object) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]

    async def ordered(self) -> int:
        return await self.count(select(func.count()).select_from(shipments).where(shipments.c.status == "ordered"))

    async def settle(self, timeout: float = 600) -> None:
        """Until every order and label task is done (labels are rendered after the order, by the worker)."""
        query = select(func.count()).select_from(outbox).where(outbox.c.kind.in_(("order", "label")))
        deadline = time.monotonic() + timeout
        while await self.count(query):
            if time.monotonic() > deadline:
                raise RuntimeError(f"order and label work did not drain; logs in {self.work}")
            await asyncio.sleep(0.1)

    async def load(self, session: aiohttp.ClientSession, n: int) -> Result:
        before = await self.ordered()
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        body = json.dumps(delivery_body(), ensure_ascii=False).encode()
        gate = asyncio.Semaphore(64)

        async def one() -> None:
            async with gate, session.post(f"{self.url_base}/v1/shipments", data=body, headers=headers) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create answered {resp.status}: {await resp.text()}")

        cpu_before = self.cpu()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        accepted = time.perf_counter() - started
        deadline = time.monotonic() + max(120.0, n / 10)
        while (done := await self.ordered() - before) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {n} ordered; logs in {self.work}")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        await self.settle()
        after = self.cpu()
        cpu_ms = {kind: (after[kind] - cpu_before[kind]) / n * 1000 for kind in KINDS}
        return Result(self.apis, self.workers, n, n / elapsed, n / accepted, cpu_ms)

    async def stop(self) -> None:
        for proc in self.processes.values():
            proc.terminate()
        for proc in self.processes.values():
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await self.db.dispose()


async def measure(cluster: PrivatePostgres, redis_url: str, work: Path, apis: int, workers: int, n: int) -> Result:
    stack = Stack(cluster, redis_url, work, apis, workers)
    try:
        await stack.start()
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(trust_env=False, connector=connector) as session:
            await stack.load(session, min(300, n))  # warm-up: connections, caches, the label renderers
            return await stack.load(session, n)
    finally:
        await stack.stop()


def table(results: list[Result]) -> str:
    base = results[0].rate
    lines = [
        f"{'APIs':>4} {'workers':>7} {'ordered/s':>10} {'× 1+1':>6} {'accepted/s':>11}   CPU ms per shipment: "
        + "  ".join(f"{k:>8}" for k in KINDS)
        + "     total"
    ]
    for r in results:
        total = sum(v for k, v in r.cpu_ms.items() if k != "client")
        lines.append(
            f"{r.apis:>4} {r.workers:>7} {r.rate:>10.0f} {r.rate / base:>6.2f} {r.accept_rate:>11.0f}   "
            + " " * len("CPU ms per shipment: ")
            + "  ".join(f"{r.cpu_ms[k]:>8.2f}" for k in KINDS)
            + f"  {total:>8.2f}"
        )
    return "\n".join(lines)


def projection(results: list[Result], cores_per_node: int, busy_share: float) -> str:
    """Shipments a day from the cheapest measured per-shipment CPU of each kind: the service's own processes
    scale with nodes, the one PostgreSQL does not."""

    def cheapest(kind: str) -> float:
        return min(r.cpu_ms[kind] for r in results) / 1000

    service = cheapest("api") + cheapest("worker") + cheapest("haproxy")
    database = cheapest("postgres")
    budget = SECONDS_A_DAY * busy_share
    per_node = budget * cores_per_node / service
    one_pg = budget * cores_per_node / database
    lines = [
        f"projection on paper (accept → ordered + label; {cores_per_node} cores a node, "
        f"busy {busy_share:.0%} of a day):",
        f"  service CPU {service * 1000:.2f} ms/shipment (API + worker + proxy) → {per_node:,.0f} a day per node",
        f"  PostgreSQL {database * 1000:.2f} ms/shipment → one {cores_per_node}-core server saturates at "
        f"{one_pg:,.0f} a day",
    ]
    for nodes in (1, 2, 4, 8):
        lines.append(f"  {nodes} node(s) + one PostgreSQL: {min(nodes * per_node, one_pg):,.0f} a day")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="shipments per configuration")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--apis", default="1,2")
    parser.add_argument("--cores-per-node", type=int, default=8, help="for the projection")
    parser.add_argument("--busy-share", type=float, default=0.5, help="for the projection: share of a day at full load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        work = Path(tmp)
        cluster = PrivatePostgres(work)
        redis = PrivateRedis(work / "redis")
        try:
            await asyncio.to_thread(cluster.start)
            redis_url = await asyncio.to_thread(redis.start)
            results = []
            for apis in (int(x) for x in args.apis.split(",")):
                for workers in (int(x) for x in args.workers.split(",")):
                    result = await measure(cluster, redis_url, work, apis, workers, args.n)
                    print(
                        f"{apis} API, {workers} workers: {result.rate:.0f} ordered/s "
                        f"({json.dumps({k: round(v, 2) for k, v in result.cpu_ms.items()})})",
                        flush=True,
                    )
                    results.append(result)
        finally:
            await asyncio.to_thread(redis.stop)
            await asyncio.to_thread(cluster.destroy)
    print(f"\n== scale-out on PostgreSQL ({args.n} shipments per configuration, {os.cpu_count()} cores) ==")
    print(table(results))
    print()
    print(projection(results, args.cores_per_node, args.busy_share))


if __name__ == "__main__":
    asyncio.run(main())
