"""The push queue's rules, with the answer to every push in the test's hand.

A gate receiver holds each push until the test answers it, and the monotonic clock only moves when the test
moves it, so what is in flight, held or waiting at any moment is decided by the test alone.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sim_fixtures import SENDER_NO, SIGN_KEY

from carriers.ems.envelope import open_
from carriers.simulator.config import SimConfig
from carriers.simulator.faults import FaultInjector
from carriers.simulator.pusher import Pusher
from carriers.simulator.wire import OK

NOW = datetime(2026, 11, 26, 14, 30, 0)


@dataclass
class Call:
    envelope: dict[str, Any]
    event: dict[str, Any]
    answer: asyncio.Future[bool]

    @property
    def tag(self) -> str:
        return self.event["tag"]


@dataclass
class Gate:
    """Our push endpoint, answering each push only when the test says so (True: 00000, False: S00001)."""

    auto: bool = False  # answer 00000 at once (after letting other requests in) instead of queueing a Call
    calls: asyncio.Queue[Call] = field(default_factory=asyncio.Queue)
    tags: list[str] = field(default_factory=list)  # in order of arrival
    open: dict[str, int] = field(default_factory=dict)  # unanswered pushes by waybill
    peak: int = 0
    peak_per_waybill: int = 0
    answers: list[asyncio.Future[bool]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        envelope = await request.json()
        event = json.loads(open_(envelope["logitcsInterface"], SIGN_KEY, strip_key=False))
        waybill = event["waybillNo"]
        self.open[waybill] = self.open.get(waybill, 0) + 1
        self.peak = max(self.peak, sum(self.open.values()))
        self.peak_per_waybill = max(self.peak_per_waybill, self.open[waybill])
        self.tags.append(event["tag"])
        try:
            if self.auto:
                for _ in range(3):
                    await asyncio.sleep(0)
                ok = True
            else:
                answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                self.answers.append(answer)
                await self.calls.put(Call(envelope, event, answer))
                ok = await answer
        finally:
            self.open[waybill] -= 1
        reply = {"serialNo": envelope["serialNo"], "codeMessage": "", "senderNo": SENDER_NO}
        return web.json_response({**reply, "code": OK if ok else "S00001"})

    async def next(self) -> Call:
        return await asyncio.wait_for(self.calls.get(), 3)

    async def take(self, n: int) -> list[Call]:
        return [await self.next() for _ in range(n)]

    def idle(self) -> bool:
        return self.calls.empty()


@dataclass
class Clock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    pusher: Pusher
    faults: FaultInjector
    gate: Gate
    clock: Clock

    def push(self, waybill: str, tag: str) -> None:
        self.pusher.enqueue({"waybillNo": waybill, "tag": tag})

    async def settle(self, **expected: int) -> None:
        """Wait until the stats show ``expected`` (e.g. pending=3, in_flight=1) after some push outcome."""
        pusher = self.pusher
        await pusher.wait_until(lambda: all(pusher.stats()[k] == v for k, v in expected.items()))

    async def count(self, name: str, value: int) -> None:
        pusher = self.pusher
        await pusher.wait_until(lambda: pusher.counts.get(name, 0) == value)


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    rigs: list[tuple[Rig, TestServer]] = []

    async def make(**overrides: Any) -> Rig:
        gate = Gate()
        app = web.Application()
        app.router.add_post("/carriers/ems/push", gate.handle)
        server = TestServer(app)
        await server.start_server()
        gate.url = str(server.make_url("/carriers/ems/push"))
        # A long retry: on the frozen clock nothing comes due by itself, only by an ack or a flush.
        settings: dict[str, Any] = {"sign_key": SIGN_KEY, "callback_url": gate.url, "push_retry_seconds": 60.0}
        settings.update(overrides)
        faults = FaultInjector(random.Random(1))
        clock = Clock()
        pusher = Pusher(SimConfig(**settings), faults, random.Random(2), mono=clock, now=lambda: NOW)
        await pusher.start()
        rig = Rig(pusher, faults, gate, clock)
        rigs.append((rig, server))
        return rig

    yield make
    for rig, server in rigs:
        # Unanswered pushes would keep the server's shutdown waiting.
        for answer in rig.gate.answers:
            if not answer.done():
                answer.set_result(True)
        await rig.pusher.close()
        await server.close()


async def test_one_push_per_waybill_in_flight_across_many_waybills(make_rig: RigFactory) -> None:
    rig = await make_rig(push_concurrency=4)
    for step in range(3):
        for w in range(10):
            rig.push(f"W{w}", f"W{w}-{step}")
    first = await rig.gate.take(4)
    assert [c.tag for c in first] == ["W0-0", "W1-0", "W2-0", "W3-0"]
    assert rig.pusher.stats()["in_flight"] == 4
    assert rig.pusher.stats()["pending"] == 26
    assert rig.gate.idle()
    # A freed slot goes to the lowest seq among the due pushes of idle waybills: W4's first event (seq 5),
    # not W0's second (seq 11).
    first[0].answer.set_result(True)
    fifth = await rig.gate.next()
    assert fifth.tag == "W4-0"

    # The rest answered as they come: all 30 arrive, never two of a parcel at once, each parcel's in order.
    rig.gate.auto = True
    for call in (*first[1:], fifth):
        call.answer.set_result(True)
    await rig.count("acked", 30)
    assert rig.gate.peak <= 4
    assert rig.gate.peak_per_waybill == 1
    for w in range(10):
        assert [t for t in rig.gate.tags if t.startswith(f"W{w}-")] == [f"W{w}-0", f"W{w}-1", f"W{w}-2"]
    assert rig.pusher.stats()["pending"] == 0


async def test_due_pushes_go_out_in_seq_order_retries_keeping_theirs(make_rig: RigFactory) -> None:
    rig = await make_rig(push_concurrency=1)
    rig.push("A", "A1")
    rig.push("B", "B1")
    rig.push("C", "C1")
    rig.push("A", "A2")
    a1 = await rig.gate.next()
    assert a1.tag == "A1"
    a1.answer.set_result(False)
    b1 = await rig.gate.next()
    assert b1.tag == "B1"
    # A1 is made due while B1 is out; once B1 is answered, A1 (seq 1) goes before C1 (seq 3) and A2 (seq 4).
    assert rig.pusher.flush() == 1
    b1.answer.set_result(True)
    again = await rig.gate.next()
    assert again.tag == "A1"
    assert again.envelope["serialNo"] == a1.envelope["serialNo"]
    again.answer.set_result(True)
    c1 = await rig.gate.next()
    assert c1.tag == "C1"
    c1.answer.set_result(True)
    a2 = await rig.gate.next()
    assert a2.tag == "A2"
    a2.answer.set_result(True)
    await rig.count("acked", 4)
    assert rig.pusher.counts["attempts"] == 5


async def test_duplicate_is_queued_behind_pushes_enqueued_before_it(make_rig: RigFactory) -> None:
    rig = await make_rig(push_concurrency=1)
    rig.faults.settings.push_duplicate_rate = 1.0
    rig.push("A", "A1")
    rig.push("B", "B1")
    order = []
    for _ in range(4):
        call = await rig.gate.next()
        order.append(call.tag)
        call.answer.set_result(True)
    # A1's replay gets a new seq when A1 is acknowledged: after B1, not straight after A1.
    assert order == ["A1", "B1", "A1", "B1"]
    await rig.count("duplicated", 2)


async def test_held_push_is_released_by_an_ack_of_its_own_waybill_only(make_rig: RigFactory) -> None:
    rig = await make_rig()
    rig.faults.settings.push_reorder_rate = 1.0
    rig.push("A", "A1")
    rig.push("B", "B1")
    # At most one held push per parcel: B2 goes out at once, ahead of B1.
    rig.push("B", "B2")
    b2 = await rig.gate.next()
    assert b2.tag == "B2"
    assert rig.pusher.stats()["held"] == 2
    assert rig.pusher.counts["reordered"] == 2
    b2.answer.set_result(True)
    b1 = await rig.gate.next()
    assert b1.tag == "B1"
    b1.answer.set_result(True)
    await rig.count("acked", 2)
    # B's acks left A1 held.
    assert rig.pusher.stats()["held"] == 1
    assert rig.pusher.stats()["pending"] == 1
    assert rig.gate.idle()
    rig.push("A", "A2")
    a2 = await rig.gate.next()
    assert a2.tag == "A2"
    a2.answer.set_result(True)
    a1 = await rig.gate.next()
    assert a1.tag == "A1"
    a1.answer.set_result(True)
    await rig.settle(pending=0, held=0, in_flight=0)


async def test_held_push_goes_out_when_its_time_comes(make_rig: RigFactory) -> None:
    rig = await make_rig(push_retry_seconds=0.05)
    rig.faults.settings.push_reorder_rate = 1.0
    rig.push("A", "A1")
    rig.faults.settings.push_reorder_rate = 0.0
    rig.push("C", "C1")
    c1 = await rig.gate.next()
    assert c1.tag == "C1"
    assert rig.pusher.stats()["held"] == 1
    assert rig.gate.idle()
    rig.clock.t += 0.05
    a1 = await rig.gate.next()
    assert a1.tag == "A1"
    c1.answer.set_result(True)
    a1.answer.set_result(True)
    await rig.count("acked", 2)


async def test_failed_push_does_not_hold_back_the_next_of_its_waybill(make_rig: RigFactory) -> None:
    rig = await make_rig()
    rig.push("A", "A1")
    a1 = await rig.gate.next()
    a1.answer.set_result(False)
    await rig.settle(pending=1, in_flight=0)
    rig.push("A", "A2")
    a2 = await rig.gate.next()
    assert a2.tag == "A2"
    a2.answer.set_result(True)
    await rig.count("acked", 1)
    # The ack of A2 does not release A1: it waits out its retry time (or a flush).
    assert rig.pusher.stats()["pending"] == 1
    assert rig.gate.idle()
    assert rig.pusher.flush() == 1
    retry = await rig.gate.next()
    assert retry.tag == "A1"
    assert retry.envelope["serialNo"] == a1.envelope["serialNo"]
    retry.answer.set_result(True)
    await rig.count("acked", 2)
    assert rig.pusher.counts["failed_attempts"] == 1


async def test_flush_counts_held_and_retrying_pushes_only(make_rig: RigFactory) -> None:
    rig = await make_rig()
    rig.faults.settings.push_reorder_rate = 1.0
    rig.push("A", "A1")  # held
    rig.faults.settings.push_reorder_rate = 0.0
    rig.push("B", "B1")  # to fail and wait for its retry
    rig.push("C", "C1")  # in flight
    rig.push("C", "C2")  # due, but waiting for C1
    b1, c1 = await rig.gate.take(2)
    assert (b1.tag, c1.tag) == ("B1", "C1")
    b1.answer.set_result(False)
    await rig.count("failed_attempts", 1)
    stats = rig.pusher.stats()
    assert (stats["pending"], stats["held"], stats["in_flight"]) == (3, 1, 1)
    assert rig.pusher.flush() == 2
    a1, b1_again = await rig.gate.take(2)
    assert (a1.tag, b1_again.tag) == ("A1", "B1")
    await rig.settle(pending=1, held=0, in_flight=3)
    assert rig.pusher.flush() == 0
    for call in (a1, b1_again, c1):
        call.answer.set_result(True)
    c2 = await rig.gate.next()
    assert c2.tag == "C2"
    c2.answer.set_result(True)
    await rig.count("acked", 4)
    assert rig.pusher.flush() == 0


async def test_reset_forgets_waiting_pushes_but_not_the_one_in_flight(make_rig: RigFactory) -> None:
    rig = await make_rig()
    rig.push("A", "A1")
    rig.push("A", "A2")
    rig.faults.settings.push_reorder_rate = 1.0
    rig.push("B", "B1")
    a1 = await rig.gate.next()
    await rig.settle(pending=2, held=1, in_flight=1)
    rig.pusher.reset(random.Random(3))
    assert rig.pusher.stats()["pending"] == 0
    assert rig.pusher.stats()["held"] == 0
    assert rig.pusher.stats()["counts"] == {}
    assert rig.pusher.flush() == 0
    a1.answer.set_result(True)
    await rig.count("acked", 1)
    assert rig.gate.idle()
    assert rig.pusher.stats()["in_flight"] == 0
