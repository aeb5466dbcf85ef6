"""Tracking pushes (040002) to the configured callback URL, with retries and the push faults.

One background task hands due pushes to short-lived sender tasks. At most one push per waybill is in flight,
so without faults a receiver sees each parcel's events in order; reordering only comes from the reorder fault
and from retries (as with the real partner, a failed push does not hold back the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiohttp

from carriers.ems.envelope import seal
from carriers.simulator.config import SimConfig
from carriers.simulator.faults import FaultInjector
from carriers.simulator.wire import OK, beijing_now, dumps, format_time, serial_no

_State = Literal["waiting", "ready", "blocked", "sending"]


@dataclass(slots=True, eq=False)  # one push is one object: lists and heaps must not match another by value
class _Push:
    seq: int
    waybill: str
    body: dict[str, Any]
    due: float
    attempts: int = 0
    duplicate: bool = False  # send once more after it is acknowledged
    replay: bool = False  # a duplicate: resend the body exactly as first delivered
    # Held back by the reorder fault until a later event of the parcel went out. The mark outlives the hold: a
    # push whose hold ran out stays marked until it is sent and comes back marked from a failed attempt, and
    # stats, flush and the parcel's next reorder decision count it as held all along.
    held: bool = False
    state: _State = "waiting"
    # Of its live entry in Pusher._waiting: a push released early can be back there (after a failed attempt)
    # before its old entry surfaces, and only the ticket tells the two apart.
    ticket: int = 0


class Pusher:
    def __init__(
        self,
        config: SimConfig,
        faults: FaultInjector,
        rng: random.Random,
        *,
        mono: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = beijing_now,
    ) -> None:
        self._config = config
        self._faults = faults
        self._rng = rng
        self._mono = mono
        self._now = now
        # A chaos run queues tens of thousands of pushes, so nothing here may scan the queue per push. A
        # waiting push is in exactly one place: _waiting (by due time, until the loop sees it due), _ready (due,
        # by seq) or _blocked (due, but a push of its waybill is in flight; the lowest seq goes back to _ready
        # when that one finishes). A heap cannot delete, so a push that leaves _waiting early (released by an
        # ack) leaves a stale entry behind, dropped when it surfaces.
        self._waiting: list[tuple[float, int, int, _Push]] = []
        self._ready: list[tuple[int, _Push]] = []
        self._blocked: dict[str, list[tuple[int, _Push]]] = {}
        self._held: dict[str, list[_Push]] = {}  # waiting pushes marked held, by waybill; no empty lists
        self._pending = 0
        self._held_count = 0
        self._tickets = itertools.count(1)
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._change = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._seq = 0
        self.counts: dict[str, int] = {}
        self.last_error = ""

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._config.callback_url is None or self._runner is not None:
            return
        # trust_env=False: a proxy from the environment must never see (or break) local callbacks.
        self._session = aiohttp.ClientSession(
            trust_env=False, timeout=aiohttp.ClientTimeout(total=self._config.push_timeout_seconds)
        )
        self._runner = asyncio.create_task(self._run(), name="ems-sim-pusher")

    async def close(self) -> None:
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- what the simulator calls ----------------------------------------------------------------------------

    def enqueue(self, event: dict[str, str]) -> None:
        if self._config.callback_url is None:
            return
        self._count("events")
        decision = self._faults.push_decision()
        if decision.drop:
            self._count("dropped")
            return
        waybill = event.get("waybillNo", "")
        now = self._mono()
        item = _Push(
            seq=self._next_seq(),
            waybill=waybill,
            body={
                "logitcsInterface": seal(dumps(event), self._config.sign_key, append_key=False),
                "method": "040002",
                "msgType": "0",
                "senderNo": "",
                "serialNo": serial_no(self._rng),
                "timeStamp": "",
                "version": "v1.0.0",
            },
            due=now,
            duplicate=decision.duplicate,
        )
        # Only one held push per parcel: holding a second one would just delay both in their original order.
        if decision.reorder and waybill not in self._held:
            item.held = True
            item.due = now + max(self._config.push_retry_seconds, 0.001)
            self._count("reordered")
        self._put(item, now)
        self._wake.set()
        self._changed()

    def flush(self) -> int:
        """Make every waiting push (held back or waiting to retry) due now."""
        now = self._mono()
        flushed = 0
        for marked in self._held.values():
            for item in marked:
                # Its hold ran out, but it is still marked, so it counts (those in _waiting are counted below).
                if item.state != "waiting":
                    flushed += 1
                    item.held = False
                    item.due = now
        self._held.clear()
        self._held_count = 0
        # Everything left in _waiting is due now (or was already), so all of it goes to _ready.
        waiting, self._waiting = self._waiting, []
        for due, _, ticket, item in waiting:
            if item.state != "waiting" or item.ticket != ticket:
                continue
            if due > now or item.held:
                flushed += 1
                item.held = False
                item.due = now
            self._make_ready(item)
        self._wake.set()
        return flushed

    def reset(self, rng: random.Random) -> None:
        """Forget waiting pushes and counters; pushes already on the wire finish on their own."""
        self._rng = rng
        self._waiting = []
        self._ready = []
        self._blocked = {}
        self._held = {}
        self._pending = 0
        self._held_count = 0
        self.counts.clear()
        self.last_error = ""

    def stats(self) -> dict[str, Any]:
        return {
            "enabled": self._config.callback_url is not None,
            "pending": self._pending,
            "held": self._held_count,
            "in_flight": len(self._inflight),
            "counts": dict(self.counts),
            "last_error": self.last_error,
        }

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (in-process callers: tests, benchmarks) until ``predicate()`` holds after some push outcome."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._change.wait()

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    # -- the queue -------------------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _put(self, item: _Push, now: float) -> None:
        """Queue a push that is not queued: a new one, a replay, or one back from a failed attempt."""
        self._pending += 1
        if item.held:
            self._held.setdefault(item.waybill, []).append(item)
            self._held_count += 1
        if item.due <= now:
            self._make_ready(item)
        else:
            item.state = "waiting"
            item.ticket = next(self._tickets)
            heapq.heappush(self._waiting, (item.due, item.seq, item.ticket, item))

    def _make_ready(self, item: _Push) -> None:
        item.state = "ready"  # also what makes its entry in _waiting (if any) stale
        heapq.heappush(self._ready, (item.seq, item))

    def _release_held(self, waybill: str, now: float) -> None:
        for item in self._held.pop(waybill, ()):
            self._held_count -= 1
            item.held = False
            item.due = now
            if item.state == "waiting":
                self._make_ready(item)

    def _move_due(self, now: float) -> float | None:
        """Move the pushes that have come due to _ready; returns when the next one falls due."""
        waiting = self._waiting
        while waiting:
            due, _, ticket, item = waiting[0]
            if item.state == "waiting" and item.ticket == ticket:
                if due > now:
                    return due
                self._make_ready(item)
            heapq.heappop(waiting)
        return None

    def _take_ready(self) -> list[_Push]:
        chosen: list[_Push] = []
        while self._ready and len(self._inflight) < self._config.push_concurrency:
            _, item = heapq.heappop(self._ready)
            waybill = item.waybill
            if waybill in self._inflight:
                # Parked rather than put back, where it would come up again on every wake while its waybill is out.
                item.state = "blocked"
                heapq.heappush(self._blocked.setdefault(waybill, []), (item.seq, item))
                continue
            item.state = "sending"
            self._inflight.add(waybill)
            self._pending -= 1
            if item.held:
                marked = self._held[waybill]
                marked.remove(item)
                self._held_count -= 1
                if not marked:
                    del self._held[waybill]
            chosen.append(item)
        return chosen

    def _unblock(self, waybill: str) -> None:
        # Only the parcel's lowest parked seq: it goes out before the others, which would just park again.
        parked = self._blocked.get(waybill)
        if parked:
            _, item = heapq.heappop(parked)
            if not parked:
                del self._blocked[waybill]
            self._make_ready(item)

    # -- the loop --------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self._mono()
            next_due = self._move_due(now)
            for item in self._take_ready():
                task = asyncio.create_task(self._attempt(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            # Due pushes that could not go out wait for a slot or their waybill, and both finishing set _wake.
            timeout = None if next_due is None else max(0.0, next_due - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _attempt(self, item: _Push) -> None:
        ok = False
        try:
            item.attempts += 1
            self._count("attempts")
            ok = await self._send(item)
        finally:
            self._inflight.discard(item.waybill)
            self._unblock(item.waybill)
            now = self._mono()
            if ok:
                self._count("acked")
                self._release_held(item.waybill, now)
                if item.duplicate:
                    self._count("duplicated")
                    replay = _Push(
                        seq=self._next_seq(), waybill=item.waybill, body=dict(item.body), due=now, replay=True
                    )
                    self._put(replay, now)
            elif item.attempts >= self._config.push_max_attempts:
                self._count("gave_up")
            else:
                self._count("failed_attempts")
                item.due = now + self._config.push_retry_seconds
                self._put(item, now)
            self._wake.set()
            self._changed()

    async def _send(self, item: _Push) -> bool:
        assert self._session is not None and self._config.callback_url is not None
        if not item.replay:
            # Each attempt is stamped anew; serialNo stays, so a receiver can tell a retry of the same push.
            item.body["timeStamp"] = format_time(self._now())
        body = item.body
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(
                self._config.callback_url,
                data=data,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        try:
            answer = json.loads(text)
        except ValueError:
            self.last_error = f"HTTP {status}: not JSON"
            return False
        if status != 200 or not isinstance(answer, dict) or answer.get("code") != OK:
            self.last_error = f"HTTP {status}: {text[:200]}"
            return False
        return True
