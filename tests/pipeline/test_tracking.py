"""Tracking over real HTTP: simulator pushes to POST /carriers/ems/push, polling when pushes are lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pipeline_support import Stack, StackFactory, wait_until

from carriers.ems.envelope import seal
from carriers.simulator.wire import format_time, parse_time
from logistics.domain.statuses import RANK

from support import delivery_body, left_hub_event

OTHER_KEY = "WjNoNmhXWE12SFZJdk0zWQ=="  # the second published sample key: not ours
SAMPLE_KEY = "TvaBgrhE46sft3nZlfe7xw=="  # EMS's documentation sample, anyone can seal with it


def push_body(event: dict[str, str], sign_key: str, serial: str = "20181126093012000001") -> bytes:
    """A 040002 push exactly as EMS sends it (the event object, encrypted without the key suffix)."""
    sealed = seal(json.dumps(event, ensure_ascii=False, separators=(",", ":")), sign_key, append_key=False)
    envelope = {
        "logitcsInterface": sealed,
        "method": "040002",
        "msgType": "0",
        "senderNo": "",
        "serialNo": serial,
        "timeStamp": event["opTime"],
        "version": "v1.0.0",
    }
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


async def ordered(stack: Stack, count: int) -> list[tuple[str, str]]:
    ids = await stack.create_many([delivery_body() for _ in range(count)])
    await stack.wait_status(ids, "ordered", timeout=15)
    return [(sid, (await stack.shipment(sid))["waybill_no"]) for sid in ids]


async def carrier_events(stack: Stack, sid: str) -> list[dict[str, Any]]:
    return [e for e in await stack.events(sid) if e["carrier_code"] is not None]


async def test_duplicated_and_reordered_pushes_are_deduplicated_and_forward_only(make_stack: StackFactory) -> None:
    # Every parcel has a failed attempt (705 then 702 again): more steps, and a status that is not on the main path.
    stack = await make_stack(sim={"failed_attempt_rate": 1.0})
    shipments = await ordered(stack, 4)
    await stack.faults({"push": {"duplicate_rate": 0.5, "reorder_rate": 0.5}})

    # Sample every status the database shows while the pushes land: none may ever go backwards.
    seen: dict[str, list[str]] = {sid: [] for sid, _ in shipments}
    stop = asyncio.Event()

    async def sample() -> None:
        while True:
            last = stop.is_set()  # a look begun after the pushes settled sees the final statuses
            for sid, status in (await stack.statuses(list(seen))).items():
                if not seen[sid] or seen[sid][-1] != status:
                    seen[sid].append(status)
            if last:
                return
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        # Several steps back to back, so held (reordered) and repeated pushes overlap with newer events.
        for _ in range(30):
            if not await stack.tick(1):
                break
            await asyncio.sleep(0.05)  # pacing only: the next step goes out while pushes are still landing
        await stack.sim_json("POST", "/admin/push-now")
        await wait_until(stack.pushes_settled, timeout=20, what="every push acknowledged and applied")
    finally:
        stop.set()
        await sampler
    for sid, history in seen.items():
        ranks = [RANK[s] for s in history]
        assert ranks == sorted(ranks), f"{sid} went backwards: {history}"
        assert history[-1] == "delivered"

    pushes = (await stack.sim_json("GET", "/admin/pushes"))["counts"]
    assert pushes.get("duplicated", 0) > 0 and pushes.get("reordered", 0) > 0
    for sid, waybill in shipments:
        parcel = await stack.parcel(waybill)
        events = await carrier_events(stack, sid)
        keys = [(e["carrier_code"], e["occurred_at"]) for e in events]
        assert len(keys) == len(set(keys)), f"duplicate events for {sid}"
        # Every event the carrier recorded is in our history exactly once, whatever order it arrived in.
        assert sorted((e["opCode"], format_time(parse_time(e["opTime"]))) for e in parcel["events"]) == sorted(
            (code, format_time(when)) for code, when in keys
        )
        assert (await stack.statuses([sid]))[sid] == "delivered"


async def test_an_older_event_after_delivery_never_regresses(stack: Stack) -> None:
    [(sid, waybill)] = await ordered(stack, 1)
    while await stack.tick(1, waybill):
        pass
    await stack.wait_status([sid], "delivered", timeout=15)
    await wait_until(stack.pushes_settled, timeout=10, what="pushes settled")
    delivered = (await stack.parcel(waybill))["events"][-1]
    assert delivered["opCode"] == "704"

    # An attempt that failed before the delivery, reported late (as after an outage at the carrier).
    late = {
        **delivered,
        "opCode": "705",
        "opName": "投递结果反馈-未妥投",
        "opDesc": "因收件人不在指定地址,未能妥投,将再次投递",
        "opTime": format_time(parse_time(delivered["opTime"]) - timedelta(hours=2)),
    }
    before = len(await stack.events(sid))
    for serial in ("20181126100000000001", "20181126100000000002"):  # sent twice: the second is a duplicate
        resp = await stack.api.post("/carriers/ems/push", data=push_body(late, stack.settings.ems_sign_key, serial))
        assert (await resp.json())["code"] == "00000"
    await wait_until(stack.pushes_settled, timeout=10, what="late push applied")

    events = await stack.events(sid)
    assert len(events) == before + 1  # kept in the history once, for the record
    assert events[-1]["carrier_code"] == "705" and events[-1]["status"] == "delivery_failed"
    shipment = await stack.shipment(sid)
    assert shipment["status"] == "delivered"


async def test_lost_pushes_are_made_up_by_polling(make_stack: StackFactory) -> None:
    stack = await make_stack(poll_first_seconds=0.3, poll_max_seconds=1.0)
    await stack.faults({"push": {"drop_rate": 1.0}})
    [(sid, waybill)] = await ordered(stack, 1)

    await stack.tick(3, waybill)  # 收寄, 揽投发运, 到达处理中心: none of them pushed
    await stack.wait_status([sid], "in_transit", timeout=15)
    events = await carrier_events(stack, sid)
    assert [e["carrier_code"] for e in events] == ["203", "305", "954"]
    assert {e["source"] for e in events} == {"carrier_poll"}
    assert (await stack.sim_json("GET", "/admin/pushes"))["counts"]["dropped"] == 3
    assert (await stack.orders())["calls"].get("040001", 0) >= 1

    while await stack.tick(1, waybill):
        pass
    await stack.wait_status([sid], "delivered", timeout=15)
    # Tracking stops at a final status: no poll task is left behind.
    await wait_until(lambda: _no_track_tasks(stack), timeout=5, what="tracking retired")


async def test_parcels_polled_in_one_claim_each_get_their_own_events(make_stack: StackFactory) -> None:
    # Polls are claimed many at a time and stored in shared transactions: each parcel keeps its own history.
    stack = await make_stack(poll_first_seconds=0.3, poll_max_seconds=1.0)
    await stack.faults({"push": {"drop_rate": 1.0}})
    parcels = await ordered(stack, 3)
    for steps, (_, waybill) in zip((1, 2, 3), parcels, strict=True):
        await stack.tick(steps, waybill)  # 收寄; 揽投发运; 到达处理中心
    for status, (sid, _) in zip(("picked_up", "in_transit", "in_transit"), parcels, strict=True):
        await stack.wait_status([sid], status, timeout=15)
    for steps, (sid, _) in zip((1, 2, 3), parcels, strict=True):
        assert [e["carrier_code"] for e in await carrier_events(stack, sid)] == ["203", "305", "954"][:steps]


async def _no_track_tasks(stack: Stack) -> bool:
    return await stack.outbox_count("track") == 0


async def test_push_under_a_wrong_key_is_refused_and_changes_nothing(stack: Stack) -> None:
    [(sid, waybill)] = await ordered(stack, 1)
    [collected] = await stack.tick(1, waybill)
    await wait_until(stack.pushes_settled, timeout=10, what="simulator push settled")
    before = await stack.events(sid)

    forged = {**collected, "opCode": "704", "opName": "投递结果反馈-妥投", "opDesc": "已签收,本人签收"}
    resp = await stack.api.post(
        "/carriers/ems/push", data=push_body(forged, OTHER_KEY, "20181126110000000001"), headers=_json()
    )
    assert resp.status == 200
    reply = await resp.json()
    assert reply["code"] == "S00001"
    assert reply["serialNo"] == "20181126110000000001"
    assert await stack.outbox_count("carrier_event") == 0
    assert await stack.events(sid) == before
    assert (await stack.statuses([sid]))[sid] == "picked_up"


async def test_push_sealed_with_the_published_sample_key_is_refused_under_a_configured_key(stack: Stack) -> None:
    assert stack.settings.ems_sign_key != SAMPLE_KEY
    [(sid, waybill)] = await ordered(stack, 1)
    [collected] = await stack.tick(1, waybill)
    await wait_until(stack.pushes_settled, timeout=10, what="simulator push settled")
    before = await stack.events(sid)

    forged = {**collected, "opCode": "704", "opName": "投递结果反馈-妥投", "opDesc": "已签收,本人签收"}
    resp = await stack.api.post(
        "/carriers/ems/push", data=push_body(forged, SAMPLE_KEY, "20181126110000000002"), headers=_json()
    )
    assert (await resp.json())["code"] == "S00001"
    assert await stack.events(sid) == before
    assert (await stack.statuses([sid]))[sid] == "picked_up"


async def test_good_push_is_answered_in_ems_format_and_applied(make_stack: StackFactory) -> None:
    stack = await make_stack(sim={"callback_url": None})  # no simulator pushes: only ours
    [(sid, waybill)] = await ordered(stack, 1)
    [collected] = await stack.tick(1, waybill)

    resp = await stack.api.post(
        "/carriers/ems/push",
        data=push_body(collected, stack.settings.ems_sign_key, "20181126120000000007"),
        headers=_json(),
    )
    assert resp.status == 200
    assert await resp.json() == {
        "serialNo": "20181126120000000007",
        "code": "00000",
        "codeMessage": "",
        "senderNo": stack.settings.ems_sender_no,
    }
    await stack.wait_status([sid], "picked_up", timeout=10)
    [event] = await carrier_events(stack, sid)
    assert event["carrier_code"] == "203" and event["source"] == "carrier_push"
    assert "已收寄" in event["carrier_text"]


async def test_pushes_arriving_together_are_stored_together_and_each_acknowledged(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One transaction per push was the slowest part of a push on SQLite: the write lock is shared with the
    # worker, and a waiting process polls for it with sleeps of up to 100 ms.
    stack = await make_stack(sim={"callback_url": None}, worker=False)
    transactions = 0
    write = stack.db.write

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        nonlocal transactions
        transactions += 1
        async with write() as conn:
            yield conn

    monkeypatch.setattr(stack.db, "write", counted)
    waybills = [f"11512638080{n:02d}" for n in range(20)]
    key = stack.settings.ems_sign_key
    bodies = [push_body(left_hub_event(w), key, f"201811261200000000{n:02d}") for n, w in enumerate(waybills)]
    answers = await asyncio.gather(*(stack.api.post("/carriers/ems/push", data=b, headers=_json()) for b in bodies))
    assert [(await a.json())["code"] for a in answers] == ["00000"] * 20
    assert await stack.outbox_count("carrier_event") == 20
    assert transactions < 20


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8"}
