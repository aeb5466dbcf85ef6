"""A worker SIGKILLed in the middle of delivering, and Redis flushed with it: once a new worker runs,
every event still reaches the approval system, in order per shipment. The database is the record."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from webhooks_app_support import JOURNEY, Received, Receiver, deliveries, move, new_shipment

from logistics.accounts import clients
from logistics.config import fresh_carrier_secrets
from logistics.redis.private_server import PrivateRedis
from logistics.storage.db import Database

from support import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    # Flushing must not touch the shared test Redis that other runs use.
    server = PrivateRedis(tmp_path / "redis")
    url = server.start()
    yield url
    server.stop()


class Worker:
    """``python -m logistics worker`` in its own process group, so it can be SIGKILLed for real."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "logistics", "worker"],
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


async def test_sigkilled_worker_and_flushed_redis_lose_nothing(
    db: Database,
    subscribed: clients.Credentials,
    receiver: Receiver,
    own_redis: str,
    tmp_path: Path,
) -> None:
    shipments = [await new_shipment(db, subscribed.id, case_no=f"410106-2018-{n:05d}") for n in range(1, 9)]
    for sid in shipments:
        await move(db, sid, *JOURNEY)
    receiver.delay = 0.05
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    env = base | {
        "LOGISTICS_DATABASE_URL": db.url,
        "LOGISTICS_REDIS_URL": own_redis,
        "LOGISTICS_QUEUE_NAME": f"test:{uuid.uuid4().hex[:8]}",
        "LOGISTICS_DATA_DIR": str(tmp_path),
        "LOGISTICS_WEBHOOK_ALLOW_LOOPBACK": "true",
        "LOGISTICS_SWEEP_INTERVAL_SECONDS": "1",
        **fresh_carrier_secrets(),
        "LOGISTICS_LEASE_SECONDS": "3",
        "LOGISTICS_LOG_LEVEL": "WARNING",
    }
    total = len(shipments) * len(JOURNEY)

    first = Worker(env, tmp_path / "worker.log")
    try:
        await eventually(lambda: _at_least(receiver, 6), timeout=30)
    finally:
        first.kill()
    redis.Redis.from_url(own_redis).flushall()
    done = sum(d["status"] == "delivered" for d in await deliveries(db))
    assert done < total, "the worker finished before it could be killed; slow the receiver down"

    second = Worker(env, tmp_path / "worker.log")
    try:

        async def all_delivered() -> bool:
            return all(d["status"] == "delivered" for d in await deliveries(db))

        await eventually(all_delivered, timeout=60)
    finally:
        second.kill()
    for sid, seen in receiver.sequences_by_shipment().items():
        assert seen == sorted(seen), sid
    assert receiver.sequences_by_shipment(_unique(receiver)) == {sid: [2, 3, 4, 5] for sid in shipments}


async def _at_least(receiver: Receiver, count: int) -> bool:
    await asyncio.sleep(0)
    return len(receiver.accepted()) >= count


def _unique(receiver: Receiver) -> list[Received]:
    seen: set[str] = set()
    out: list[Received] = []
    for r in receiver.accepted():
        if r.msg_id not in seen:
            seen.add(r.msg_id)
            out.append(r)
    return out
