"""Webhook targets inside our network are refused (PRODUCT §9): by the operator's CLI when the URL alone shows it,
and in any case at connect time, when a client asks for a delivery through the management API.

The webhook library's own tests cover the address tables and the connector; tests/webhooks_app covers blocked
deliveries driven from the database. Here: every way an operator sets a URL, and the API-triggered path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from security_support import advance, assert_problem, create
from sqlalchemy import select

from logistics import cli
from logistics.accounts import clients
from logistics.config import Settings
from logistics.domain.tables import clients as clients_table
from logistics.domain.tables import webhook_attempts, webhook_deliveries
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime, process_due
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database

from support import auth, delivery_body, eventually

RunCli = Callable[..., Awaitable[tuple[int, str, str]]]

OFF_LIMITS = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost/hooks",
    "http://[::1]/hooks",
    "http://10.12.0.8/hooks",
    "http://172.16.3.4/hooks",
    "http://192.168.1.20/hooks",
    "http://100.64.0.9/hooks",  # carrier-grade NAT
    "http://0.0.0.0:6379/",  # Redis on this machine
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud metadata
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
]


@pytest.fixture
def run_cli(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> RunCli:
    """The operator's CLI against the test database, with the production address policy (no exceptions)."""
    monkeypatch.setenv("LOGISTICS_DATABASE_URL", db.url)
    monkeypatch.setenv("LOGISTICS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOGISTICS_WEBHOOK_ALLOW_LOOPBACK", "false")
    monkeypatch.setattr(cli.logs, "setup", lambda *a, **k: None)  # keep pytest's log capture

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


async def stored_url(db: Database, name: str) -> str | None:
    async with db.read() as conn:
        return (await conn.execute(select(clients_table.c.webhook_url).where(clients_table.c.name == name))).scalar()


@pytest.mark.parametrize("url", OFF_LIMITS)
async def test_set_webhook_refuses_an_internal_target(
    db: Database, hall: clients.Credentials, run_cli: RunCli, url: str
) -> None:
    code, out, err = await run_cli("clients", "set-webhook", "--client", hall.id, "--url", url)
    assert (code, out) == (2, "")
    assert "not allowed" in err
    assert await stored_url(db, hall.name) is None


@pytest.mark.parametrize("url", OFF_LIMITS)
async def test_clients_create_refuses_an_internal_target(db: Database, run_cli: RunCli, url: str) -> None:
    code, out, err = await run_cli("clients", "create", "--name", "上街区不动产登记系统", "--webhook-url", url)
    assert code == 2
    assert "lgk_" not in out  # no client, so no key was shown
    assert "not allowed" in err
    assert await clients.list_all(db) == []


async def test_clients_create_accepts_a_public_target(db: Database, run_cli: RunCli) -> None:
    url = "https://bdc.sj-zwfw.example/hooks/logistics"
    code, _, err = await run_cli("clients", "create", "--name", "上街区不动产登记系统", "--webhook-url", url)
    assert code == 0, err
    assert await stored_url(db, "上街区不动产登记系统") == url


class Intranet:
    """A service on this machine that a webhook must never reach."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._hit)
        self.server = TestServer(app, host="127.0.0.1")

    async def _hit(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.json_response({"AccessKeyId": "STS.internal", "SecretAccessKey": "internal-secret"})


@pytest.fixture
async def intranet() -> AsyncIterator[Intranet]:
    service = Intranet()
    await service.server.start_server()
    yield service
    await service.server.close()


@pytest.fixture
async def worker(settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    """The webhook side of a worker with the production policy (settings default: nothing private, no loopback)."""
    assert settings.webhook_allow_loopback is False
    rt = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    webhook_delivery.setup(rt)
    yield rt
    await rt.services[webhook_delivery.SENDER].close()


def spellings(port: int) -> list[str]:
    """Ways to write this machine that a URL check alone might let through; the connect-time check does not."""
    return [
        f"http://127.0.0.1:{port}/latest/meta-data/",
        f"http://2130706433:{port}/latest/meta-data/",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/latest/meta-data/",
        f"http://127.1:{port}/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{port}/latest/meta-data/",
        f"http://localhost:{port}/latest/meta-data/",
    ]


@pytest.mark.parametrize("n", range(6))
async def test_a_delivery_requested_through_the_api_never_reaches_an_internal_service(
    api: TestClient,
    db: Database,
    hall: clients.Credentials,
    intranet: Intranet,
    worker: Runtime,
    n: int,
) -> None:
    # A URL stored when the policy allowed it (or set before there was one); the API only re-enables and replays.
    url = spellings(intranet.server.port or 0)[n]
    await clients.set_webhook(db, hall.id, url)
    shipment = await create(api, hall, delivery_body())
    await advance(db, shipment["id"], "ordered", waybill_no="1295780519876")
    assert (await api.post("/v1/webhook-endpoint/enable", headers=auth(hall))).status == 200

    async def attempted() -> list[dict[str, object]]:
        await process_due(worker)
        async with db.read() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(webhook_attempts))]

    (attempt,) = await eventually(attempted, timeout=10)
    assert attempt["status_code"] is None
    # Refused by the address policy at connect time, or (numeric spellings) by aiohttp before any lookup.
    assert any(why in str(attempt["error"]) for why in ("blocked by webhook address policy", "not a canonical IPv4"))
    async with db.read() as conn:
        delivery_id = (await conn.execute(select(webhook_deliveries.c.id))).scalar_one()
    resp = await api.post(f"/v1/webhook-deliveries/{delivery_id}/redeliver", headers=auth(hall))
    assert resp.status == 202
    await process_due(worker)
    listed = await (await api.get(f"/v1/webhook-deliveries/{delivery_id}", headers=auth(hall))).text()
    assert "internal-secret" not in listed and "STS.internal" not in listed
    assert intranet.hits == []


async def test_the_management_api_cannot_set_a_webhook_url(api: TestClient, hall: clients.Credentials) -> None:
    # Only operators set targets; the API has no write path for them (so none to check).
    for method in ("PUT", "PATCH", "POST"):
        resp = await api.request(
            method, "/v1/webhook-endpoint", json={"url": "http://169.254.169.254/"}, headers=auth(hall)
        )
        await assert_problem(resp, 405)
