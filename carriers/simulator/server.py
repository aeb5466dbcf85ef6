"""The fake EMS partner API over HTTP, plus the admin endpoints tests and benchmarks steer it with.

Business logic lives in ``Simulator.handle`` (synchronous, so an order is created without any await between
the idempotency check and the insert); the request handler wraps it in the fault decisions.
Admin endpoints have no authentication: the simulator is a development tool, never expose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from carriers.ems.envelope import EnvelopeError, open_
from carriers.simulator.config import SimConfig
from carriers.simulator.faults import FaultInjector, ParcelSettings, clock_speed
from carriers.simulator.geo import in_service, split_address
from carriers.simulator.parcels import ParcelBook, ParcelError, SimClock
from carriers.simulator.pusher import Pusher
from carriers.simulator.validation import check_cancel, check_coverage, check_order, check_split, check_track
from carriers.simulator.wire import (
    API_PATHS,
    B_FORMAT,
    B_MISSING,
    OK,
    S_BAD_JSON,
    S_BAD_SIGNATURE,
    beijing_now,
    parse_time,
    response,
    serial_no,
)

log = logging.getLogger(__name__)

PARCEL_SETTINGS = frozenset({"delivery", "signers", "pickup"})  # the keys of /admin/faults that ParcelSettings owns
REQUIRED_FORM_FIELDS = ("apiCode", "senderNo", "authorization", "timeStamp", "logitcsInterface")
API_CODES = ("020003", "020006", "040001", "030005", "060001")


class Simulator:
    """All state of one simulated EMS environment."""

    def __init__(
        self,
        config: SimConfig,
        *,
        mono: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = beijing_now,
    ) -> None:
        self.config = config
        self.mono = mono
        self.wall = now
        self.clock = SimClock(now, mono)
        self._release = asyncio.Event()
        self._clock_wake = asyncio.Event()
        self._clock: asyncio.Task[None] | None = None
        # Built once (the pusher owns a session and a task); _build gives them their seeded streams.
        self.faults = FaultInjector(random.Random())
        self.pusher = Pusher(config, self.faults, random.Random(), mono=mono, now=self.now)
        self._build()

    def _build(self) -> None:
        seed = self.config.seed

        def rng(purpose: str) -> random.Random:
            # Separate streams, so e.g. enabling a fault does not change which waybills get assigned.
            return random.Random(f"{seed}:{purpose}") if seed is not None else random.Random()

        self._ids = rng("ids")
        self.clock = SimClock(self.wall, self.mono)
        self.clock.set_speed(self.config.clock_speed)
        self.book = ParcelBook(
            rng("parcels"), settings=ParcelSettings(failed_attempt_rate=self.config.failed_attempt_rate)
        )
        self.faults.reset(rng("faults"))
        self.pusher.reset(rng("push"))
        self.calls: Counter[str] = Counter()
        self.created: Counter[str] = Counter()
        self.create_calls: Counter[str] = Counter()
        self.ret_codes: Counter[str] = Counter()

    def now(self) -> datetime:
        """The simulated clock (Beijing): every event, order and push is stamped with it."""
        return self.clock.now()

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.pusher.start()
        if self.config.step_seconds > 0 and self._clock is None:
            self._clock = asyncio.create_task(self._run_clock(), name="ems-sim-clock")

    def release_hangs(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    async def close(self) -> None:
        self.release_hangs()
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        await self.pusher.close()

    def reset(self) -> None:
        """Back to a fresh simulator with the same config (and so the same seeded sequences)."""
        self.release_hangs()
        self._build()
        self._clock_wake.set()

    async def hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), seconds)

    # -- the clock -------------------------------------------------------------------------------------------

    def tick(self, steps: int, waybill_no: str | None = None) -> list[dict[str, str]]:
        events = self.book.tick(steps, self.now(), waybill_no)
        if events:
            # A pickup revealed before its window was stamped at the window: the clock moves there with it.
            self.clock.advance_to(max(parse_time(event["opTime"]) for event in events))
            self._requeue_waiting()
        if self.config.step_seconds > 0:
            # A manual step restarts the parcel's wait, or the automatic clock would fire right after it.
            mono = self.mono()
            for event in events:
                parcel = self.book.by_waybill[event["waybillNo"]]
                self.book.schedule(parcel, mono, self.config.step_seconds)
        self._emit(events)
        return events

    def _emit(self, events: list[dict[str, str]]) -> None:
        for event in events:
            self.pusher.enqueue(event)

    async def _run_clock(self) -> None:
        while True:
            self._clock_wake.clear()
            self._emit(self.book.due(self.mono(), self.now(), self.config.step_seconds, self.clock.speed))
            due = self.book.next_due()
            timeout = None if due is None else max(0.0, due - self.mono())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._clock_wake.wait(), timeout)

    def _requeue_waiting(self) -> None:
        """After the clock changed pace or jumped, pickups waiting for their window re-check it now."""
        mono = self.mono()
        for parcel in self.book.waiting_for_window():
            self.book.schedule(parcel, mono, 0.0)
        self._clock_wake.set()

    # -- settings --------------------------------------------------------------------------------------------

    def settings_json(self) -> dict[str, Any]:
        return {**self.faults.to_json(self.mono()), **self.book.settings.to_json(), "clock": self.clock.to_json()}

    def update_settings(self, patch: Any) -> None:
        """A partial settings object (the shape of ``settings_json``), applied all or nothing; ValueError if bad."""
        if not isinstance(patch, dict):
            raise ValueError("faults must be an object")
        parcels = self.book.settings.updated({k: v for k, v in patch.items() if k in PARCEL_SETTINGS})
        speed = clock_speed(patch["clock"]) if "clock" in patch else None
        self.faults.update({k: v for k, v in patch.items() if k not in PARCEL_SETTINGS | {"clock"}}, self.mono())
        self.book.settings = parcels
        if speed is not None and speed != self.clock.speed:
            self.clock.set_speed(speed)
            self._requeue_waiting()

    # -- the API ---------------------------------------------------------------------------------------------

    def handle(self, fields: dict[str, str]) -> dict[str, Any]:
        """One API call, start to finish, as a response envelope."""
        answer = self._handle(fields)
        self.ret_codes[answer["retCode"]] += 1
        return answer

    def _handle(self, fields: dict[str, str]) -> dict[str, Any]:
        serial = serial_no(self._ids)
        for name in REQUIRED_FORM_FIELDS:
            if not fields.get(name, "").strip():
                return response(B_MISSING, f"必填字段缺失: {name}", serial=serial)
        # A wrong senderNo/authorization is answered like a bad signature (S02), not with a B-code: it is our
        # configuration that is wrong, not the order, so the client should keep retrying until it is fixed
        # rather than fail shipments for good.
        if fields["senderNo"] != self.config.sender_no:
            return response(S_BAD_SIGNATURE, "senderNo 与授权不匹配", serial=serial)
        if fields["authorization"] != self.config.authorization:
            return response(S_BAD_SIGNATURE, "authorization 校验失败", serial=serial)
        try:
            parse_time(fields["timeStamp"])
        except ValueError:
            return response(B_FORMAT, "字段格式错误: timeStamp 应为 yyyy-MM-dd HH:mm:ss", serial=serial)
        api_code = fields["apiCode"]
        if api_code not in API_CODES:
            return response(B_FORMAT, f"不支持的 apiCode: {api_code}", serial=serial)
        key = self.config.sign_key
        try:
            text = open_(fields["logitcsInterface"], key, strip_key=False)
        except EnvelopeError:
            return response(S_BAD_SIGNATURE, "签名校验失败: 报文无法解密", serial=serial)
        # Requests carry the signKey text after the JSON; a body without it fails the real signature check.
        if not text.endswith(key):
            return response(S_BAD_SIGNATURE, "签名校验失败: 缺少签名", serial=serial)
        try:
            body = json.loads(text[: -len(key)])
        except ValueError:
            return response(S_BAD_JSON, "报文不是合法的 JSON", serial=serial)
        try:
            result = self._dispatch(api_code, body)
        except ParcelError as exc:
            return response(exc.code, exc.message, serial=serial)
        return response(OK, "成功", result, serial=serial)

    def _dispatch(self, api_code: str, body: Any) -> Any:
        if api_code == "020003":
            order = check_order(body, self.config.service_provinces)
            order_no = str(order["logisticsOrderNo"]).strip()
            order["logisticsOrderNo"] = order_no
            self.create_calls[order_no] += 1
            parcel, new = self.book.create(order, self.now())
            if new:
                self.created[order_no] += 1
                if self.config.step_seconds > 0:
                    self.book.schedule(parcel, self.mono(), self.config.pickup_delay)
                    self._clock_wake.set()
            return {"logisticsOrderNo": parcel.order_no, "waybillNo": parcel.waybill_no, **parcel.routing}
        if api_code == "020006":
            order_no, waybill_no, reason = check_cancel(body)
            parcel = self.book.cancel(order_no, waybill_no, reason)
            return {"logisticsOrderNo": parcel.order_no, "waybillNo": parcel.waybill_no}
        if api_code == "040001":
            waybill_no = check_track(body)
            parcel = self.book.by_waybill.get(waybill_no)
            # An unknown waybill has no trace yet rather than being an error, as with a public tracking query.
            events = parcel.events if parcel is not None else []
            return {"responseItems": [{"traceNo": waybill_no, **event} for event in events]}
        if api_code == "030005":
            query = check_coverage(body)
            covered = in_service(str(query.get("prov", "")), self.config.service_provinces)
            return {"status": "0" if covered else "1", "msg": "可以收寄" if covered else "超出服务范围"}
        if api_code == "060001":
            return [split_address(address) for address in check_split(body)]
        raise ParcelError(B_FORMAT, f"不支持的 apiCode: {api_code}")

    # -- admin views -----------------------------------------------------------------------------------------

    def orders_view(self) -> dict[str, Any]:
        return {
            "orders": dict(self.created),
            "create_calls": dict(self.create_calls),
            "waybills": {order_no: p.waybill_no for order_no, p in self.book.by_order.items()},
            "calls": dict(self.calls),
            "ret_codes": dict(self.ret_codes),
            "faults_injected": dict(self.faults.injected),
            "pushes": self.pusher.stats(),
        }


SIM_KEY = web.AppKey("ems_simulator", Simulator)


def get_simulator(app: web.Application) -> Simulator:
    """The simulator behind an app from ``create_app``, for in-process callers (benchmarks, tests)."""
    return app[SIM_KEY]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _reset_connection(request: web.Request) -> web.Response:
    """Close the connection with a TCP RST and no answer, like a crashed load balancer."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # Nothing reaches the client; aiohttp needs a return value all the same.
    return web.Response(status=499)


