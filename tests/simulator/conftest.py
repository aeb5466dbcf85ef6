"""Fixtures: a running simulator over real HTTP and a real local push receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sim_fixtures import AUTHORIZATION, SENDER_NO, SIGN_KEY, Harness, Receiver

from carriers.simulator.config import SimConfig
from carriers.simulator.server import create_app, get_simulator


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> Harness:
        settings: dict[str, Any] = {
            "sender_no": SENDER_NO,
            "authorization": AUTHORIZATION,
            "sign_key": SIGN_KEY,
            "seed": 20261126,
            "push_retry_seconds": 0.02,
            "push_timeout_seconds": 1.0,
        }
        settings.update(overrides)
        app = create_app(SimConfig(**settings))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Harness(client, get_simulator(app))

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def sim(make_sim: Callable[..., Awaitable[Harness]]) -> Harness:
    return await make_sim()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/carriers/ems/push", rec.handle)
    server = TestServer(app)
    await server.start_server()
    rec.url = str(server.make_url("/carriers/ems/push"))
    yield rec
    rec.release.set()
    await server.close()
