"""Injected faults as a client sees them, and the promise that survives them: one order per logisticsOrderNo."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from sim_fixtures import API, AUTHORIZATION, SENDER_NO, SIGN_KEY, Harness, make_order

from carriers.simulator.faults import FaultInjector
from carriers.simulator.wire import read_response, request_form

SimFactory = Callable[..., Awaitable[Harness]]
ORDER_NO = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"


def _form(order_no: str = ORDER_NO) -> dict[str, str]:
    return request_form(
        "020003", [make_order(order_no)], sender_no=SENDER_NO, authorization=AUTHORIZATION, sign_key=SIGN_KEY
    )


async def test_http_5xx_fault(sim: Harness) -> None:
    await sim.faults({"errors": {"http_5xx": 1.0}, "http_status": 502})
    resp = await sim.client.post(API, data=_form())
    assert resp.status == 502
    assert (await sim.orders())["orders"] == {}


async def test_s_code_fault(sim: Harness) -> None:
    await sim.faults({"errors": {"s_code": 1.0}, "s_code": "S06"})
    code, _, body = await sim.call("020003", [make_order()])
    assert (code, body) == ("S06", None)
    assert (await sim.orders())["orders"] == {}


async def test_b_code_fault(sim: Harness) -> None:
    await sim.faults({"errors": {"b_code": 1.0}})
    code, _, _ = await sim.call("020003", [make_order()])
    assert code == "B04"


async def test_connection_reset_fault(sim: Harness) -> None:
    await sim.faults({"errors": {"connection_reset": 1.0}})
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await sim.client.post(API, data=_form())
    stats = await sim.orders()
    assert stats["orders"] == {}
    assert stats["faults_injected"]["connection_reset"] == 1


async def test_timeout_after_create_still_one_order(sim: Harness) -> None:
    await sim.faults({"errors": {"timeout_after_create": 1.0}, "hang_seconds": 30})
    with pytest.raises(TimeoutError):
        await sim.call("020003", [make_order()], timeout=0.2)
    stats = await sim.orders()
    assert stats["orders"] == {ORDER_NO: 1}
    waybill = stats["waybills"][ORDER_NO]
    # The client retries with the same order number once the partner recovers.
    await sim.admin("DELETE", "/admin/faults")
    body = await sim.create()
    assert body["waybillNo"] == waybill
    stats = await sim.orders()
    assert stats["orders"] == {ORDER_NO: 1}
    assert stats["create_calls"] == {ORDER_NO: 2}


async def test_timeout_after_create_can_end_in_a_reset(sim: Harness) -> None:
    await sim.faults({"errors": {"timeout_after_create": 1.0}, "hang_seconds": 0, "hang_then": "reset"})
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await sim.client.post(API, data=_form())
    assert (await sim.orders())["orders"] == {ORDER_NO: 1}


async def test_latency_fault(sim: Harness) -> None:
    await sim.faults({"latency": {"fixed_ms": 80, "jitter_ms": 20}})
    started = time.monotonic()
    code, _, _ = await sim.call("040001", {"waybillNo": "1295780512499", "direction": "0"})
    elapsed = time.monotonic() - started
    assert code == "00000"
    assert 0.08 <= elapsed < 1.0


async def test_outage_answers_503_then_ends(sim: Harness) -> None:
    await sim.faults({"outage": {"seconds": 30, "mode": "503"}})
    resp = await sim.client.post(API, data=_form())
    assert resp.status == 503
    faults = await sim.admin("GET", "/admin/faults")
    assert 0 < faults["outage"]["seconds"] <= 30
    await sim.faults({"outage": {"seconds": 0}})
    assert (await sim.create())["logisticsOrderNo"] == ORDER_NO


async def test_outage_by_reset(sim: Harness) -> None:
    await sim.faults({"outage": {"seconds": 30, "mode": "reset"}})
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await sim.client.post(API, data=_form())
    # Admin endpoints stay up during an outage, or nobody could end it.
    assert (await sim.admin("GET", "/healthz"))["status"] == "ok"


async def test_rate_limit_answers_429(sim: Harness) -> None:
    await sim.faults({"rate_limit": {"rps": 2}})
    statuses = []
    for _ in range(4):
        resp = await sim.client.post(API, data=_form())
        statuses.append(resp.status)
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    assert (await sim.orders())["faults_injected"]["rate_limit"] >= 1


async def test_rate_limit_as_s_code(sim: Harness) -> None:
    await sim.faults({"rate_limit": {"rps": 1, "mode": "s_code", "s_code": "S13"}})
    codes = [(await sim.call("040001", {"waybillNo": "1295780512499"}))[0] for _ in range(3)]
    assert codes[0] == "00000"
    assert "S13" in codes[1:]


async def test_faults_can_target_one_api_code(sim: Harness) -> None:
    await sim.faults({"errors": {"s_code": 1.0}, "api_codes": ["020003"]})
    assert (await sim.call("020003", [make_order()]))[0] == "S07"
    assert (await sim.call("040001", {"waybillNo": "1295780512499"}))[0] == "00000"


async def test_bad_fault_settings_are_refused_whole(sim: Harness) -> None:
    for bad in (
        {"errors": {"s_code": 1.5}},
        {"errors": {"s_code": 0.6, "http_5xx": 0.6}},
        {"errors": {"gremlins": 0.1}},
        {"outage": {"mode": "fire"}},
        {"s_code": "B01"},
        {"latency": {"fixed_ms": 10}, "push": {"drop_rate": -1}},
    ):
        resp = await sim.client.put("/admin/faults", json=bad)
        assert resp.status == 400, bad
        assert "error" in await resp.json()
    faults = await sim.admin("GET", "/admin/faults")
    assert faults["latency"]["fixed_ms"] == 0  # the last one was not half applied


async def test_fault_settings_merge_and_clear(sim: Harness) -> None:
    await sim.faults({"errors": {"s_code": 0.2}})
    merged = await sim.faults({"errors": {"http_5xx": 0.1}, "push": {"drop_rate": 0.5}})
    assert merged["errors"]["s_code"] == 0.2
    assert merged["errors"]["http_5xx"] == 0.1
    assert merged["push"]["drop_rate"] == 0.5
    cleared = await sim.admin("DELETE", "/admin/faults")
    assert set(cleared["errors"].values()) == {0.0}


async def test_seeded_decisions_repeat() -> None:
    def draws(seed: int) -> list[str | None]:
        faults = FaultInjector(random.Random(seed))
        faults.update({"errors": {"s_code": 0.3, "http_5xx": 0.3}}, 0.0)
        return [faults.error_for("020003") for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert {"s_code", "http_5xx", None} == set(draws(1))


async def test_retrying_clients_through_every_fault_get_one_order_each(make_sim: SimFactory) -> None:
    """Clients that retry on anything but a final answer never cause a second carrier order."""
    sim = await make_sim(seed=42)
    await sim.faults(
        {
            "errors": {"http_5xx": 0.15, "s_code": 0.15, "connection_reset": 0.15, "timeout_after_create": 0.15},
            "hang_seconds": 30,
            "latency": {"fixed_ms": 1, "jitter_ms": 3},
        }
    )
    order_nos = [f"shp_01JD8Z6Q2M4X7V3K9T1R5N{n:04d}" for n in range(12)]

    async def place(order_no: str) -> str:
        for _ in range(60):
            try:
                resp = await sim.client.post(API, data=_form(order_no), timeout=aiohttp.ClientTimeout(total=0.3))
                if resp.status != 200:
                    continue
                code, _, body = read_response(await resp.json())
            except (aiohttp.ClientError, TimeoutError):
                continue
            if code == "00000":
                return body["waybillNo"]
        raise AssertionError(f"{order_no}: no success in 60 tries")

    waybills = await asyncio.gather(*(place(n) for n in order_nos))
    stats = await sim.orders()
    assert stats["orders"] == dict.fromkeys(order_nos, 1)
    assert len(set(waybills)) == len(order_nos)
    assert [stats["waybills"][n] for n in order_nos] == waybills
    assert sum(stats["create_calls"].values()) >= len(order_nos)
    injected = stats["faults_injected"]
    assert {"http_5xx", "s_code", "connection_reset", "timeout_after_create"} <= set(injected)