async def _api(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    form = await request.post()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    api_code = fields.get("apiCode", "")
    sim.calls[api_code] += 1
    faults = sim.faults
    mono = sim.mono()
    outage = faults.outage(mono)
    if outage == "reset":
        return _reset_connection(request)
    if outage is not None:
        return web.Response(status=503, text="Service Temporarily Unavailable")
    if faults.rate_limited(mono):
        if faults.settings.rate_limit_mode == "429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        return _json(response(faults.settings.rate_limit_s_code, "访问过于频繁,请稍后再试"))
    delay = faults.latency_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
    kind = faults.error_for(api_code)
    if kind == "http_5xx":
        return web.Response(
            status=faults.settings.http_status, text="<html><body>Bad Gateway</body></html>", content_type="text/html"
        )
    if kind == "connection_reset":
        return _reset_connection(request)
    if kind == "s_code":
        return _json(response(faults.settings.s_code, "系统异常,请稍后重试"))
    if kind == "b_code":
        return _json(response(faults.settings.b_code, "业务处理失败"))
    answer = sim.handle(fields)
    if kind == "timeout_after_create":
        await sim.hang(faults.settings.hang_seconds)
        if faults.settings.hang_then == "reset":
            return _reset_connection(request)
    return _json(answer)


async def _read_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body is not JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be an object"}', content_type="application/json")
    return data


async def _healthz(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return _json({"status": "ok", "orders": len(sim.book.by_order)})


async def _admin_orders(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].orders_view())


async def _admin_tick(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    data = await _read_json(request)
    steps = data.get("steps", 1)
    waybill = data.get("waybillNo")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return _json({"error": "steps must be a non-negative integer"}, 400)
    if waybill is not None and not isinstance(waybill, str):
        return _json({"error": "waybillNo must be a string"}, 400)
    try:
        events = sim.tick(steps, waybill)
    except ParcelError as exc:
        return _json({"error": exc.message}, 404)
    return _json({"count": len(events), "events": events})


async def _admin_reset(request: web.Request) -> web.Response:
    request.app[SIM_KEY].reset()
    return _json({"ok": True})


async def _admin_parcels(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    parcels = [
        {key: value for key, value in p.summary().items() if key not in {"events", "order"}}
        for p in sim.book.by_order.values()
    ]
    return _json({"parcels": parcels})


async def _admin_parcel(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    parcel = sim.book.by_waybill.get(request.match_info["waybill"])
    if parcel is None:
        return _json({"error": "no such waybill"}, 404)
    return _json(parcel.summary())


async def _admin_push_now(request: web.Request) -> web.Response:
    return _json({"flushed": request.app[SIM_KEY].pusher.flush()})


async def _admin_pushes(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].pusher.stats())


async def _admin_faults_get(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].settings_json())


async def _admin_faults_put(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    data = await _read_json(request)
    try:
        sim.update_settings(data)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    return _json(sim.settings_json())


async def _admin_faults_delete(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    # Only the faults: what happens to parcels and the clock's pace stay, or a run ending its fault phase
    # would strand pickups booked for tomorrow behind a real-time clock.
    sim.faults.clear()
    return _json(sim.settings_json())


def create_app(config: SimConfig) -> web.Application:
    app = web.Application()
    sim = Simulator(config)
    app[SIM_KEY] = sim
    for path in API_PATHS:
        app.router.add_post(path, _api)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/admin/orders", _admin_orders)
    app.router.add_post("/admin/tick", _admin_tick)
    app.router.add_post("/admin/reset", _admin_reset)
    app.router.add_get("/admin/parcels", _admin_parcels)
    app.router.add_get("/admin/parcels/{waybill}", _admin_parcel)
    app.router.add_post("/admin/push-now", _admin_push_now)
    app.router.add_get("/admin/pushes", _admin_pushes)
    app.router.add_get("/admin/faults", _admin_faults_get)
    app.router.add_put("/admin/faults", _admin_faults_put)
    app.router.add_delete("/admin/faults", _admin_faults_delete)

    async def on_startup(_: web.Application) -> None:
        await sim.start()

    async def on_shutdown(_: web.Application) -> None:
        # Hung answers (timeout_after_create) would otherwise hold the shutdown for hang_seconds.
        sim.release_hangs()

    async def on_cleanup(_: web.Application) -> None:
        await sim.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve(
    config: SimConfig, host: str = "127.0.0.1", port: int = 8090, *, ready: asyncio.Event | None = None
) -> None:
    """Run the simulator until cancelled; ``ready`` is set once it accepts connections."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("EMS simulator listening on http://%s:%s%s", host, port, API_PATHS[0])
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
