"""Tracking pushes (040002) to the configured callback URL, with retries and the push faults.

One background task hands due pushes to short-lived sender tasks. At most one push per waybill is in flight,
so without faults a receiver sees each parcel's events in order; reordering only comes from the reorder fault
and from retries (as with the real partner, a failed push does not hold back the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from carriers.ems.envelope import seal
from carriers.simulator.config import SimConfig
from carriers.simulator.faults import FaultInjector
from carriers.simulator.wire import OK, beijing_now, dumps, format_time, serial_no


@dataclass(slots=True)
class _Push:
    seq: int
    waybill: str
    body: dict[str, Any]
    due: float
    attempts: int = 0
    duplicate: bool = False  # send once more after it is acknowledged
    replay: bool = False  # a duplicate: resend the body exactly as first delivered
    held: bool = False  # held back by the reorder fault until a later event of the parcel went out


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
        self._pending: list[_Push] = []
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
        if decision.reorder and not any(p.held and p.waybill == waybill for p in self._pending):
            item.held = True
            item.due = now + max(self._config.push_retry_seconds, 0.001)
            self._count("reordered")
        self._pending.append(item)
        self._wake.set()
        self._changed()

    def flush(self) -> int:
        """Make every waiting push (held back or waiting to retry) due now."""
        now = self._mono()
        waiting = [p for p in self._pending if p.due > now or p.held]
        for item in waiting:
            item.due = now
            item.held = False
        self._wake.set()
        return len(waiting)

    def reset(self, rng: random.Random) -> None:
        """Forget waiting pushes and counters; pushes already on the wire finish on their own."""
        self._rng = rng
        self._pending.clear()
        self.counts.clear()
        self.last_error = ""

    def stats(self) -> dict[str, Any]:
        return {
            "enabled": self._config.callback_url is not None,
            "pending": len(self._pending),
            "held": sum(1 for p in self._pending if p.held),
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

    # -- the loop --------------------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _take_ready(self, now: float) -> list[_Push]:
        chosen: list[_Push] = []
        busy = set(self._inflight)
        slots = self._config.push_concurrency - len(self._inflight)
        for item in sorted(self._pending, key=lambda p: p.seq):
            if len(chosen) >= slots:
                break
            if item.due <= now and item.waybill not in busy:
                chosen.append(item)
                busy.add(item.waybill)
        for item in chosen:
            self._pending.remove(item)
            self._inflight.add(item.waybill)
        return chosen

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self._mono()
            for item in self._take_ready(now):
                task = asyncio.create_task(self._attempt(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            waiting = [p.due for p in self._pending if p.waybill not in self._inflight]
            timeout = max(0.0, min(waiting) - now) if waiting else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt(self, item: _Push) -> None:
        ok = False
        try:
            item.attempts += 1
            self._count("attempts")
            ok = await self._send(item)
        finally:
            self._inflight.discard(item.waybill)
            now = self._mono()
            if ok:
                self._count("acked")
                for other in self._pending:
                    if other.held and other.waybill == item.waybill:
                        other.held = False
                        other.due = now
                if item.duplicate:
                    self._count("duplicated")
                    self._pending.append(
                        _Push(seq=self._next_seq(), waybill=item.waybill, body=dict(item.body), due=now, replay=True)
                    )
            elif item.attempts >= self._config.push_max_attempts:
                self._count("gave_up")
            else:
                self._count("failed_attempts")
                item.due = now + self._config.push_retry_seconds
                self._pending.append(item)
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
