"""Whole-pipeline chaos run (issues 7, 20): shipments through API → EMS simulator → labels → webhooks while
things break.

    .venv/bin/python chaos/run.py --shipments 10000 [--workers 3 --apis 2 --postgres [URL]]

Real processes, each with its log captured under the run's work directory: a private Redis (never the shared
one: it is flushed and restarted), the EMS simulator with 20 % transient faults, one outage and duplicated and
reordered pushes, M API processes (behind HAProxy on loopback when M > 1, with a configuration the run
writes) and N workers, SIGKILLed in turn every few seconds and restarted. ``--postgres`` alone starts a
PostgreSQL cluster of the run's own (``chaos/postgres.py``), which is stopped (fast shutdown) for 20 s in the
middle of the load; with a URL the run uses that server and never stops it. With M > 1 one API process is
SIGKILLed every 10–20 s and restarted. The client behaves as an approval system should: it retries on 503, on
connection errors and on timeouts with the same Idempotency-Key. The webhook receiver runs in this process: it
verifies signatures with ``standardwebhooks``, answers 500 to 30 % of requests and has one outage. After the
drain the run checks every promise it can observe from outside (and from the database) and prints a summary
table; the exit status is 1 when a check fails. Each check is a method ``check_…``/``_check_…`` that adds rows
to the report.

``tests/chaos/test_chaos.py`` runs the same code with 500 shipments and shorter outages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests"):  # run as a script: the project and the shared test data
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import aiohttp  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from chaos import proof_checks  # noqa: E402
from chaos.postgres import PrivatePostgres  # noqa: E402
from chaos.receiver import Receiver  # noqa: E402
from logistics.accounts import clients  # noqa: E402
from logistics.config import fresh_carrier_secrets, normalise_database_url  # noqa: E402
from logistics.domain.statuses import FINAL, RANK  # noqa: E402
from logistics.domain.tables import (  # noqa: E402
    idempotency_records,
    label_renders,
    outbox,
    shipments,
    webhook_deliveries,
)
from logistics.jobs.purge import purge_finished  # noqa: E402
from logistics.redis.private_server import PrivateRedis  # noqa: E402
from logistics.storage import migrate  # noqa: E402
from logistics.storage.db import Database  # noqa: E402

from support import APPLICANT, HALL, delivery_body, intake_body  # noqa: E402

NOT_CARRIED = FINAL - {"delivered", "returned"}
# A parcel's end at the carrier (the simulator's parcel state) → the status its shipment must end in.
CARRIER_ENDS = {"delivered": "delivered", "cancelled": "cancelled", "returned": "returned", "voided": "failed"}
# The webhooks every delivered shipment must have announced. Intermediate statuses may be skipped: when a
# later carrier event is applied first (pushes reordered, or overtaking a lost order answer), the forward-only
# rule keeps the earlier one in the history without a status change, so it owes no webhook.
REQUIRED_TYPES = ("shipment.label_ready", "shipment.delivered")
MAIN_PATH = ("ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")
TRANSIENT_KINDS = ("http_5xx", "s_code", "connection_reset", "timeout_after_create")
PRIVATE_POSTGRES = "private"  # Plan.postgres: a cluster of the run's own, which it may stop and start
PROBLEM_JSON = "application/problem+json"
UNAVAILABLE_PAGE_TEXT = "暂时无法服务"


@dataclass
class Plan:
    """Numbers of one run. Times are seconds after the load starts."""

    shipments: int = 10_000
    # None: SQLite. PRIVATE_POSTGRES: a cluster of the run's own (stopped once, see pg_stop_at). Otherwise an
    # admin URL: the run creates (and drops) a database of its own on that server and never stops it.
    postgres: str | None = None
    workers: int = 1
    apis: int = 1  # more than one: behind HAProxy
    # The creates spread evenly over this many seconds (0: as fast as they go), so that the database outage and
    # the API kills happen while approval systems are still sending.
    load_seconds: float = 0.0
    client_timeout: float = 30.0  # one create attempt; the client retries after it
    pg_stop_at: float = 60.0  # a private cluster only
    pg_down_seconds: float = 20.0
    api_kill_every: tuple[float, float] | None = None  # (10, 20): one API process SIGKILLed that often
    work_dir: Path | None = None
    concurrency: int = 32
    intake_share: float = 1 / 3
    step_seconds: float = 5.0  # simulator: time a parcel spends at each tracking step
    # Simulator clock: simulated seconds per second. Intakes book tomorrow's window and the simulator never
    # collects before it opens, so at 7200× tomorrow is about 12 s away.
    clock_speed: float = 7200.0
    # What the carrier does with parcels (issue 17): failed attempts, refusals and returns, every kind of signer,
    # failed door pickups. Shares of parcels; the simulator's own defaults never return a parcel.
    outcomes: dict[str, Any] = field(
        default_factory=lambda: {
            "delivery": {"failed_attempt_rate": 0.15, "refusal_rate": 0.05, "undeliverable_rate": 0.05},
            "signers": {
                "addressee": 0.35,
                "family": 0.2,
                "unit_mailroom": 0.15,
                "locker_or_station": 0.15,
                "other": 0.1,
                "unknown": 0.05,
            },
            "pickup": {"failure_rate": 0.1},
        }
    )
    transient_rate: float = 0.2  # simulator errors, split over TRANSIENT_KINDS
    push_duplicate_rate: float = 0.1
    push_reorder_rate: float = 0.1
    hang_seconds: float = 6.0  # timeout_after_create: the answer comes this late (after our timeout)
    ems_timeout_seconds: float = 5.0
    carrier_retry_seconds: float = 10.0
    # In-job tries of one carrier call. More than the default 4: with 20 % faults a task that gives up waits
    # up to 15 s × 2^failures in the database, which would stretch a bounded drain.
    carrier_attempts: int = 8
    sim_outage_at: float = 20.0
    sim_outage_seconds: float = 30.0
    receiver_error_rate: float = 0.3
    receiver_outage_at: float = 40.0
    receiver_outage_seconds: float = 60.0
    flush_at: float = 30.0
    redis_restart_at: float = 70.0
    redis_down_seconds: float = 3.0
    kill_every: tuple[float, float] = (3.0, 8.0)
    chaos_seconds: float = 240.0  # worker kills stop after this; the drain then runs on one steady worker
    lease_seconds: float = 10.0
    poll_first_seconds: float = 60.0
    webhook_schedule: tuple[float, ...] = (0, 1, 2, 4, 8, 15, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30)
    drain_timeout: float = 3600.0
    rss_at: int = 1000
    seed: int = 20180806
    keep_database: bool = False
    progress: Callable[[str], None] = print

    @classmethod
    def ci(cls, **overrides: Any) -> Plan:
        """The CI variant: 500 shipments, the same faults, outages and kills squeezed into about a minute."""
        values: dict[str, Any] = {
            "shipments": 500,
            "step_seconds": 0.5,
            "hang_seconds": 3.0,
            "ems_timeout_seconds": 2.0,
            "carrier_retry_seconds": 15.0,
            "sim_outage_at": 2.0,
            "sim_outage_seconds": 8.0,
            "receiver_outage_at": 4.0,
            "receiver_outage_seconds": 15.0,
            "flush_at": 3.0,
            "redis_restart_at": 12.0,
            "redis_down_seconds": 2.0,
            "kill_every": (4.0, 8.0),
            "chaos_seconds": 45.0,
            "lease_seconds": 15.0,
            "poll_first_seconds": 20.0,
            "webhook_schedule": (0, 1, 2, 3, 5, 8, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10),
            # About 110 s on a quiet 2-core machine; the margin is for a busy one (218 s seen with benchmarks
            # running beside it), where a timeout would report slowness as a lost webhook.
            "drain_timeout": 330.0,
            "rss_at": 250,
            "pg_stop_at": 12.0,
            "pg_down_seconds": 15.0,
        }
        values.update(overrides)
        return cls(**values)


# -- test data ------------------------------------------------------------------------------------------------

# Compound surnames: never produced by the simulator's own courier names, so a hit in the logs is ours.
SURNAMES = ("欧阳", "司马", "诸葛", "上官", "慕容", "东方", "皇甫", "令狐", "公孙", "长孙", "宇文", "司徒")
GIVEN = ("娜娜", "文静", "子涵", "婉清", "晓峰", "嘉怡", "浩然", "思远")
# Unit/room and village addresses as applicants write them; the patterns find them in logs.
ADDRESS_PATTERNS = (re.compile(r"\d+号院\d+号楼"), re.compile(r"马固村\d+组"))
PHONE_PATTERN = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def person(i: int) -> tuple[str, str]:
    name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
    # 138… for applicants receiving a delivery, 135… for applicants handing in materials; the simulator's
    # couriers use 139…, so they never collide.
    phone = f"{138 if i % 2 == 0 else 135}{i:08d}"
    return name, phone


def shipment_body(i: int, intake_share: float) -> dict[str, Any]:
    name, phone = person(i)
    case = {"case_no": f"410106-2018-{i:05d}"}
    if (i % 1000) / 1000 < intake_share:
        body = intake_body()
        body["sender"] = {
            **body["sender"],
            "name": name,
            "phone": phone,
            "address": f"峡窝镇马固村{i % 9 + 1}组{i % 50 + 1}号",
        }
        body["cases"] = [{**body["cases"][0], **case}]
        return body
    address = f"新安路街道济源路{i % 97 + 1}号院{i % 9 + 1}号楼{i % 4 + 1}单元{i % 6 + 1}0{i % 4 + 1}室"
    body = delivery_body(recipient={**APPLICANT, "name": name, "phone": phone, "address": address})
    body["cases"] = [{**body["cases"][0], **case}]
    # Half the deliveries carry a 取件验证码: the carrier then hands them only to the addressee or family.
    body["verification_code"] = i % 2 == 0
    return body


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """One of the service's processes, started from the same commands production uses, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    kills: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0  # summed over every process this child has been (restarts included)
    _cpu_seen: dict[int, float] = field(default_factory=dict)

    def sample_cpu(self) -> None:
        pid = self.pid
        if pid is None:
            return
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        self.cpu_seconds += used - self._cpu_seen.get(pid, 0.0)
        self._cpu_seen[pid] = used

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            # A session of its own: a Ctrl-C in the terminal reaches this script, which stops children in order.
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def check(self) -> None:
        """Note an exit we did not cause (a crash)."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(self.process.returncode)
            self.process = None

    def kill(self) -> None:
        self.sample_cpu()  # what it used up to now; a killed process can no longer be asked
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def haproxy_binary() -> str:
    """HAProxy from Debian's package (scripts/haproxy-setup installs it), or LOGISTICS_HAPROXY."""
    return os.environ.get("LOGISTICS_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"


def haproxy_config(port: int, api_ports: list[int]) -> str:
    """Round robin over the API processes on loopback. Health checks use /healthz (is the process up), not
    /readyz: while the database is down every API is "not ready", and the clients must then hear our 503
    problem with Retry-After rather than HAProxy's own page. A connection refused by a killed API is retried
    on another one (redispatch): the request never reached the dead process. A request the dead process had
    already taken gets HAProxy's 502 and is the client's to retry, with its Idempotency-Key."""
    servers = "\n".join(
        f"    server api{n} 127.0.0.1:{api} check inter 500ms fall 1 rise 1" for n, api in enumerate(api_ports, 1)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    retries 3
    option redispatch
    option httpchk GET /healthz

frontend api
    bind 127.0.0.1:{port}
    default_backend apis

backend apis
    balance roundrobin
{servers}
"""


def _seconds(value: str | None) -> float:
    """Retry-After as delay-seconds (what our API sends); 0 when absent or a date."""
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def rss_kib(pid: int | None) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB of a live process."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    if "VmRSS" not in found:
        return None
    return int(found["VmRSS"]), int(found.get("VmHWM", 0))


# -- the run --------------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    work_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def figure(self, name: str, value: Any) -> None:
        self.figures.append((name, str(value)))

    def text(self) -> str:
        width = max([len(c.name) for c in self.checks] + [len(n) for n, _ in self.figures] + [10])
        lines = ["", "chaos run — checks", "-" * (width + 60)]
        for c in self.checks:
            lines.append(f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL'}  {c.detail}")
        lines += ["", "chaos run — figures", "-" * (width + 60)]
        lines += [f"{name:<{width}}  {value}" for name, value in self.figures]
        lines += ["", "chaos run — timeline (seconds after the load started)", "-" * (width + 60)]
        lines += [f"{at:8.1f}  {what}" for at, what in self.timeline]
        lines += ["", f"logs and data: {self.work_dir}", f"RESULT: {'PASS' if self.ok else 'FAIL'}"]
        return "\n".join(lines)


@dataclass(slots=True)
class Attempt:
    """One create request as the client saw it. Times are seconds after the load started."""

    index: int
    sent: float
    took: float = 0.0
    status: int = 0  # 0: no answer
    error: str = ""  # "timeout" or "connection" when there was no answer
    content_type: str = ""  # problem+json or JSON: our API answered (HAProxy's own answers are HTML)
    problem: str = ""  # the last part of a problem's type
    retry_after: float = 0.0


@dataclass
class LoadStats:
    created: int = 0
    replayed: int = 0
    retries: int = 0
    connection_errors: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0


class ChaosRun:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.work = (plan.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))).resolve()
        self.logs = self.work / "logs"
        self.run_id = uuid.uuid4().hex[:8]
        self.report = Report(work_dir=self.work)
        self.children: dict[str, Child] = {}
        self.pg: PrivatePostgres | None = None
        self.attempts: list[Attempt] = []
        self.bodies: list[dict[str, Any] | None] = [None] * plan.shipments
        self.outage: tuple[float, float] | None = None  # (stopped, starting again), seconds after the load started
        self.probes: list[Check] = []
        self.rss_peaks: dict[str, int] = {}
        self.api_ports = [free_port() for _ in range(plan.apis)]
        self.redis = PrivateRedis(self.work / "redis")
        self.receiver: Receiver | None = None
        self.db: Database | None = None
        self.pg_database: str | None = None
        self.load_started = 0.0
        self.load = LoadStats()
        self.ids: list[str | None] = [None] * plan.shipments
        self.rss: dict[str, dict[str, tuple[int, int, float] | None]] = {}
        self.chaos_done = asyncio.Event()
        self.api_port = free_port()
        self.sim_port = free_port()
        self.receiver_port = free_port()

    def say(self, message: str) -> None:
        self.plan.progress(
            f"[chaos {time.monotonic() - self.load_started if self.load_started else 0:7.1f}s] {message}"
        )

    def mark(self, what: str) -> None:
        at = time.monotonic() - self.load_started if self.load_started else 0.0
        self.report.timeline.append((at, what))
        self.say(what)

    # -- setup ----------------------------------------------------------------------------------------------

    async def _database_url(self) -> str:
        if not self.plan.postgres:
            url = f"sqlite+aiosqlite:///{self.work / 'logistics.db'}"
        else:
            admin = self.plan.postgres
            if admin == PRIVATE_POSTGRES:
                self.pg = PrivatePostgres(self.work)
                admin = await asyncio.to_thread(self.pg.start)
            admin_url = normalise_database_url(admin)
            self.pg_database = f"logistics_chaos_{self.run_id}"
            await _admin_sql(admin_url, f'CREATE DATABASE "{self.pg_database}"')
            url = make_url(admin_url).set(database=self.pg_database).render_as_string(hide_password=False)
        await asyncio.to_thread(migrate.upgrade, url)
        return url

    def _env(self, database_url: str, redis_url: str) -> dict[str, str]:
        p = self.plan
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
        return {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "LOGISTICS_DATA_DIR": str(self.work),
            "LOGISTICS_DATABASE_URL": database_url,
            "LOGISTICS_REDIS_URL": redis_url,
            "LOGISTICS_HOST": "127.0.0.1",
            "LOGISTICS_PORT": str(self.api_ports[0]),
            "LOGISTICS_EMS_SIM_PORT": str(self.sim_port),
            "LOGISTICS_EMS_SIM_STEP_SECONDS": str(p.step_seconds),
            "LOGISTICS_EMS_TIMEOUT_SECONDS": str(p.ems_timeout_seconds),
            "LOGISTICS_CARRIER_RETRY_SECONDS": str(p.carrier_retry_seconds),
            "LOGISTICS_CARRIER_ATTEMPTS": str(p.carrier_attempts),
            "LOGISTICS_WEBHOOK_ALLOW_LOOPBACK": "true",  # the receiver is this process, on 127.0.0.1
            "LOGISTICS_QUEUE_NAME": f"chaos:{self.run_id}",
            "LOGISTICS_LEASE_SECONDS": str(p.lease_seconds),
            "LOGISTICS_SWEEP_INTERVAL_SECONDS": "1",
            "LOGISTICS_POLL_FIRST_SECONDS": str(p.poll_first_seconds),
            "LOGISTICS_POLL_MAX_SECONDS": str(p.poll_first_seconds * 4),
            "LOGISTICS_LOG_LEVEL": "INFO",  # everything the service logs is searched for personal data
            "LOGISTICS_LOG_FORMAT": "json",
            # The simulator and the service share credentials made for this run, as a deployment has its own.
            **fresh_carrier_secrets(),
            "CHAOS_WEBHOOK_SCHEDULE": ",".join(f"{s:g}" for s in p.webhook_schedule),
        }

    async def setup(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        redis_url = await asyncio.to_thread(self.redis.start)
        database_url = await self._database_url()
        self.db = Database(database_url)
        creds = await clients.create(
            self.db, "上街区行政审批系统(混沌演练)", f"http://127.0.0.1:{self.receiver_port}/hooks/logistics"
        )
        self.api_key = creds.api_key
        self.receiver = Receiver(creds.webhook_secret, self.plan.receiver_error_rate, seed=self.plan.seed)
        await self.receiver.start(self.receiver_port)
        env = self._env(database_url, redis_url)
        py = sys.executable
        push_url = f"{self.api_url}/carriers/ems/push"
        specs: dict[str, tuple[list[str], dict[str, str]]] = {
            "ems-sim": (
                [py, "-m", "logistics", "ems-sim", "--port", str(self.sim_port), "--callback-url", push_url],
                env,
            )
        }
        for n, port in enumerate(self.api_ports, 1):
            specs[f"api-{n}"] = ([py, "-m", "logistics", "api"], {**env, "LOGISTICS_PORT": str(port)})
        for n in range(1, self.plan.workers + 1):
            specs[f"worker-{n}"] = ([py, "-m", "chaos.worker"], env)
        if self.plan.apis > 1:
            config = self.work / "haproxy.cfg"
            config.write_text(haproxy_config(self.api_port, self.api_ports))
            specs["haproxy"] = ([haproxy_binary(), "-db", "-f", str(config)], env)
        for name, (argv, child_env) in specs.items():
            self.children[name] = Child(name, argv, child_env, self.logs / f"{name}.log")
            self.children[name].start()
        async with aiohttp.ClientSession() as http:
            await _wait_http(http, f"{self.sim_url}/healthz", 30)
            for port in self.api_ports:
                await _wait_http(http, f"http://127.0.0.1:{port}/readyz", 30)
            await _wait_http(http, f"{self.api_url}/readyz", 30)
            p = self.plan
            share = p.transient_rate / len(TRANSIENT_KINDS)
            await self.sim_put(
                http,
                {
                    "errors": dict.fromkeys(TRANSIENT_KINDS, share),
                    "hang_seconds": p.hang_seconds,
                    "push": {"duplicate_rate": p.push_duplicate_rate, "reorder_rate": p.push_reorder_rate},
                    "clock": {"speed": p.clock_speed},
                    **p.outcomes,
                },
            )
        database = "SQLite" if not self.plan.postgres else f"PostgreSQL{' (private cluster)' if self.pg else ''}"
        self.say(f"stack up in {self.work} (database {database}, {self.plan.apis} API, {self.plan.workers} workers)")

    @property
    def api_url(self) -> str:
        """Where clients and the simulator's pushes go: HAProxy with several API processes, else the one API."""
        return f"http://127.0.0.1:{self.api_port if self.plan.apis > 1 else self.api_ports[0]}"

    def of_kind(self, kind: str) -> list[Child]:
        return [c for name, c in self.children.items() if name.startswith(f"{kind}-")]

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    async def sim_put(self, http: aiohttp.ClientSession, patch: dict[str, Any]) -> None:
        async with http.put(f"{self.sim_url}/admin/faults", json=patch) as resp:
            if resp.status != 200:
                raise RuntimeError(f"simulator refused faults: {resp.status} {await resp.text()}")

    async def sim_get(self, http: aiohttp.ClientSession, path: str) -> Any:
        async with http.get(f"{self.sim_url}{path}", timeout=aiohttp.ClientTimeout(total=120)) as resp:
            return await resp.json()

    # -- load -----------------------------------------------------------------------------------------------

    async def create_all(self) -> None:
        p = self.plan
        started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=p.concurrency)
        timeout = aiohttp.ClientTimeout(total=p.client_timeout)
        indices = iter(range(p.shipments))
        spacing = p.load_seconds / p.shipments if p.shipments else 0.0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def lane() -> None:
                for i in indices:
                    await asyncio.sleep(started + i * spacing - time.monotonic())
                    await self.create_one(http, i)
                    if self.load.created in (min(p.rss_at, p.shipments), p.shipments):
                        self.sample_rss(f"at {self.load.created} shipments")

            await asyncio.gather(*(lane() for _ in range(p.concurrency)))
        self.load.seconds = time.monotonic() - started
        self.mark(f"load done: {self.load.created} created in {self.load.seconds:.1f}s")

    async def create_one(self, http: aiohttp.ClientSession, i: int) -> None:
        """One shipment as an approval system sends it: retried on 503, connection errors and timeouts with the
        same Idempotency-Key until it is answered, honouring Retry-After (capped: the run must go on)."""
        body = shipment_body(i, self.plan.intake_share)
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": f"chaos-{self.run_id}-{i}"}
        for attempt in range(100):
            if attempt:
                self.load.retries += 1
                wait = self.attempts[-1].retry_after if self.attempts and self.attempts[-1].index == i else 0
                await asyncio.sleep(min(5.0, wait or 0.2 * 2 ** min(attempt, 5)) * self.rng.uniform(0.5, 1.0))
            sent = time.monotonic()
            record = Attempt(i, sent - self.load_started)
            self.attempts.append(record)
            try:
                async with http.post(f"{self.api_url}/v1/shipments", json=body, headers=headers) as resp:
                    record.status = resp.status
                    record.content_type = resp.content_type
                    record.retry_after = _seconds(resp.headers.get("Retry-After"))
                    answer = await resp.read()
                    record.took = time.monotonic() - sent
                    if resp.status in (200, 201):
                        parsed = json.loads(answer)
                        self.ids[i] = str(parsed["id"])
                        self.bodies[i] = parsed
                        self.load.created += 1
                        self.load.replayed += resp.headers.get("Idempotent-Replayed") == "true"
                        return
                    if resp.content_type == PROBLEM_JSON:
                        record.problem = str(json.loads(answer).get("type", "")).rsplit("/", 1)[-1]
                    if resp.status >= 500 or resp.status in (408, 409, 429):
                        continue  # the same key again: the answer is the first one, never a second shipment
                    self.load.rejected.append(f"{resp.status} {answer[:200]!r}")
                    return
            except TimeoutError:
                record.error, record.took = "timeout", time.monotonic() - sent
                self.load.connection_errors += 1
            except aiohttp.ClientError:
                record.error, record.took = "connection", time.monotonic() - sent
                self.load.connection_errors += 1
        self.load.rejected.append("gave up after 100 tries")

    def sample_rss(self, label: str) -> None:
        """Memory of every worker and API process, once per label."""
        if label in self.rss:
            return
        self.rss[label] = {}
        for child in [*self.of_kind("worker"), *self.of_kind("api")]:
            found = rss_kib(child.pid)
            self.rss[label][child.name] = (found[0], found[1], time.monotonic() - child.started_at) if found else None

    # -- chaos ----------------------------------------------------------------------------------------------

    async def at(self, offset: float, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await asyncio.sleep(max(0.0, self.load_started + offset - time.monotonic()))
        await action()

    async def chaos(self) -> None:
        p = self.plan
        assert self.receiver is not None
        receiver = self.receiver
        async with aiohttp.ClientSession() as http:

            async def sim_outage() -> None:
                await self.sim_put(http, {"outage": {"seconds": p.sim_outage_seconds, "mode": "503"}})
                self.mark(f"simulator outage for {p.sim_outage_seconds:g}s")

            async def receiver_outage() -> None:
                receiver.outage(p.receiver_outage_seconds)
                self.mark(f"webhook receiver outage for {p.receiver_outage_seconds:g}s")

            async def flush() -> None:
                await asyncio.to_thread(_flushall, self.redis.socket)
                self.mark("Redis FLUSHALL")

            async def restart_redis() -> None:
                await asyncio.to_thread(self.redis.stop)
                self.mark(f"Redis stopped (restart in {p.redis_down_seconds:g}s, same socket)")
                await asyncio.sleep(p.redis_down_seconds)
                await asyncio.to_thread(self.redis.start)
                self.mark("Redis started again")

            faults = [
                self.at(p.sim_outage_at, sim_outage),
                self.at(p.receiver_outage_at, receiver_outage),
                self.at(p.flush_at, flush),
                self.at(p.redis_restart_at, restart_redis),
                self.kill_workers(),
            ]
            if self.pg is not None:
                faults.append(self.at(p.pg_stop_at, lambda: self.restart_postgres(http)))
            if p.api_kill_every is not None:
                faults.append(self.kill_apis(p.api_kill_every))
            await asyncio.gather(*faults)
        self.chaos_done.set()

    async def restart_postgres(self, http: aiohttp.ClientSession) -> None:
        """Fast shutdown (every session ended, transactions rolled back), what clients see meanwhile, start."""
        assert self.pg is not None
        p = self.plan
        await asyncio.to_thread(self.pg.stop, "fast")
        stopped = time.monotonic()
        self.mark(f"PostgreSQL stopped (fast shutdown) for {p.pg_down_seconds:g}s")
        for at in (min(2.0, p.pg_down_seconds / 4), p.pg_down_seconds / 2):  # twice: an API may be restarting
            await asyncio.sleep(max(0.0, stopped + at - time.monotonic()))
            await self.probe_outage(http)
        await asyncio.sleep(max(0.0, stopped + p.pg_down_seconds - time.monotonic()))
        self.outage = (stopped - self.load_started, time.monotonic() - self.load_started)
        await asyncio.to_thread(self.pg.start)
        self.mark("PostgreSQL started again")

    async def probe_outage(self, http: aiohttp.ClientSession) -> None:
        """While the database is down, ask every API process directly: readiness, a create, the pages."""
        timeout = aiohttp.ClientTimeout(total=self.plan.client_timeout)
        for port in self.api_ports:
            base = f"http://127.0.0.1:{port}"
            try:
                async with http.get(f"{base}/readyz", timeout=timeout) as resp:
                    ready = await resp.json(content_type=None)
                    reason = str(ready.get("reason", ""))
                    self.probes.append(
                        Check(f"readyz :{port}", resp.status == 503 and "database" in reason, f"{resp.status} {reason}")
                    )
                started = time.monotonic()
                headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": f"probe-{port}"}
                async with http.post(
                    f"{base}/v1/shipments", json=shipment_body(0, 0.0), headers=headers, timeout=timeout
                ) as resp:
                    problem = await resp.json(content_type=None)
                    took = time.monotonic() - started
                    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
                    ok = (
                        resp.status == 503
                        and resp.content_type == PROBLEM_JSON
                        and kind == "database-unavailable"
                        and "Retry-After" in resp.headers
                    )
                    self.probes.append(
                        Check(
                            f"create :{port}",
                            ok,
                            f"{resp.status} {kind} Retry-After {resp.headers.get('Retry-After')} in {took:.2f}s",
                        )
                    )
                for path in ("/t/ZZZZZZZZZZ", "/a/no-such-token"):
                    async with http.get(f"{base}{path}", headers={"Accept": "text/html"}, timeout=timeout) as resp:
                        text_ = await resp.text()
                        ok = resp.status == 503 and UNAVAILABLE_PAGE_TEXT in text_ and "Traceback" not in text_
                        self.probes.append(Check(f"page {path.split('/')[1]} :{port}", ok, f"{resp.status}"))
            except aiohttp.ClientConnectorError:
                # Killed and being restarted: a new API process refuses to start while the database is down
                # (exit 2) and its supervisor tries again. Not listening is then right; answering wrongly is not.
                self.probes.append(Check(f"probe :{port}", True, "not listening (restarting)"))
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.probes.append(Check(f"probe :{port}", False, f"{type(exc).__name__}"))
        self.mark(f"outage probes: {sum(c.ok for c in self.probes)} of {len(self.probes)} as expected")

    async def kill_apis(self, every: tuple[float, float]) -> None:
        """SIGKILL one API process, in turn, and start it again at once, as a supervisor would."""
        apis = self.of_kind("api")
        end = self.load_started + self.plan.chaos_seconds
        for n in itertools.count():
            await asyncio.sleep(self.rng.uniform(*every))
            if time.monotonic() > end:
                break
            api = apis[n % len(apis)]
            api.check()
            api.kill()
            api.start()
        self.mark(f"API kills stop after {sum(a.kills for a in apis)} SIGKILLs")

    async def kill_workers(self) -> None:
        """SIGKILL the workers in turn (every one of them, in a shuffled order) and start each again."""
        p = self.plan
        workers = self.of_kind("worker")
        self.rng.shuffle(workers)
        end = self.load_started + p.chaos_seconds
        for n in itertools.count():
            await asyncio.sleep(self.rng.uniform(*p.kill_every))
            if time.monotonic() > end:
                break
            worker = workers[n % len(workers)]
            worker.check()
            worker.kill()
            worker.start()
        self.mark(f"worker kills stop after {sum(w.kills for w in workers)} SIGKILLs")

    async def watch(self) -> None:
        """Sample worker memory and notice crashes of the processes we do not kill on purpose."""
        while True:
            await asyncio.sleep(1.0)
            for child in self.children.values():
                if child.process is not None and child.process.poll() is not None:
                    self.mark(f"{child.name} exited by itself with {child.process.returncode}; restarting")
                    child.check()
                    child.start()
            for child in self.children.values():
                child.sample_cpu()
                found = rss_kib(child.pid)
                if found:
                    self.rss_peaks[child.name] = max(self.rss_peaks.get(child.name, 0), found[0])

    # -- drain ----------------------------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        assert self.db is not None
        async with self.db.read() as conn:
            statuses = Counter(
                {
                    r[0]: r[1]
                    for r in await conn.execute(select(shipments.c.status, func.count()).group_by(shipments.c.status))
                }
            )
            deliveries = Counter(
                {
                    r[0]: r[1]
                    for r in await conn.execute(
                        select(webhook_deliveries.c.status, func.count()).group_by(webhook_deliveries.c.status)
                    )
                }
            )
            tasks = Counter(
                {r[0]: r[1] for r in await conn.execute(select(outbox.c.kind, func.count()).group_by(outbox.c.kind))}
            )
        return {"statuses": statuses, "deliveries": deliveries, "tasks": tasks}

    async def drain(self) -> float:
        p = self.plan
        started = time.monotonic()
        deadline = started + p.drain_timeout
        last_print = 0.0
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    snap = await self.snapshot()
                except Exception as exc:  # the database is down (the restart fault): ask again
                    self.say(f"drain: database not answering ({type(exc).__name__})")
                    await asyncio.sleep(1.0)
                    continue
                pushes = await self.sim_get(http, "/admin/pushes")
                open_shipments = sum(n for s, n in snap["statuses"].items() if s not in FINAL)
                busy_tasks = sum(n for k, n in snap["tasks"].items() if k != "track")
                settled = (
                    self.chaos_done.is_set()
                    and open_shipments == 0
                    and snap["deliveries"].get("pending", 0) == 0
                    and busy_tasks == 0
                    and pushes.get("pending", 0) == 0
                    and pushes.get("in_flight", 0) == 0
                )
                now = time.monotonic()
                if settled or now > deadline or now - last_print > 10:
                    last_print = now
                    self.say(
                        f"shipments {dict(snap['statuses'])} webhooks {dict(snap['deliveries'])} "
                        f"outbox {dict(snap['tasks'])} pushes pending {pushes.get('pending')}"
                    )
                if settled:
                    return now - started
                if now > deadline:
                    self.mark(f"drain timed out after {p.drain_timeout:g}s")
                    return now - started
                await asyncio.sleep(1.0)

    # -- checks ---------------------------------------------------------------------------------------------

    async def verify(self) -> None:
        assert self.db is not None and self.receiver is not None
        p, r = self.plan, self.report
        async with self.db.read() as conn:
            rows = {
                row.id: row
                for row in await conn.execute(select(shipments.c.id, shipments.c.status, shipments.c.waybill_no))
            }
            deliveries = [
                row
                for row in await conn.execute(
                    select(
                        webhook_deliveries.c.id,
                        webhook_deliveries.c.shipment_id,
                        webhook_deliveries.c.position,
                        webhook_deliveries.c.sequence,
                        webhook_deliveries.c.type,
                        webhook_deliveries.c.status,
                        webhook_deliveries.c.attempts,
                    ).order_by(webhook_deliveries.c.shipment_id, webhook_deliveries.c.position)
                )
            ]
            labelled = set(
                (await conn.execute(select(label_renders.c.shipment_id).where(label_renders.c.fmt == "pdf"))).scalars()
            )
        async with aiohttp.ClientSession() as http:
            orders = await self.sim_get(http, "/admin/orders")
            parcels = {x["logisticsOrderNo"]: x for x in (await self.sim_get(http, "/admin/parcels"))["parcels"]}
            faults = await self.sim_get(http, "/admin/faults")

        created = [i for i in self.ids if i is not None]
        r.check(
            "shipments created (201)",
            len(created) == p.shipments and not self.load.rejected,
            f"{len(created)}/{p.shipments}; rejected {len(self.load.rejected)} {self.load.rejected[:3]}",
        )
        lost = [i for i in created if i not in rows]
        extra = set(rows) - set(created)
        r.check("shipments lost", not lost, f"{len(lost)} {lost[:5]}")
        r.check("shipments created twice", not extra and len(set(created)) == len(created), f"{len(extra)} extra rows")
        open_ = Counter(row.status for row in rows.values() if row.status not in FINAL)
        r.check("shipments stuck (not final)", not open_, f"{sum(open_.values())} {dict(open_)}")

        counts: dict[str, int] = orders["orders"]
        duplicates = {k: v for k, v in counts.items() if v != 1}
        r.check("duplicate carrier orders", not duplicates, f"{len(duplicates)}; {len(counts)} orders at EMS")
        strangers = set(counts) - set(rows)
        waybilled = {sid: row.waybill_no for sid, row in rows.items() if row.waybill_no}
        missing = [sid for sid in waybilled if sid not in counts]
        r.check("carrier orders without a shipment", not strangers, f"{len(strangers)}")
        r.check("waybills unknown to the carrier", not missing, f"{len(missing)}")
        waybills: dict[str, str] = orders["waybills"]
        mismatched = [sid for sid, no in waybilled.items() if waybills.get(sid) != no]
        r.check("waybill matches the carrier's", not mismatched, f"{len(mismatched)} {mismatched[:3]}")

        wrong: list[str] = []
        for sid, row in rows.items():
            parcel = parcels.get(sid)
            expected = (
                "failed"
                if parcel is None
                else CARRIER_ENDS.get(parcel["state"], f"not final at EMS ({parcel['state']})")
            )
            if row.status != expected:
                wrong.append(f"{sid}: {row.status} vs {expected}")
        final = Counter(row.status for row in rows.values())
        r.check("final status matches the carrier", not wrong, f"{len(wrong)} {wrong[:3]}; {dict(final)}")
        carried = ("delivered", "returned")
        no_waybill = [sid for sid, row in rows.items() if row.status in carried and not row.waybill_no]
        r.check("carried shipments without a waybill", not no_waybill, f"{len(no_waybill)} {no_waybill[:3]}")
        # A voided pickup (failed) or a cancelled order needs no label once it has ended.
        unlabelled = [sid for sid in waybilled if sid not in labelled and rows[sid].status not in NOT_CARRIED]
        r.check("label rendered for every carried shipment", not unlabelled, f"{len(unlabelled)} of {len(waybilled)}")

        await self.check_proofs_and_returns(list(parcels.values()))
        self._dump_arrivals()
        self._check_webhooks(rows, deliveries)
        await self.check_first_answers()
        self.check_client_answers()
        self.check_outage()
        self._figures(orders, faults, final, deliveries)

    async def check_proofs_and_returns(self, parcels: list[dict[str, Any]]) -> None:
        """Issue 17: each delivered shipment's proof names the signer class the carrier drew, a checked code is
        proven, every return has its reason and attempts, nothing is left on its way back; then the purge runs
        and no proof keeps any of the personal data the run sent."""
        assert self.db is not None
        r = self.report
        columns = (shipments.c.id, shipments.c.status, shipments.c.waybill_no, shipments.c.proof)
        async with self.db.read() as conn:
            found = await conn.execute(select(*columns, shipments.c.attempts, shipments.c.last_failure))
            bodies = [dict(row._mapping) for row in found]
        for name, violations in (
            ("proof names the signer class the carrier drew", proof_checks.proof_class_violations(bodies, parcels)),
            ("a code checked at the door is in the proof", proof_checks.code_check_violations(bodies, parcels)),
            ("returned shipments have a reason and attempts", proof_checks.return_violations(bodies, parcels)),
            ("shipments still returning after the drain", proof_checks.returning_violations(bodies)),
        ):
            r.check(name, not violations, f"{len(violations)} {violations[:3]}")
        signers = Counter(b["proof"]["signer"]["class"] for b in bodies if b["proof"])
        r.figure("signer classes in proofs", dict(signers))
        r.figure(
            "returned / failed", dict(Counter(b["status"] for b in bodies if b["status"] in ("returned", "failed")))
        )
        purged = 0
        while batch := await purge_finished(self.db, after=timedelta(0)):  # a batch at a time, as the worker does
            purged += batch
        personal: dict[str, str] = {}
        for i in range(self.plan.shipments):
            personal.update(proof_checks.personal_data(shipment_body(i, self.plan.intake_share)))
        for value in (HALL["name"], HALL["phone"], HALL["address"]):  # the hall's own data is public
            personal.pop(value, None)
        async with self.db.read() as conn:
            after = [dict(row._mapping) for row in await conn.execute(select(*columns))]
        left = proof_checks.purged_proof_violations(after, personal)
        r.check("personal data left in proofs after the purge", not left, f"{len(left)} of {purged} purged {left[:3]}")

    async def check_first_answers(self) -> None:
        """Every create the client saw succeed, after however many tries, got the first answer: the body stored
        for its Idempotency-Key when the shipment was committed (same id, same body)."""
        assert self.db is not None
        async with self.db.read() as conn:
            stored = {
                row.key: row.response_body
                for row in await conn.execute(
                    select(idempotency_records.c.key, idempotency_records.c.response_body).where(
                        idempotency_records.c.key.like(f"chaos-{self.run_id}-%")
                    )
                )
            }
        tries = Counter(a.index for a in self.attempts)
        different = [
            i
            for i, body in enumerate(self.bodies)
            if body is not None and json.loads(stored.get(f"chaos-{self.run_id}-{i}", "null")) != body
        ]
        retried = sum(1 for i, body in enumerate(self.bodies) if body is not None and tries[i] > 1)
        self.report.check(
            "retried creates answered with the first answer",
            not different,
            f"{len(different)} differ {different[:3]}; {retried} succeeded after a retry",
        )

    def check_client_answers(self) -> None:
        """The API never answers a create with a 500, and never leaves one without an answer (a hang)."""
        errors = [a for a in self.attempts if a.status == 500]
        hung = [a for a in self.attempts if a.error == "timeout"]
        self.report.check("creates answered 500", not errors, f"{len(errors)}")
        self.report.check(f"creates without an answer within {self.plan.client_timeout:g}s", not hung, f"{len(hung)}")
        answers = Counter(f"{a.status or a.error}{' ' + a.problem if a.problem else ''}" for a in self.attempts)
        self.report.figure("create attempts by answer", dict(answers.most_common()))

    def check_outage(self) -> None:
        """During the database outage: creates answered 503 database-unavailable with Retry-After, readiness and
        the pages say so (probed on every API process)."""
        if self.outage is None:
            return
        start, end = self.outage
        inside = [a for a in self.attempts if start <= a.sent and a.sent + a.took <= end]
        ours = [a for a in inside if a.content_type in (PROBLEM_JSON, "application/json")]
        wrong = [a for a in ours if not (a.status == 503 and a.problem == "database-unavailable" and a.retry_after)]
        slowest = max((a.took for a in inside), default=0.0)
        self.report.check(
            "creates during the database outage: 503 + Retry-After",
            not wrong and bool(ours),
            f"{len(ours)} API answers, {len(wrong)} otherwise {Counter(a.status for a in wrong)}; "
            f"slowest {slowest:.2f}s",
        )
        failed = [f"{c.name}: {c.detail}" for c in self.probes if not c.ok]
        answered = [c for c in self.probes if c.name.startswith("create") and c.ok]
        self.report.check(
            "readyz, create and pages probed during the outage",
            bool(answered) and not failed,
            f"{len(self.probes) - len(failed)} of {len(self.probes)} as expected {failed[:3]}",
        )

    def _dump_arrivals(self) -> None:
        """Every request the receiver answered, in arrival order, for looking into a failed check afterwards."""
        assert self.receiver is not None
        with (self.work / "webhooks-received.jsonl").open("w") as out:
            for a in self.receiver.arrivals:
                out.write(json.dumps([a.index, a.msg_id, a.shipment_id, a.sequence, a.type, a.answered]) + "\n")

    def _check_webhooks(self, rows: dict[str, Any], deliveries: list[Any]) -> None:
        assert self.receiver is not None
        r, arrivals = self.report, self.receiver.arrivals
        undelivered = Counter(d.status for d in deliveries if d.status != "delivered")
        r.check("webhooks not delivered", not undelivered, f"{sum(undelivered.values())} {dict(undelivered)}")
        first_seen: dict[str, int] = {}
        first_ok: dict[str, int] = {}
        ok_count: Counter[str] = Counter()
        wrong_body = 0
        by_id = {d.id: d for d in deliveries}
        for a in arrivals:
            first_seen.setdefault(a.msg_id, a.index)
            if 200 <= a.answered < 300:
                first_ok.setdefault(a.msg_id, a.index)
                ok_count[a.msg_id] += 1
            d = by_id.get(a.msg_id)
            if d is None or d.shipment_id != a.shipment_id or d.type != a.type or d.sequence != a.sequence:
                wrong_body += 1
        never = [d.id for d in deliveries if d.id not in first_ok]
        r.check("webhooks never accepted by the receiver", not never, f"{len(never)} of {len(deliveries)}")
        r.check("webhooks unknown or with a wrong body", wrong_body == 0, f"{wrong_body}")
        r.check("webhook signatures failing verification", self.receiver.unverified == 0, f"{self.receiver.unverified}")

        # In order per shipment: delivery n+1 is first sent only after n was accepted, and the sequences the
        # receiver accepted never go down.
        per_shipment: dict[str, list[Any]] = defaultdict(list)
        for d in deliveries:
            per_shipment[d.shipment_id].append(d)
        out_of_order: list[str] = []
        regressions = 0
        for sid, items in per_shipment.items():
            for before, after in itertools.pairwise(items):
                ok_at, sent_at = first_ok.get(before.id), first_seen.get(after.id)
                if ok_at is not None and sent_at is not None and sent_at < ok_at:
                    out_of_order.append(f"{sid}: #{after.position} before #{before.position} was accepted")
            accepted = sorted((first_ok[d.id], d.sequence) for d in items if d.id in first_ok)
            regressions += sum(1 for (_, a), (_, b) in itertools.pairwise(accepted) if b < a)
        r.check("webhooks out of order per shipment", not out_of_order, f"{len(out_of_order)} {out_of_order[:3]}")
        r.check("webhook sequence going backwards", regressions == 0, f"{regressions}")
        types: dict[str, set[str]] = defaultdict(set)
        for d in deliveries:
            if d.id in first_ok:
                types[d.shipment_id].add(d.type)
        incomplete = [
            sid for sid, row in rows.items() if row.status == "delivered" and not set(REQUIRED_TYPES) <= types[sid]
        ]
        r.check("delivered shipments announced (delivered, label_ready)", not incomplete, f"{len(incomplete)}")
        # Statuses announced in delivery order never go backwards along the lifecycle.
        backwards = 0
        for items in per_shipment.values():
            ranks = [RANK[t] for d in items if (t := d.type.removeprefix("shipment.")) in RANK]
            backwards += sum(1 for a, b in itertools.pairwise(ranks) if b < a)
        r.check("webhook statuses going backwards", backwards == 0, f"{backwards}")
        full = sum(1 for sid in rows if {f"shipment.{s}" for s in MAIN_PATH} <= types[sid])
        r.figure("webhooks: shipments announcing every main-path status", f"{full} of {len(rows)} (others skipped one)")
        redelivered = sum(n - 1 for n in ok_count.values() if n > 1)
        answers = Counter(a.answered for a in arrivals)
        r.figure("webhooks: deliveries / requests received", f"{len(deliveries)} / {len(arrivals)}")
        r.figure("webhooks: answers", dict(sorted(answers.items())))
        r.figure("webhooks: accepted more than once (at-least-once)", redelivered)
        r.figure("webhooks: most attempts of one delivery", max((d.attempts for d in deliveries), default=0))

    def _figures(
        self, orders: dict[str, Any], faults: dict[str, Any], final: Counter[str], deliveries: list[Any]
    ) -> None:
        r, load = self.report, self.load
        r.figure("shipments", f"{self.plan.shipments} ({dict(final)})")
        rate = load.created / load.seconds if load.seconds else 0
        r.figure("create: seconds / rate", f"{load.seconds:.1f}s / {rate:.0f} per s")
        r.figure(
            "create: retries / connection errors / replays",
            f"{load.retries} / {load.connection_errors} / {load.replayed}",
        )
        r.figure("EMS: API calls by code", orders.get("calls"))
        r.figure("EMS: create-order calls", sum(orders.get("create_calls", {}).values()))
        r.figure("EMS: faults injected", orders.get("faults_injected") or faults.get("injected"))
        pushes = orders.get("pushes") or {}
        r.figure("EMS: pushes", {k: v for k, v in pushes.items() if not isinstance(v, dict | list)})
        for kind in ("worker", "api"):
            group = self.of_kind(kind)
            r.figure(
                f"{kind}: SIGKILLs / starts",
                f"{sum(c.kills for c in group)} / {sum(c.starts for c in group)} "
                f"({', '.join(f'{c.name} {c.kills}' for c in group)})",
            )
        for child in [*self.of_kind("worker"), *self.of_kind("api")]:
            samples = []
            for label, values in self.rss.items():
                value = values.get(child.name)
                samples.append(f"{label} {'n/a' if value is None else f'{value[0] / 1024:.0f}'}")
            peak = self.rss_peaks.get(child.name, 0) / 1024
            r.figure(f"RSS {child.name} (MiB)", f"{'; '.join(samples)}; highest sample {peak:.0f}")
        r.figure("CPU seconds by process", {n: round(c.cpu_seconds, 1) for n, c in self.children.items()})
        if self.outage is not None:
            r.figure("PostgreSQL outage (s after the load started)", f"{self.outage[0]:.1f}–{self.outage[1]:.1f}")

    def check_processes(self) -> None:
        # Exit status 2 is the documented refusal to start while the database or Redis is unreachable (a worker
        # restarted during the Redis restart); the supervisor, here the watcher, starts it again.
        crashes = {n: [x for x in c.unexpected_exits if x != 2] for n, c in self.children.items()}
        crashes = {n: codes for n, codes in crashes.items() if codes}
        refusals = {n: c.unexpected_exits.count(2) for n, c in self.children.items() if 2 in c.unexpected_exits}
        self.report.check("processes that crashed by themselves", not crashes, f"{crashes or 0}")
        self.report.figure("refused to start, dependency down (exit 2)", refusals or 0)

    def search_logs(self) -> None:
        names = {person(i)[0] for i in range(self.plan.shipments)} | {APPLICANT["name"]}
        phones = {person(i)[1] for i in range(self.plan.shipments)} | {APPLICANT["phone"]}
        # JSON encoders that escape non-ASCII would write a name as \\uXXXX: look for that spelling too.
        spellings = {n: (n, json.dumps(n)[1:-1]) for n in names}
        hits: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        uncaught: Counter[str] = Counter()
        orphaned: Counter[str] = Counter()
        deadlocks: Counter[str] = Counter()
        examples: list[str] = []
        files = [*sorted(self.logs.glob("*.log")), self.redis.dir / "redis.log"]  # postgresql.log among them
        for path in files:
            if not path.exists():
                continue
            content = path.read_text(errors="replace")
            for name, forms in spellings.items():
                for form in set(forms):
                    found = content.count(form)
                    if found:
                        hits[f"{path.name}: name"] += found
                        examples.append(f"{path.name}: {name[0]}*")
            for phone in PHONE_PATTERN.findall(content):
                if phone in phones:
                    hits[f"{path.name}: phone"] += 1
                    examples.append(f"{path.name}: {phone[:3]}****{phone[-2:]}")
            for pattern in ADDRESS_PATTERNS:
                found = len(pattern.findall(content))
                if found:
                    hits[f"{path.name}: address"] += found
                    examples.append(f"{path.name}: address {pattern.pattern}")
            lines = content.splitlines()
            for n, line in enumerate(lines):
                # PostgreSQL aborts one of two transactions that lock the same rows in opposite orders. Each is
                # retried, so nothing is lost, but every one is a lock-order bug (and cost the run its drain).
                if "deadlock detected" in line:
                    deadlocks[path.name] += 1
                if '"level":"error"' in line or "Traceback" in line:
                    errors[path.name] += 1
                # Structured logs keep a logged traceback inside one JSON line; a bare one is an exception
                # nothing caught (a crash, or a task that died without a word) — except in a label renderer
                # being spawned when we SIGKILLed its worker: it finds its parent's pipe closed and exits.
                if line.startswith("Traceback"):
                    block = "\n".join(lines[n : n + 12])
                    if "multiprocessing/spawn.py" in block and "EOFError" in block:
                        orphaned[path.name] += 1
                    else:
                        uncaught[path.name] += 1
            self.report.figure(f"log {path.name}", f"{path.stat().st_size / 1e6:.1f} MB")
        self.report.check(
            "personal data in logs (names, phones, addresses)",
            not hits,
            f"{sum(hits.values())} {dict(hits)} {sorted(set(examples))[:5]}",
        )
        self.report.figure("log lines at error level or with a traceback", dict(errors) or 0)
        self.report.check("uncaught exceptions in the logs", not uncaught, f"{dict(uncaught) or 0}")
        self.report.check("database deadlocks", not deadlocks, f"{dict(deadlocks) or 0}")
        self.report.figure("renderer spawns cut short by a SIGKILL (expected)", dict(orphaned) or 0)

    # -- teardown -------------------------------------------------------------------------------------------

    async def teardown(self) -> None:
        order = [*self.of_kind("worker"), *self.of_kind("api"), *self.of_kind("haproxy")]
        order += [c for c in self.children.values() if c not in order]
        for child in order:
            await asyncio.to_thread(child.stop)
        if self.receiver is not None:
            await self.receiver.stop()
        if self.db is not None:
            await self.db.dispose()
        await asyncio.to_thread(self.redis.stop)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop, "fast")
            (self.logs / "postgresql.log").write_text(self.pg.log_text())  # searched with ours for deadlocks
            if not self.plan.keep_database:
                await asyncio.to_thread(self.pg.destroy)
        elif self.pg_database and not self.plan.keep_database and self.plan.postgres:
            await _admin_sql(
                normalise_database_url(self.plan.postgres), f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)'
            )

    def _leftovers(self) -> list[int]:
        """Our children and theirs (by the data dir in their environment), HAProxy and PostgreSQL (by the
        paths on their command lines)."""
        marker = f"LOGISTICS_DATA_DIR={self.work}".encode()
        paths = [str(self.pg.dir).encode()] if self.pg is not None else []  # PostgreSQL's own environment
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
                zombie = "\nState:\tZ" in (entry / "status").read_text()
            except OSError:
                continue
            ours = marker in environ.split(b"\0") or any(path in cmdline for path in paths)
            if ours and not zombie:
                found.append(int(entry.name))
        return found

    async def reap_leftovers(self) -> None:
        """Processes our children left behind (a SIGKILLed worker's label renderers): counted, then ended."""
        deadline = time.monotonic() + 10  # renderers and resource trackers notice a dead parent within seconds
        found = self._leftovers()
        for _ in range(20):
            if not found or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
            found = self._leftovers()
        described = {pid: _cmdline(pid) for pid in found}
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shown = [described[pid] for pid in found[:3]]
        self.report.check("processes left running after the stop", not found, f"{len(found)} {shown}")

    async def run(self) -> Report:
        started = time.monotonic()
        watcher: asyncio.Task[None] | None = None
        chaos: asyncio.Task[None] | None = None
        try:
            await self.setup()
            self.load_started = time.monotonic()
            self.mark(f"load starts: {self.plan.shipments} shipments, {self.plan.concurrency} at a time")
            watcher = asyncio.create_task(self.watch())
            chaos = asyncio.create_task(self.chaos())
            await self.create_all()
            drained = await self.drain()
            self.report.figure("drain: seconds after the load", f"{drained:.1f}")
            self.sample_rss("after the drain")
            await self.verify()
            self.report.figure("total run: seconds", f"{time.monotonic() - started:.1f}")
        finally:
            for task in (chaos, watcher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.check_processes()
            await self.teardown()
            await self.reap_leftovers()
        self.search_logs()
        return self.report


def _cmdline(pid: int) -> str:
    """What a leftover process is, and what it waits on (for the report)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[-70:]
        status = dict(re.findall(r"^(PPid|Threads):\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M))
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "?"
    return f"{cmd} ppid={status.get('PPid')} threads={status.get('Threads')} wchan={wchan}"


def _flushall(socket_path: Path) -> None:
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()


async def _admin_sql(admin_url: str, sql: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _wait_http(http: aiohttp.ClientSession, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:g}s")
        await asyncio.sleep(0.2)


async def run_plan(plan: Plan) -> Report:
    return await ChaosRun(plan).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=PRIVATE_POSTGRES,
        help="alone: a PostgreSQL cluster of the run's own, restarted once mid-load; with an admin URL: a fresh "
        "database on that server, created and dropped (never restarted)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (SIGKILLed in turn)")
    parser.add_argument("--apis", type=int, default=1, help="API processes; more than one: behind HAProxy")
    parser.add_argument("--load-seconds", type=float, help="spread the creates over this long")
    parser.add_argument("--no-api-kills", action="store_true", help="with --apis > 1, do not SIGKILL API processes")
    parser.add_argument("--ci", action="store_true", help="the reduced CI timings (short outages, fast parcels)")
    parser.add_argument("--work-dir", type=Path, help="where logs and the SQLite file go (default: a temp dir)")
    parser.add_argument("--step-seconds", type=float, help="simulator seconds per tracking step")
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--drain-timeout", type=float)
    parser.add_argument("--chaos-seconds", type=float, help="how long worker kills go on")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        "shipments": args.shipments,
        "postgres": args.postgres,
        "work_dir": args.work_dir,
        "workers": args.workers,
        "apis": args.apis,
    }
    if args.apis > 1 and not args.no_api_kills:
        overrides["api_kill_every"] = (10.0, 20.0)
    if args.postgres == PRIVATE_POSTGRES or "api_kill_every" in overrides:
        # The outage and the kills must meet clients still sending: about 70 creates a second.
        overrides["load_seconds"] = max(30.0, args.shipments / 70)
    for name in ("step_seconds", "concurrency", "drain_timeout", "chaos_seconds", "load_seconds"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    plan = Plan.ci(**overrides) if args.ci else replace(Plan(), **overrides)
    plan.keep_database = args.keep_database

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt  # a SIGTERM unwinds like Ctrl-C, so the children and Redis are stopped

    signal.signal(signal.SIGTERM, interrupted)
    report = asyncio.run(run_plan(plan))
    print(report.text(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
