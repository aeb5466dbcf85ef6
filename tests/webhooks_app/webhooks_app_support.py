"""Helpers for the app-level webhook tests: a real approval-system receiver over HTTP that verifies with the
reference ``standardwebhooks`` library, a controllable clock, shipments made directly in the database, and a
driver that runs due webhook tasks in-process at the clock's time.

(A module name of its own: test folders here are not packages.)
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from logistics.domain import ids
from logistics.domain.events import WEBHOOK_TASK, apply_event, lock_shipment
from logistics.domain.tables import (
    outbox,
    shipment_cases,
    shipment_events,
    shipments,
    webhook_attempts,
    webhook_deliveries,
)
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime, run_task
from logistics.storage.db import Database
from logistics.storage.outbox import claim_due

# The main path after ordering, as EMS reports it.
JOURNEY = ("picked_up", "in_transit", "out_for_delivery", "delivered")

RECIPIENT = {
    "name": "欧阳娜娜",
    "phone": "13803712345",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "新安路街道济源路8号院3号楼2单元501室",
}
HALL = {
    "name": "上街区政务服务中心",
    "phone": "0371-68123456",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "中心路132号",
    "postcode": "450041",
}


class Clock:
    """A clock the tests move by hand; starts at the real time so rows written with the real clock are due."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta

    def move_to(self, when: datetime) -> None:
        self.current = max(self.current, when)


@dataclass
class Received:
    msg_id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    error: str | None
    answered: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def headers(self) -> dict[str, str]:
        return {"webhook-id": self.msg_id, "webhook-timestamp": self.timestamp, "webhook-signature": self.signature}


Answer = Callable[[Received], tuple[int, dict[str, str]]]


@dataclass
class Receiver:
    """The approval system: verifies like the reference library, then answers as ``answer`` says (204 by default)."""

    secrets: list[str]
    answer: Answer | None = None
    received: list[Received] = field(default_factory=list)
    server: TestServer | None = None
    port: int = 0
    delay: float = 0.0  # seconds before answering, to catch a worker mid-delivery

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hdrs = dict(request.headers)
        record = Received(
            hdrs.get("webhook-id", ""),
            hdrs.get("webhook-timestamp", ""),
            hdrs.get("webhook-signature", ""),
            body,
            False,
            None,
        )
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, hdrs)
            except WebhookVerificationError as exc:
                record.error = str(exc)
            else:
                record.verified, record.error = True, None
                break
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers = (204, {}) if record.verified else (400, {})
        if record.verified and self.answer is not None:
            status, headers = self.answer(record)
        record.answered = status
        self.received.append(record)
        return web.Response(
            status=status, headers=headers, text="" if status == 204 else "已接收" if status < 300 else "稍后重试"
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/logistics", self._handle)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()
        self.port = self.server.port or 0

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/logistics"

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.verified and 200 <= r.answered < 300]

    def sequences_by_shipment(self, records: list[Received] | None = None) -> dict[str, list[int]]:
        """Event sequences per shipment in the order they reached the receiver (retries included)."""
        seen: dict[str, list[int]] = defaultdict(list)
        for r in self.verified() if records is None else records:
            data = r.payload["data"]
            seen[data["id"]].append(data["sequence"])
        return dict(seen)


class StaticResolver(AbstractResolver):
    """DNS from a table, so a name that resolves to a private address needs no real DNS."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip = self.table[host]
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


async def new_shipment(
    db: Database, client_id: str, *, status: str = "ordered", case_no: str = "410106-2018-00095"
) -> str:
    """A delivery shipment already ordered at EMS, as the order worker leaves it."""
    now = datetime.now(UTC)
    sid = ids.shipment_id()
    async with db.write() as conn:
        await conn.execute(
            insert(shipments).values(
                id=sid,
                client_id=client_id,
                kind="delivery",
                status=status,
                department="上街区市场监督管理局",
                window="综合受理3号窗口",
                sender=HALL,
                recipient=RECIPIENT,
                contents=[{"name": "食品经营许可证正本", "count": 1}],
                extra={"approval_system": "sj-spxt"},
                verification_code="402715",
                tracking_code=ids.tracking_code(),
                carrier="ems",
                waybill_no=f"1{ids.verification_code()}{ids.verification_code()}"[:13],
                last_sequence=1,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(shipment_cases).values(shipment_id=sid, position=0, case_no=case_no, item_name="食品经营许可证核发")
        )
        await conn.execute(
            insert(shipment_events).values(
                shipment_id=sid, sequence=1, status=status, occurred_at=now, recorded_at=now, source="system"
            )
        )
    return sid


async def move(db: Database, shipment_id: str, *statuses: str) -> None:
    """Carrier events, each in its own transaction as the push and poll handlers apply them."""
    texts = {
        "picked_up": "已收寄",
        "in_transit": "已到达郑州处理中心",
        "out_for_delivery": "正在投递",
        "delivered": "已妥投,本人签收",
    }
    for status in statuses:
        async with db.write() as conn:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(
                conn,
                row,
                status=status,
                source="carrier_push",
                carrier_text=texts.get(status),
                location="河南省郑州市上街区",
            )


async def run_due(rt: Runtime, clock: Clock) -> int:
    """Run the tasks due at the clock's time, as a worker would; returns how many ran."""
    ran = 0
    clock.move_to(datetime.now(UTC))  # rows written since by the real clock are due too
    while True:
        tasks = await claim_due(rt.db, limit=100, lease_seconds=rt.settings.lease_seconds, now=clock())
        if not tasks:
            return ran
        for task in tasks:
            await run_task(rt, task)
        ran += len(tasks)


async def next_due(db: Database) -> datetime | None:
    async with db.read() as conn:
        return (await conn.execute(select(func.min(outbox.c.due_at)).where(outbox.c.kind == WEBHOOK_TASK))).scalar()


async def drain(rt: Runtime, clock: Clock, *, limit: timedelta = timedelta(days=4), steps: int = 500) -> None:
    """Run due tasks, jumping the clock to the next due time, until no webhook work is left (or ``limit``)."""
    end = clock() + limit
    for _ in range(steps):
        await run_due(rt, clock)
        due = await next_due(rt.db)
        if due is None or due > end:
            return
        clock.move_to(due)
    raise AssertionError("webhook work did not settle")


async def deliveries(db: Database, shipment_id: str | None = None) -> list[dict[str, Any]]:
    query = select(webhook_deliveries).order_by(webhook_deliveries.c.shipment_id, webhook_deliveries.c.position)
    if shipment_id is not None:
        query = query.where(webhook_deliveries.c.shipment_id == shipment_id)
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def attempts(db: Database, delivery_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.id)
        )
        return [dict(r._mapping) for r in rows]


async def webhook_tasks(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(outbox).where(outbox.c.kind == WEBHOOK_TASK))]


def runtime_sender(rt: Runtime) -> Any:
    return rt.services[webhook_delivery.SENDER]
