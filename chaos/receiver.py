"""The approval system's webhook endpoint for the chaos run: verifies every request with the reference
``standardwebhooks`` library, fails on purpose (a share of 500s, one outage window), and records what arrived in
arrival order so the run can check at-least-once and per-shipment order afterwards."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(slots=True)
class Arrival:
    index: int  # arrival order at the receiver (assigned on entry, before answering)
    msg_id: str
    shipment_id: str
    sequence: int
    type: str
    answered: int


@dataclass
class Receiver:
    secret: str
    error_rate: float = 0.3
    seed: int | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    unverified: int = 0
    outage_answers: int = 0
    random_errors: int = 0
    _outage_until: float = 0.0
    _runner: web.AppRunner | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self._webhook = Webhook(self.secret)
        self._rng = random.Random(self.seed)
        self._next = 0

    def outage(self, seconds: float) -> None:
        """Answer 503 to everything for ``seconds`` from now (a receiver whose application is down)."""
        self._outage_until = time.monotonic() + seconds

    @property
    def in_outage(self) -> bool:
        return time.monotonic() < self._outage_until

    async def _handle(self, request: web.Request) -> web.Response:
        index = self._next
        self._next += 1
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            self._webhook.verify(body, headers)
        except WebhookVerificationError:
            self.unverified += 1
            return web.Response(status=400, text="bad signature")
        data = json.loads(body)
        inner = data.get("data") or {}
        if self.in_outage:
            status = 503
            self.outage_answers += 1
        elif self._rng.random() < self.error_rate:
            status = 500
            self.random_errors += 1
        else:
            status = 204
        self.arrivals.append(
            Arrival(
                index,
                headers.get("webhook-id", ""),
                str(inner.get("id", "")),
                int(inner.get("sequence", -1)),
                str(data.get("type", "")),
                status,
            )
        )
        return web.Response(status=status)

    async def start(self, port: int, host: str = "127.0.0.1") -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/hooks/logistics", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/logistics"
