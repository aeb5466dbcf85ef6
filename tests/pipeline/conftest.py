"""The whole pipeline over real HTTP: the EMS simulator, the dispatch API, an arq worker, real Redis, and the
database (SQLite and PostgreSQL through the shared ``db`` fixture).

``make_stack(sim={...}, worker=True, **settings)`` starts everything and returns a ``Stack`` with the helpers
the tests share; ``stack`` is the default one. Outcomes are awaited by polling the database with a deadline,
never by fixed sleeps.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pipeline_support import Stack, StackFactory

from carriers.simulator.config import SimConfig
from carriers.simulator.server import create_app as create_sim_app
from carriers.simulator.server import get_simulator
from logistics.accounts import clients
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.storage.db import Database


@pytest.fixture
async def make_stack(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[StackFactory]:
    made: list[tuple[Stack, TestServer]] = []

    async def make(*, sim: dict[str, Any] | None = None, worker: bool = True, **overrides: Any) -> Stack:
        assert not made, "one stack per test"
        # The API's port stays bound until the simulator has its own: else the OS may hand the simulator the
        # very port just chosen, and the API cannot bind it (seen in CI: "Address already in use").
        reserved = socket.socket()
        reserved.bind(("127.0.0.1", 0))
        api_port = int(reserved.getsockname()[1])
        sim_config: dict[str, Any] = {
            "sender_no": settings.ems_sender_no,
            "authorization": settings.ems_authorization,
            "sign_key": settings.ems_sign_key,
            "callback_url": f"http://127.0.0.1:{api_port}/carriers/ems/push",
            "step_seconds": 0,  # the manual clock: tests move parcels with POST /admin/tick
            "seed": 20180806,
            "push_retry_seconds": 0.2,
            "push_timeout_seconds": 2.0,
        }
        sim_config.update(sim or {})
        sim_app = create_sim_app(SimConfig(**sim_config))
        sim_client = TestClient(TestServer(sim_app, host="127.0.0.1"))
        try:
            await sim_client.start_server()
        finally:
            reserved.close()
        # Quick enough for tests; every value is an ordinary setting an operator could choose.
        values: dict[str, Any] = {
            "ems_base_url": str(sim_client.make_url("")).rstrip("/"),
            "ems_timeout_seconds": 2.0,
            "carrier_retry_seconds": 5.0,
            "sweep_interval_seconds": 1,
            "lease_seconds": 5,
        }
        values.update(overrides)
        for name, value in values.items():
            setattr(settings, name, value)
        api_server = TestServer(create_app(settings, db=db), host="127.0.0.1", port=api_port)
        api_client = TestClient(api_server)
        await api_client.start_server()
        hall = await clients.create(db, "上街区行政审批系统")
        stack = Stack(settings, db, api_client, sim_client, get_simulator(sim_app), hall, tmp_path)
        made.append((stack, api_server))
        if worker:
            await stack.start_worker()
        return stack

    yield make
    for stack, _ in made:
        for process in stack.processes:
            process.stop()
        await stack.stop_workers()
        await stack.api.close()
        await stack.sim.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
