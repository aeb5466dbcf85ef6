"""EMS simulator push sender (carriers.simulator.pusher) against a bare aiohttp POST loop, in the same run.

    .venv/bin/python benchmarks/sim_pusher.py [--pushes 60000] [--waybills 10000] [--concurrency 8]

The whole backlog is queued before the first push goes out, as in a chaos run whose receiver fell behind: that
is where a queue that scans itself per push shows. The receiver runs in a child process and answers 00000
without decrypting, so the CPU seconds are this process's own: the simulator's cost, which in a chaos run is
taken from the service under test. The bare loop posts ready-made bodies with the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

# The project root first (this folder holds webhooks.py and labels.py), then tests/ for support.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local_receiver import receiving

from carriers.simulator.config import SimConfig
from carriers.simulator.faults import FaultInjector
from carriers.simulator.pusher import Pusher

from support import left_hub_event

ANSWER = json.dumps({"serialNo": "", "code": "00000", "codeMessage": "", "senderNo": "1100012345678"}).encode()


def _event(waybill: str, step: int) -> dict[str, str]:
    return {**left_hub_event(waybill, f"2026-11-26 1{step}:05:00"), "orderNo": f"shp_{waybill}"}


def _events(pushes: int, waybills: int) -> list[dict[str, str]]:
    # Interleaved like a chaos run's clock moving all parcels a step at a time.
    names = [f"1{n:012d}" for n in range(waybills)]
    return [_event(names[i % waybills], i // waybills) for i in range(pushes)]


async def _measure(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    return time.perf_counter() - wall, time.process_time() - cpu


async def bare(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, float]:
    session = aiohttp.ClientSession(trust_env=False)
    todo = iter(bodies)

    async def worker() -> None:
        for body in todo:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                answer = json.loads(await resp.text())
                assert resp.status == 200 and answer["code"] == "00000"

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    try:
        return await _measure(run)
    finally:
        await session.close()


async def pusher(url: str, events: list[dict[str, str]], concurrency: int) -> tuple[float, float, float, float]:
    config = SimConfig(callback_url=url, push_concurrency=concurrency, push_retry_seconds=1.0)
    sender = Pusher(config, FaultInjector(random.Random(1)), random.Random(2))
    await sender.start()

    async def enqueue() -> None:
        for event in events:
            sender.enqueue(event)

    async def deliver() -> None:
        await sender.wait_until(lambda: sender.counts.get("acked", 0) == len(events), timeout=3600)

    try:
        queue_wall, queue_cpu = await _measure(enqueue)
        wall, cpu = await _measure(deliver)
    finally:
        await sender.close()
    assert sender.counts.get("failed_attempts", 0) == 0, sender.last_error
    return queue_wall, queue_cpu, wall, cpu


async def bench(url: str, pushes: int, waybills: int, concurrency: int) -> None:
    events = _events(pushes, waybills)
    bodies = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    # Warm up the receiver and this process's code paths on a small batch of each.
    await bare(url, bodies[:500], concurrency)
    await pusher(url, events[:500], concurrency)

    bare_wall, bare_cpu = await bare(url, bodies, concurrency)
    queue_wall, queue_cpu, push_wall, push_cpu = await pusher(url, events, concurrency)
    print(f"{pushes} pushes over {waybills} waybills, concurrency {concurrency}")
    print(f"bare aiohttp POST loop : {pushes / bare_wall:8.0f} pushes/s   CPU {bare_cpu:7.2f} s")
    print(
        f"Pusher                 : {pushes / push_wall:8.0f} pushes/s   CPU {push_cpu:7.2f} s"
        f"   (+ enqueue: {queue_wall:.2f} s wall, {queue_cpu:.2f} s CPU)"
    )
    print(f"ratio                  : {bare_wall / push_wall:.0%} of the bare rate, {push_cpu / bare_cpu:.1f}x its CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=60000)
    parser.add_argument("--waybills", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with receiving("/push", status=200, body=ANSWER, content_type="application/json") as url:
        asyncio.run(bench(url, args.pushes, args.waybills, args.concurrency))


if __name__ == "__main__":
    main()
