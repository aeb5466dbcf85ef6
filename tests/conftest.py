"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, the real API over HTTP.

PostgreSQL tests need LOGISTICS_TEST_POSTGRES_URL (CI sets it); without it they are skipped with a message
that the summary prints. Redis comes from LOGISTICS_TEST_REDIS_URL, or a private redis-server is started.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from logistics.accounts import clients
from logistics.api.app import create_app
from logistics.config import Settings, fresh_carrier_secrets, normalise_database_url
from logistics.domain.tables import metadata
from logistics.redis.private_server import PrivateRedis
from logistics.storage import migrate
from logistics.storage.db import Database

POSTGRES_URL = os.environ.get("LOGISTICS_TEST_POSTGRES_URL", "")
NO_POSTGRES = (
    "PostgreSQL half skipped: set LOGISTICS_TEST_POSTGRES_URL (CI uses postgresql://postgres@127.0.0.1:5432/test)"
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not POSTGRES_URL:
        terminalreporter.write_line(f"NOTE: {NO_POSTGRES}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("LOGISTICS_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A fresh database for this test run, migrated once: parallel runs on one server never meet."""
    import asyncio

    from sqlalchemy.engine import make_url

    admin_url = normalise_database_url(POSTGRES_URL)
    name = f"logistics_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'logistics.db'}"
        migrate.upgrade(url)
        return url
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    return request.getfixturevalue("postgres_schema")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    if database.dialect == "postgresql":
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        async with database.write() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield database
    await database.dispose()


@pytest.fixture
async def probe(db: Database) -> AsyncIterator[str]:
    """A table of one row, counter 0 (for tests of transactions themselves)."""
    table = f"probe_{uuid.uuid4().hex[:8]}"
    async with db.write() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await conn.execute(text(f"INSERT INTO {table} (id, n) VALUES (1, 0)"))
    yield table
    async with db.write() as conn:
        await conn.execute(text(f"DROP TABLE {table}"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        public_base_url="http://127.0.0.1:8080",
        queue_name=f"test:{uuid.uuid4().hex[:8]}",  # each test its own arq queue on the shared Redis
        log_format="text",
        sweep_interval_seconds=1,
        lease_seconds=5,
        label_processes=0,  # render in threads, where tests can observe rendering; one test covers the pool
        **{k.removeprefix("LOGISTICS_").lower(): v for k, v in fresh_carrier_secrets().items()},
    )


@pytest.fixture
async def api(settings: Settings, db: Database) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def hall(db: Database) -> clients.Credentials:
    return await clients.create(db, "上街区行政审批系统")


@pytest.fixture
async def other_hall(db: Database) -> clients.Credentials:
    return await clients.create(db, "二七区行政审批系统")
