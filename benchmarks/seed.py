"""Fill a migrated database with what the service would hold after months of work, in bulk (the console and 公示
benchmarks share it).

    .venv/bin/python -m benchmarks.seed --database-url URL --shipments 1000000 --months 24 --departments 30 [--seed 1]

The rows come from benchmarks/seed_rows.py (deterministic for a seed). PostgreSQL gets them by COPY (asyncpg's
binary copy, foreign-key triggers off for the load: the rows are generated consistent); SQLite by executemany in
one transaction per chunk. Chunks of a few thousand shipments keep memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import multiprocessing
import os
import sqlite3
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from benchmarks.seed_rows import Generator, Seeded, departments
from logistics.storage import migrate
from logistics.storage.db import Database, DatabaseUnavailable, describe_db_error, sqlite_timestamp

BLOCK = 5000  # shipments per generator (and per transaction)
NULL = r"\N"
CLIENT_NAMES = ("郑州市一体化政务服务平台", "郑州市工程建设项目审批管理系统", "河南省人社一体化平台")


@dataclass
class SeedSummary:
    shipments: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    departments: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _plain(value: Any) -> Any:
    """A value as the driver wants it: JSON as text; on SQLite, times as SQLAlchemy stores them too."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return sqlite_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return _plain(value)


def _batches(chunk: list[Seeded]) -> dict[str, list[dict[str, Any]]]:
    return {
        "shipments": [s.shipment for s in chunk],
        "shipment_cases": [c for s in chunk for c in s.cases],
        "shipment_events": [e for s in chunk for e in s.events],
        "complaints": [c for s in chunk for c in s.complaints],
        "ratings": [r for s in chunk for r in s.ratings],
        "follow_ups": [f for s in chunk for f in s.follow_ups],
    }


