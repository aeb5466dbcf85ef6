"""Webhook sender throughput against a bare aiohttp POST loop, measured in the same run.

    .venv/bin/python benchmarks/webhooks.py [--deliveries 5000] [--concurrency 32] [--rounds 3]

The receiver runs in a child process and verifies nothing, so the figure is the cost of our client side:
signing, the connect-time address guard, timeouts and result building. Rounds alternate between the two
clients so that machine noise hits both alike; the best round of each is compared. Goal: >= 50 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local_receiver import receiving

from webhooks.sender import Sender
from webhooks.signing import generate_secret
from webhooks.ssrf import AddressPolicy

BODY = json.dumps(
    {
        "type": "shipment.delivered",
        "timestamp": "2026-05-09T08:14:27+08:00",
        "data": {
            "id": "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
            "waybill_no": "1295780512499",
            "status": "delivered",
            "sequence": 7,
            "cases": [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}],
            "department": "上街区市场监督管理局",
            "event": {"status": "delivered", "source": "carrier_push", "carrier_code": "I"},
        },
    },
    ensure_ascii=False,
).encode()


async def _drive(n: int, concurrency: int, one: Callable[[int], Awaitable[bool]]) -> tuple[float, int]:
    """Run ``n`` calls with ``concurrency`` workers; returns (deliveries per second, failures)."""
    counter = iter(range(n))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in counter:
            if not await one(i):
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started), failures


async def bench(url: str, deliveries: int, concurrency: int, rounds: int) -> None:
    secret = generate_secret()
    sender = Sender(AddressPolicy(allow_loopback=True), limit=concurrency)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def via_sender(i: int) -> bool:
        result = await sender.send(url, f"msg_{i}", BODY, [secret])
        return result.outcome.delivered

    async def bare(i: int) -> bool:
        async with session.post(url, data=BODY, headers={"content-type": "application/json"}) as resp:
            await resp.read()
            return resp.status == 204

    try:
        # Warm both pools so neither pays connection setup inside a measured round.
        await _drive(concurrency * 4, concurrency, bare)
        await _drive(concurrency * 4, concurrency, via_sender)
        best_bare = best_sender = 0.0
        for r in range(rounds):
            bare_rate, bare_fail = await _drive(deliveries, concurrency, bare)
            sender_rate, sender_fail = await _drive(deliveries, concurrency, via_sender)
            print(
                f"round {r + 1}: bare {bare_rate:8.0f}/s ({bare_fail} failed)   "
                f"Sender {sender_rate:8.0f}/s ({sender_fail} failed)"
            )
            best_bare = max(best_bare, bare_rate)
            best_sender = max(best_sender, sender_rate)
    finally:
        await sender.close()
        await session.close()

    ratio = best_sender / best_bare
    print(f"bare aiohttp POST loop : {best_bare:8.0f} deliveries/s (concurrency {concurrency})")
    print(f"webhooks.Sender        : {best_sender:8.0f} deliveries/s (signed, guarded)")
    print(f"ratio                  : {ratio:.0%} (goal >= 50%) {'OK' if ratio >= 0.5 else 'BELOW GOAL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with receiving("/hook") as url:
        asyncio.run(bench(url, args.deliveries, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
