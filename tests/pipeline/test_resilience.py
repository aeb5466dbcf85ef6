"""Exactly one carrier order per shipment, whatever the carrier, Redis or the workers do."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from pipeline_support import Stack, StackFactory, wait_until

from support import APPLICANT, delivery_body, intake_body

# Recipients across Henan, so the simulator's sorting codes and 大头笔 differ between orders.
DISTRICTS = [
    ("郑州市", "上街区", "新安路街道济源路8号院3号楼2单元501室"),
    ("郑州市", "金水区", "花园路街道农业路东18号院2号楼1单元302室"),
    ("洛阳市", "涧西区", "南昌路街道天津路12号院5号楼3单元601室"),
    ("开封市", "龙亭区", "北道门街道西门大街102号"),
    ("新乡市", "红旗区", "渠东街道平原路166号院1号楼2单元201室"),
    ("安阳市", "文峰区", "光华路街道文峰大道东段28号"),
]
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = ("建国", "秀英", "志强", "桂兰", "海燕", "晓明")


def bodies(count: int, *, seed: int = 2018) -> list[dict[str, Any]]:
    """Realistic, varied deliveries and intakes (every fifth one an intake)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        city, district, address = DISTRICTS[n % len(DISTRICTS)]
        person = {
            **APPLICANT,
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "phone": f"138{rng.randrange(10**8):08d}",
            "city": city,
            "district": district,
            "address": address,
        }
        case = {"case_no": f"410106-2018-{n + 1:05d}", "item_name": "食品经营许可证核发"}
        if n % 5 == 4:
            out.append(intake_body(sender=person, cases=[case]))
        else:
            out.append(delivery_body(recipient=person, cases=[case], verification_code=n % 2 == 0))
    return out


async def assert_one_order_each(stack: Stack, ids: list[str]) -> dict[str, Any]:
    """The simulator created exactly one order per shipment, and we stored the waybill it gave out."""
    orders = await stack.orders()
    assert set(orders["orders"]) == set(ids)
    assert set(orders["orders"].values()) == {1}, {k: v for k, v in orders["orders"].items() if v != 1}
    async with stack.db.read() as conn:
        from sqlalchemy import select

        from logistics.domain.tables import shipments

        rows = await conn.execute(select(shipments.c.id, shipments.c.waybill_no).where(shipments.c.id.in_(ids)))
        stored = {r.id: r.waybill_no for r in rows}
    assert stored == {sid: orders["waybills"][sid] for sid in ids}
    assert all(len(w) == 13 and w.isdigit() for w in stored.values())
    assert len(set(stored.values())) == len(ids)
    return orders


async def test_transient_faults_still_give_one_order_each(make_stack: StackFactory) -> None:
    # A short client timeout so that "timeout after create" costs half a second, not ten; more tries per job
    # so that the rare run of four faults in a row does not push a shipment into the long database backoff.
    stack = await make_stack(ems_timeout_seconds=0.5, carrier_attempts=10, carrier_retry_seconds=30)
    await stack.faults(
        {
            "errors": {"http_5xx": 0.08, "s_code": 0.08, "connection_reset": 0.07, "timeout_after_create": 0.07},
            "hang_seconds": 2.0,
        }
    )
    ids = await stack.create_many(bodies(200))
    await stack.wait_status(ids, "ordered", timeout=60)

    orders = await assert_one_order_each(stack, ids)
    injected = orders["faults_injected"]
    assert {"http_5xx", "s_code", "connection_reset", "timeout_after_create"} <= set(injected)
    # Orders created at the carrier whose answer we never saw were asked again — and not created twice.
    assert sum(orders["create_calls"].values()) > len(ids)
    assert injected["timeout_after_create"] >= 5


def spare_redis_url(url: str, db: int = 13) -> str:
    """The test Redis, another database number: FLUSHDB there cannot touch anyone else's queues."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={db}"))
    return urlunsplit(parts._replace(path=f"/{db}"))


async def test_redis_flushed_mid_run_loses_nothing(make_stack: StackFactory, redis_url: str) -> None:
    url = spare_redis_url(redis_url)
    stack = await make_stack(redis_url=url, lease_seconds=2)
    # Jittered carrier latency keeps orders in flight while Redis is wiped.
    await stack.faults({"latency": {"fixed_ms": 50, "jitter_ms": 1500}})
    first = await stack.create_many(bodies(80, seed=1))
    redis = aioredis.Redis.from_url(url)
    try:

        async def some_ordered() -> bool:
            statuses = await stack.statuses(first)
            return any(s == "ordered" for s in statuses.values())

        await wait_until(some_ordered, timeout=15, what="the first orders")
        await redis.flushdb()
        # These creates signal the workers through Redis; wiping it right after loses the signals too.
        second = await stack.create_many(bodies(40, seed=2))
        await redis.flushdb()
        assert any(s != "ordered" for s in (await stack.statuses(first + second)).values())
    finally:
        await redis.aclose()
    await stack.wait_status(first + second, "ordered", timeout=45)
    await assert_one_order_each(stack, first + second)


async def test_worker_killed_mid_run_then_restarted(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False, lease_seconds=2, ems_timeout_seconds=10)
    # Half the orders are created at the carrier and then answered only after 3 s: the kill is sure to hit
    # orders that exist at the carrier while their waybill is not stored yet.
    await stack.faults(
        {"latency": {"fixed_ms": 50, "jitter_ms": 1000}, "errors": {"timeout_after_create": 0.5}, "hang_seconds": 3}
    )
    ids = await stack.create_many(bodies(60, seed=3))
    first = stack.spawn_worker("killed")

    async def most_reached_the_carrier() -> bool:
        return len((await stack.orders())["orders"]) >= 40

    await wait_until(most_reached_the_carrier, timeout=30, what="the first worker ordering")
    first.kill()
    assert first.process.returncode == -9
    statuses = await stack.statuses(ids)
    assert any(s == "pending" for s in statuses.values()), "the kill came too late to prove anything"

    stack.spawn_worker("restarted")
    await stack.wait_status(ids, "ordered", timeout=45)
    orders = await assert_one_order_each(stack, ids)
    # Orders created when the worker died were asked for again with the same logisticsOrderNo.
    assert any(n > 1 for n in orders["create_calls"].values())