def _accounts(gen_seed: int, now: datetime, depts: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The approval systems (clients) and a clerk per department (their tokens unusable: only a hash is kept)."""
    made = now - timedelta(days=800)

    def digest(text: str) -> str:
        return hashlib.sha256(f"{gen_seed}:{text}".encode()).hexdigest()

    clients = [
        {
            "id": f"cli_SEED{gen_seed:04d}{i:02d}",
            "name": name,
            "webhook_url": None,
            "webhook_secret": "whsec_" + digest(name)[:40],
            "created_at": made,
        }
        for i, name in enumerate(CLIENT_NAMES)
    ]
    clerks = [
        {
            "id": f"stf_SEED{gen_seed:04d}{i:03d}",
            "name": f"窗口{i + 1:02d}号",
            "role": "clerk",
            "departments": [d],
            "token_prefix": "seed",
            "token_hash": digest(f"clerk{i}"),
            "created_at": made,
        }
        for i, d in enumerate(depts)
    ]
    return clients, clerks


async def seed(
    db: Database, *, shipments: int, months: int, departments: int, seed: int, now: datetime, jobs: int = 2
) -> SeedSummary:
    """Write ``shipments`` shipments created over ``months`` months before ``now`` across ``departments``
    departments. The shipments come in blocks of BLOCK, each from its own seeded generator, so the data depends
    on ``seed`` only; on PostgreSQL ``jobs`` processes generate and COPY blocks side by side."""
    started = time.perf_counter()
    dept_names = [d.name for d in departments_of(departments)]
    client_rows, clerk_rows = _accounts(seed, now, dept_names)
    plan = _Plan(
        seed=seed,
        now=now,
        months=months,
        departments=departments,
        clients=[c["id"] for c in client_rows],
        clerks={c["departments"][0]: c["id"] for c in clerk_rows},
        url=make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        if not db.is_sqlite
        else make_url(db.url).database or "",
    )
    summary = SeedSummary(departments=dept_names, clients=plan.clients)
    blocks = [(b, min(BLOCK, shipments - b * BLOCK)) for b in range(-(-shipments // BLOCK))]
    if db.is_sqlite:
        conn = sqlite3.connect(plan.url, isolation_level=None, check_same_thread=False)
        try:
            _sqlite_write(conn, {"clients": client_rows, "staff": clerk_rows}, summary)
            for block, size in blocks:
                batches = _batches(_generate(plan, block, size))
                await asyncio.to_thread(_sqlite_write, conn, batches, summary)
            await asyncio.to_thread(conn.execute, "ANALYZE")
        finally:
            conn.close()
    else:
        await _pg_copy(plan.url, {"clients": client_rows, "staff": clerk_rows}, summary)
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = await asyncio.gather(*(loop.run_in_executor(pool, _pg_block, plan, b, n) for b, n in blocks))
        for part in done:
            for table, count in part.rows.items():
                summary.rows[table] = summary.rows.get(table, 0) + count
        conn = await asyncpg.connect(plan.url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
    summary.shipments = shipments
    summary.seconds = time.perf_counter() - started
    return summary


def departments_of(count: int) -> list[Any]:
    return departments(count)


@dataclass(frozen=True)
class _Plan:
    seed: int
    now: datetime
    months: int
    departments: int
    clients: list[str]
    clerks: dict[str, str]
    url: str  # a plain postgresql:// URL for asyncpg, or the SQLite file


def _generate(plan: _Plan, block: int, size: int) -> list[Seeded]:
    gen = Generator(
        seed=f"{plan.seed}:{block}",
        now=plan.now,
        months=plan.months,
        department_count=plan.departments,
        clients=plan.clients,
        clerks=plan.clerks,
    )
    gen.serial = block * BLOCK  # waybills stay unique across blocks
    return [gen.shipment() for _ in range(size)]


def _pg_block(plan: _Plan, block: int, size: int) -> SeedSummary:
    """In a worker process: one block generated and copied in."""
    part = SeedSummary()
    asyncio.run(_pg_copy(plan.url, _batches(_generate(plan, block, size)), part))
    return part


def _csv_value(value: Any) -> Any:
    if value is None:
        return NULL
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _plain(value)


async def _pg_copy(url: str, batches: dict[str, list[dict[str, Any]]], summary: SeedSummary) -> None:
    """One transaction of COPYs in CSV (parsed by the server in C; nothing to encode per field here)."""
    conn = await asyncpg.connect(url)
    try:
        # Foreign-key checks are triggers: off for this session's load (every row refers to one written first).
        await conn.execute("SET session_replication_role = replica")
        async with conn.transaction():
            for table, rows in batches.items():
                if not rows:
                    continue
                columns = list(rows[0])
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerows([_csv_value(r[c]) for c in columns] for r in rows)
                await conn.copy_to_table(
                    table, source=io.BytesIO(out.getvalue().encode()), columns=columns, format="csv", null=NULL
                )
                summary.rows[table] = summary.rows.get(table, 0) + len(rows)
    finally:
        await conn.close()


def _sqlite_write(conn: sqlite3.Connection, batches: dict[str, list[dict[str, Any]]], summary: SeedSummary) -> None:
    conn.execute("BEGIN")
    for table, rows in batches.items():
        if not rows:
            continue
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        conn.executemany(sql, [tuple(_sqlite(r[c]) for c in columns) for r in rows])
        summary.rows[table] = summary.rows.get(table, 0) + len(rows)
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--departments", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="processes generating rows (PostgreSQL)")
    parser.add_argument("--now", help="ISO time the history ends at (default: now)")
    args = parser.parse_args()
    try:
        now = datetime.fromisoformat(args.now).astimezone(UTC) if args.now else datetime.now(UTC)
    except ValueError:
        parser.error(f"--now: not an ISO time: {args.now!r}")

    async def run() -> SeedSummary:
        from logistics.config import normalise_database_url

        url = normalise_database_url(args.database_url)
        await migrate.upgrade_async(url)
        db = Database(url)
        try:
            return await seed(
                db,
                shipments=args.shipments,
                months=args.months,
                departments=args.departments,
                seed=args.seed,
                now=now,
                jobs=args.jobs,
            )
        finally:
            await db.dispose()

    try:
        summary = asyncio.run(run())
    except (DBAPIError, DatabaseUnavailable, OSError) as exc:  # no such database, server down, unwritable file
        sys.exit(f"seed: cannot use {make_url(args.database_url)!r}: {describe_db_error(exc)}")
    rate = summary.shipments / summary.seconds if summary.seconds else 0.0
    print(
        f"seeded {summary.shipments:,} shipments in {summary.seconds:.1f} s ({rate:,.0f}/s); rows {summary.rows}; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
