"""While the database is down the API answers, and says so: a create gets 503 problem+json with Retry-After
within its timeout (never a 500, never a hang), /readyz is not ready and names the database, the people's pages
show a notice in Chinese instead of a stack trace; when the database is back the same process serves again.

PostgreSQL: a private cluster (chaos/postgres.py, initdb from the machine's binaries), really stopped with a fast
shutdown, so the shared test server is never touched; skipped when the binaries are absent. SQLite: a database
file SQLite cannot read.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chaos.postgres import PrivatePostgres, binaries
from logistics.accounts import clients
from logistics.api.app import create_app
from logistics.config import Settings, fresh_carrier_secrets, normalise_database_url
from logistics.storage import migrate
from logistics.storage.db import Database

from support import auth, delivery_body

UNAVAILABLE_TEXT = "暂时无法服务，请稍后再试"
ANSWER_WITHIN = 12.0  # seconds: the group commit's own timeout (10 s) plus the slack of a busy machine


@pytest.fixture(scope="module")
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivatePostgres, str]]:
    if binaries() is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql: outage tests on PostgreSQL skipped")
    cluster = PrivatePostgres(tmp_path_factory.mktemp("outage"))
    admin = normalise_database_url(cluster.start())

    async def create_database() -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text('CREATE DATABASE "logistics"'))
        await engine.dispose()

    asyncio.run(create_database())
    url = admin.rsplit("/", 1)[0] + "/logistics"
    migrate.upgrade(url)
    yield cluster, url
    cluster.destroy()


def _settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        public_base_url="http://127.0.0.1:8080",
        queue_name=f"test:{uuid.uuid4().hex[:8]}",
        log_format="text",
        label_processes=0,
        **{k.removeprefix("LOGISTICS_").lower(): v for k, v in fresh_carrier_secrets().items()},
    )


@pytest.fixture
async def postgres_api(
    private_postgres: tuple[PrivatePostgres, str], tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[TestClient, clients.Credentials, PrivatePostgres]]:
    cluster, url = private_postgres
    await asyncio.to_thread(cluster.start)  # a test that failed half-way may have left it stopped
    db = Database(url)
    hall = await clients.create(db, f"上街区行政审批系统-{uuid.uuid4().hex[:6]}")  # one module-wide database
    client = TestClient(TestServer(create_app(_settings(tmp_path, url, redis_url), db=db)))
    await client.start_server()
    try:
        yield client, hall, cluster
    finally:
        await asyncio.to_thread(cluster.start)
        await client.close()
        await db.dispose()


async def _stopped(cluster: PrivatePostgres) -> None:
    await asyncio.to_thread(cluster.stop, "fast")


async def test_a_create_while_postgresql_is_stopped_is_a_503_with_retry_after_in_time(
    postgres_api: tuple[TestClient, clients.Credentials, PrivatePostgres],
) -> None:
    api, hall, cluster = postgres_api
    assert (await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).status == 201
    await _stopped(cluster)
    started = time.monotonic()
    resp = await api.post(
        "/v1/shipments", json=delivery_body(), headers={**auth(hall), "Idempotency-Key": "outage-410106-00001"}
    )
    took = time.monotonic() - started
    problem = await resp.json()
    assert resp.status == 503 and resp.content_type == "application/problem+json"
    assert problem["type"].endswith("/database-unavailable")
    assert int(resp.headers["Retry-After"]) > 0
    assert took < ANSWER_WITHIN


async def test_readyz_says_the_database_is_unreachable_while_postgresql_is_stopped(
    postgres_api: tuple[TestClient, clients.Credentials, PrivatePostgres],
) -> None:
    api, _, cluster = postgres_api
    assert (await api.get("/readyz")).status == 200
    await _stopped(cluster)
    resp = await api.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["checks"]["database"] == "database unreachable" and body["checks"]["redis"] == "ok"
    assert body["reason"] == "database unreachable"


async def test_the_tracking_page_shows_a_chinese_notice_while_postgresql_is_stopped(
    postgres_api: tuple[TestClient, clients.Credentials, PrivatePostgres],
) -> None:
    api, _, cluster = postgres_api
    await _stopped(cluster)
    resp = await api.get("/t/K7QX2M9PLC", headers={"Accept": "text/html"})
    page = await resp.text()
    assert resp.status == 503 and resp.content_type == "text/html"
    assert UNAVAILABLE_TEXT in page and "Traceback" not in page
    assert int(resp.headers["Retry-After"]) > 0


async def test_the_same_process_creates_again_once_postgresql_is_back(
    postgres_api: tuple[TestClient, clients.Credentials, PrivatePostgres],
) -> None:
    api, hall, cluster = postgres_api
    key = {**auth(hall), "Idempotency-Key": "outage-410106-00002"}
    await _stopped(cluster)
    assert (await api.post("/v1/shipments", json=delivery_body(), headers=key)).status == 503
    await asyncio.to_thread(cluster.start)
    created = await api.post("/v1/shipments", json=delivery_body(), headers=key)
    assert created.status == 201
    replayed = await api.post("/v1/shipments", json=delivery_body(), headers=key)
    assert replayed.status == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert (await replayed.json())["id"] == (await created.json())["id"]
    assert (await api.get("/readyz")).status == 200


@pytest.fixture
async def unreadable_sqlite_api(tmp_path: Path, redis_url: str) -> AsyncIterator[TestClient]:
    """An API whose SQLite file holds something SQLite cannot read (a file restored from the wrong backup)."""
    path = tmp_path / "logistics.db"
    path.write_bytes(b"\x00not a database: restored from the wrong backup\x00" * 200)
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    client = TestClient(TestServer(create_app(_settings(tmp_path, url, redis_url), db=db)))
    await client.start_server()
    yield client
    await client.close()
    await db.dispose()


async def test_a_create_on_an_unreadable_sqlite_file_is_a_503_not_a_500(unreadable_sqlite_api: TestClient) -> None:
    resp = await unreadable_sqlite_api.post(
        "/v1/shipments", json=delivery_body(), headers={"Authorization": "Bearer lk_live_0123456789abcdef"}
    )
    assert resp.status == 503 and (await resp.json())["type"].endswith("/database-unavailable")
    assert "Retry-After" in resp.headers


async def test_readyz_and_the_tracking_page_on_an_unreadable_sqlite_file(unreadable_sqlite_api: TestClient) -> None:
    ready = await unreadable_sqlite_api.get("/readyz")
    assert ready.status == 503 and (await ready.json())["checks"]["database"] == "database unreachable"
    page = await unreadable_sqlite_api.get("/t/K7QX2M9PLC", headers={"Accept": "text/html"})
    assert page.status == 503 and UNAVAILABLE_TEXT in await page.text()
