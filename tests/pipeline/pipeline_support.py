"""Helpers for the pipeline tests: a running stack (simulator, API, workers) and deadline-bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker
from sqlalchemy import func, select

from carriers.simulator.server import Simulator
from logistics.accounts import clients
from logistics.config import Settings
from logistics.domain.tables import outbox, shipment_events, shipments
from logistics.jobs import carrier as handlers
from logistics.jobs.runner import Runtime
from logistics.jobs.worker import build_runtime, create_worker
from logistics.storage.db import Database

from support import auth

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` and the last value at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})"[:2000])
        await asyncio.sleep(step)


@dataclass
class InProcessWorker:
    rt: Runtime
    worker: Worker
    task: asyncio.Task[None]

    async def stop(self) -> None:
        # Worker.close cancels running jobs; their leases simply run out, which is what a crash looks like too.
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        await handlers.close(self.rt)
        await self.rt.signal.close()
        if self.rt.signal.redis is not None:
            await self.rt.signal.redis.aclose()


@dataclass
class SubprocessWorker:
    """``python -m logistics worker`` in its own process, so it can be SIGKILLed for real."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    settings: Settings
    db: Database
    api: TestClient
    sim: TestClient
    simulator: Simulator
    hall: clients.Credentials
    tmp_path: Path
    workers: list[InProcessWorker] = field(default_factory=list)
    processes: list[SubprocessWorker] = field(default_factory=list)

    # -- workers ---------------------------------------------------------------------------------------------

    async def start_worker(self) -> InProcessWorker:
        rt = build_runtime(self.settings, self.db)
        worker = create_worker(self.settings, rt)
        task = asyncio.create_task(worker.async_run(), name="test-worker")
        running = InProcessWorker(rt, worker, task)
        self.workers.append(running)
        return running

    async def stop_workers(self) -> None:
        while self.workers:
            await self.workers.pop().stop()

    def spawn_worker(self, name: str = "worker") -> SubprocessWorker:
        s = self.settings
        env = {
            **os.environ,
            "LOGISTICS_DATA_DIR": str(s.data_dir),
            "LOGISTICS_DATABASE_URL": s.resolved_database_url,
            "LOGISTICS_REDIS_URL": s.redis_url or "",
            "LOGISTICS_QUEUE_NAME": s.queue_name,
            "LOGISTICS_EMS_BASE_URL": s.ems_url,
            "LOGISTICS_EMS_SENDER_NO": s.ems_sender_no,
            "LOGISTICS_EMS_AUTHORIZATION": s.ems_authorization,
            "LOGISTICS_EMS_SIGN_KEY": s.ems_sign_key,
            "LOGISTICS_EMS_TIMEOUT_SECONDS": str(s.ems_timeout_seconds),
            "LOGISTICS_LEASE_SECONDS": str(s.lease_seconds),
            "LOGISTICS_SWEEP_INTERVAL_SECONDS": str(s.sweep_interval_seconds),
            "LOGISTICS_POLL_FIRST_SECONDS": str(s.poll_first_seconds),
            "LOGISTICS_CARRIER_ATTEMPTS": str(s.carrier_attempts),
            "LOGISTICS_CARRIER_RETRY_SECONDS": str(s.carrier_retry_seconds),
            "LOGISTICS_LOG_FORMAT": "text",
            "LOGISTICS_LOG_LEVEL": "WARNING",
        }
        log_path = self.tmp_path / f"{name}-{len(self.processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "logistics", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        running = SubprocessWorker(process, log_path)
        self.processes.append(running)
        return running

    # -- the API ---------------------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> str:
        resp = await self.api.post("/v1/shipments", json=body, headers=auth(self.hall))
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])

    async def create_many(self, bodies: list[dict[str, Any]], *, concurrency: int = 32) -> list[str]:
        gate = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, Any]) -> str:
            async with gate:
                return await self.create(body)

        return list(await asyncio.gather(*(one(b) for b in bodies)))

    async def shipment(self, shipment_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/shipments/{shipment_id}", headers=auth(self.hall))
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())

    # -- the database ----------------------------------------------------------------------------------------

    async def statuses(self, ids: list[str] | None = None) -> dict[str, str]:
        query = select(shipments.c.id, shipments.c.status)
        if ids is not None:
            query = query.where(shipments.c.id.in_(ids))
        async with self.db.read() as conn:
            return {r.id: r.status for r in await conn.execute(query)}

    async def wait_status(self, ids: list[str], status: str, *, timeout: float = 30.0) -> dict[str, str]:
        async def check() -> dict[str, str] | None:
            current = await self.statuses(ids)
            return current if all(current.get(i) == status for i in ids) else None

        async def describe() -> str:
            current = await self.statuses(ids)
            counts: dict[str, int] = {}
            for value in current.values():
                counts[value] = counts.get(value, 0) + 1
            return f"{len(ids)} shipments {status}; now {counts}"

        try:
            return await wait_until(check, timeout=timeout, what=f"{len(ids)} shipments {status}", step=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {await describe()}; outbox: {await self.outbox_summary()}") from None

    async def outbox_summary(self) -> list[tuple[str, int, str | None]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(outbox.c.kind, func.count(), func.max(outbox.c.last_error)).group_by(outbox.c.kind)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    async def outbox_count(self, kind: str) -> int:
        async with self.db.read() as conn:
            query = select(func.count()).select_from(outbox).where(outbox.c.kind == kind)
            return int((await conn.execute(query)).scalar_one())

    async def events(self, shipment_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(shipment_events)
                .where(shipment_events.c.shipment_id == shipment_id)
                .order_by(shipment_events.c.sequence)
            )
            return [dict(r._mapping) for r in rows]

    # -- the simulator ---------------------------------------------------------------------------------------

    async def sim_json(self, method: str, path: str, body: Any = None) -> Any:
        resp = await self.sim.request(method, path, json=body)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def orders(self) -> dict[str, Any]:
        return dict(await self.sim_json("GET", "/admin/orders"))

    async def faults(self, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.sim_json("PUT", "/admin/faults", patch))

    async def tick(self, steps: int = 1, waybill_no: str | None = None) -> list[dict[str, str]]:
        body: dict[str, Any] = {"steps": steps}
        if waybill_no is not None:
            body["waybillNo"] = waybill_no
        return list((await self.sim_json("POST", "/admin/tick", body))["events"])

    async def parcel(self, waybill_no: str) -> dict[str, Any]:
        return dict(await self.sim_json("GET", f"/admin/parcels/{waybill_no}"))

    async def pushes_settled(self) -> bool:
        """Every push the simulator made was acknowledged, and every stored event was applied."""
        stats = await self.sim_json("GET", "/admin/pushes")
        return stats["pending"] == 0 and stats["in_flight"] == 0 and await self.outbox_count("carrier_event") == 0


StackFactory = Callable[..., Awaitable[Stack]]
