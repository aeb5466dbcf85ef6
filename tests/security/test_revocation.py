"""A revoked API key or staff token is refused by every running API process at once, not after its cache
time: two real `logistics api` processes on one database and one Redis, each with a warm cache of an hour."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from logistics.accounts import clients, staff
from logistics.config import fresh_carrier_secrets
from logistics.storage.db import Database

CACHE_SECONDS = "3600"  # far longer than any test: only the announcement can end a cached credential
ATTEMPTS = 200  # requests to each process before giving up on seeing the revocation


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: each socket stays bound until all are chosen, so two processes never share one."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


class ApiProcess:
    """`logistics api` on a free port; ready once it logs that it listens for revocations."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logistics", "api"],
            env=env | {"LOGISTICS_PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the process logs ``text``; a process that exits or stays silent fails with what it said."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return
        said = "".join(self.seen[-20:])
        pytest.fail(f"`logistics api` never logged {text} (exit code {self.proc.poll()}); it said:\n{said}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def service_env(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    return base | {
        "LOGISTICS_DATA_DIR": str(tmp_path),
        "LOGISTICS_DATABASE_URL": database_url,
        "LOGISTICS_REDIS_URL": redis_url,
        "LOGISTICS_HOST": "127.0.0.1",
        "LOGISTICS_API_KEY_CACHE_SECONDS": CACHE_SECONDS,
        "LOGISTICS_LOG_LEVEL": "INFO",
        "LOGISTICS_LOG_FORMAT": "text",
        **fresh_carrier_secrets(),
    }


@pytest.fixture
async def two_apis(service_env: dict[str, str], db: Database) -> AsyncIterator[list[ApiProcess]]:
    apis = [ApiProcess(service_env, port) for port in free_ports(2)]
    try:
        for api in apis:
            await asyncio.to_thread(api.wait_for, "revocation_listener_subscribed")
        yield apis
    finally:
        for api in apis:
            await asyncio.to_thread(api.stop)


async def cli(env: dict[str, str], *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "logistics", *args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def statuses_until_refused(session: aiohttp.ClientSession, url: str, token: str) -> list[int]:
    """The answers to the same request, repeated until it is refused (bounded): the revocation travels over
    Redis, so the first answer after revoking may still be the cached one, but never many."""
    seen: list[int] = []
    for _ in range(ATTEMPTS):
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            seen.append(resp.status)
        if seen[-1] == 401:
            break
    return seen


async def test_a_rotated_api_key_is_refused_by_every_running_api_process(
    two_apis: list[ApiProcess], service_env: dict[str, str], db: Database
) -> None:
    hall = await clients.create(db, "上街区行政审批系统")
    async with aiohttp.ClientSession() as session:
        for api in two_apis:  # warm each process's cache with the key
            async with session.get(f"{api.url}/v1/shipments", headers={"Authorization": f"Bearer {hall.api_key}"}) as r:
                assert r.status == 200
        await cli(service_env, "clients", "rotate-key", "--client", hall.id)
        for api in two_apis:
            seen = await statuses_until_refused(session, f"{api.url}/v1/shipments", hall.api_key)
            assert seen[-1] == 401, f"{api.url} still takes the rotated key after {len(seen)} requests"


async def test_a_revoked_staff_token_is_refused_by_every_running_api_process(
    two_apis: list[ApiProcess], service_env: dict[str, str], db: Database
) -> None:
    courier = await staff.create(db, "欧阳娜娜", "courier", ["上街区市场监督管理局"])
    async with aiohttp.ClientSession() as session:
        for api in two_apis:
            async with session.get(f"{api.url}/v1/staff/me", headers={"Authorization": f"Bearer {courier.token}"}) as r:
                assert r.status == 200
        await cli(service_env, "staff", "revoke", "--id", courier.member.id)
        for api in two_apis:
            seen = await statuses_until_refused(session, f"{api.url}/v1/staff/me", courier.token)
            assert seen[-1] == 401, f"{api.url} still takes the revoked token after {len(seen)} requests"
