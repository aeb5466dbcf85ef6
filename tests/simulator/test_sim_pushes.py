"""040002 pushes to a real local receiver: decryption, retries, and the push faults."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from sim_fixtures import SENDER_NO, Harness, Receiver, make_order

from carriers.simulator.parcels import EVENT_FIELDS
from carriers.simulator.wire import parse_time

SimFactory = Callable[..., Awaitable[Harness]]


async def test_push_arrives_encrypted_and_decrypts(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url)
    order = await sim.create()
    await sim.tick(1)
    push = await receiver.next()
    assert push.envelope["method"] == "040002"
    assert push.envelope["msgType"] == "0"
    assert push.envelope["senderNo"] == ""
    assert push.envelope["version"] == "v1.0.0"
    assert push.envelope["logitcsInterface"].startswith("|$4|")
    assert re.fullmatch(r"[0-9A-F]{32}", push.envelope["serialNo"])
    parse_time(push.envelope["timeStamp"])
    event = push.event
    assert tuple(event) == EVENT_FIELDS
    assert event["waybillNo"] == order["waybillNo"]
    assert event["orderNo"] == "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
    assert (event["opCode"], event["opName"]) == ("203", "收寄")
    assert event["opOrgName"] == "郑州市上街区揽投部"
    assert SENDER_NO  # the receiver answers with our senderNo; the simulator only checks code


async def test_whole_journey_is_pushed_in_order(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url, failed_attempt_rate=1.0)
    await sim.create()
    events = await sim.tick(20)
    assert [e["opCode"] for e in events] == ["203", "305", "954", "989", "306", "702", "705", "702", "704"]
    pushes = await receiver.take(len(events))
    assert [p.event for p in pushes] == events
    failed = pushes[6].event
    assert failed["opName"] == "投递结果反馈-未妥投"
    assert "将再次投递" in failed["opDesc"]
    assert "再次投递" in pushes[7].event["opDesc"]


async def test_other_city_goes_through_both_hubs(make_sim: SimFactory) -> None:
    sim = await make_sim(failed_attempt_rate=0.0)
    order = make_order()
    order["receiver"].update(city="洛阳市", county="涧西区", address="南昌路街道天津路12号")
    body = await sim.create(order)
    assert body["markDestinationName"] == "洛阳涧西 471"
    events = await sim.tick(20)
    assert [e["opCode"] for e in events] == ["203", "305", "954", "989", "954", "989", "306", "702", "704"]
    assert [e["opOrgName"] for e in events if e["opCode"] == "954"] == ["郑州中心", "洛阳中心"]
    assert events[-1]["opOrgName"] == "洛阳市涧西区揽投部"


async def test_pushes_repeat_until_receiver_answers_00000(make_sim: SimFactory, receiver: Receiver) -> None:
    receiver.fail_next = 3
    sim = await make_sim(callback_url=receiver.url, push_retry_seconds=0.01)
    await sim.create()
    await sim.tick(1)
    refused = [await asyncio.wait_for(receiver.refused.get(), 3) for _ in range(3)]
    push = await receiver.next()
    assert push.event["opCode"] == "203"
    # Every attempt is the same push: one serialNo throughout.
    assert {r["serialNo"] for r in refused} == {push.envelope["serialNo"]}
    counts = (await sim.admin("GET", "/admin/pushes"))["counts"]
    assert counts["acked"] == 1
    assert counts["failed_attempts"] == 3
    assert counts["attempts"] == 4


async def test_push_that_times_out_is_retried(make_sim: SimFactory, receiver: Receiver) -> None:
    receiver.hang_next = 1
    sim = await make_sim(callback_url=receiver.url, push_retry_seconds=0.01, push_timeout_seconds=0.2)
    await sim.create()
    await sim.tick(1)
    push = await receiver.next()
    assert push.event["opCode"] == "203"
    stats = await sim.admin("GET", "/admin/pushes")
    assert stats["counts"]["failed_attempts"] == 1
    assert "Timeout" in stats["last_error"]


async def test_unreachable_receiver_gives_up_after_max_attempts(make_sim: SimFactory) -> None:
    # Port 9 (discard) on localhost is closed: every attempt is a connection error.
    sim = await make_sim(callback_url="http://127.0.0.1:9/push", push_retry_seconds=0.0, push_max_attempts=3)
    await sim.create()
    await sim.tick(1)
    pushes = sim.sim.pusher
    await pushes.wait_until(lambda: pushes.counts.get("gave_up", 0) == 1)
    assert pushes.counts["attempts"] == 3
    assert "ClientConnectorError" in pushes.last_error or "Connect" in pushes.last_error


async def test_duplicate_fault_sends_each_push_twice(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url)
    await sim.faults({"push": {"duplicate_rate": 1.0}})
    await sim.create()
    await sim.tick(2)
    pushes = await receiver.take(4)
    codes = [p.event["opCode"] for p in pushes]
    assert sorted(codes) == ["203", "203", "305", "305"]
    first_203 = [p.envelope for p in pushes if p.event["opCode"] == "203"]
    assert first_203[0] == first_203[1]  # an exact replay
    assert (await sim.orders())["faults_injected"]["push_duplicate"] == 2


async def test_reorder_fault_delivers_later_event_first(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url, push_retry_seconds=60)
    await sim.faults({"push": {"reorder_rate": 1.0}})
    await sim.create()
    await sim.tick(2)
    pushes = await receiver.take(2)
    assert [p.event["opCode"] for p in pushes] == ["305", "203"]


async def test_push_now_releases_held_push(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url, push_retry_seconds=60)
    await sim.faults({"push": {"reorder_rate": 1.0}})
    await sim.create()
    await sim.tick(1)
    assert (await sim.admin("GET", "/admin/pushes"))["held"] == 1
    assert (await sim.admin("POST", "/admin/push-now"))["flushed"] == 1
    assert (await receiver.next()).event["opCode"] == "203"


async def test_push_now_retries_at_once(make_sim: SimFactory, receiver: Receiver) -> None:
    receiver.fail_next = 1
    sim = await make_sim(callback_url=receiver.url, push_retry_seconds=60)
    await sim.create()
    await sim.tick(1)
    await asyncio.wait_for(receiver.refused.get(), 3)
    # The failed attempt is put back only once its answer is handled; wait for that, then flush.
    pusher = sim.sim.pusher
    await pusher.wait_until(lambda: pusher.stats()["pending"] == 1)
    await sim.admin("POST", "/admin/push-now")
    assert (await receiver.next()).event["opCode"] == "203"


async def test_drop_fault_loses_pushes(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url)
    await sim.faults({"push": {"drop_rate": 1.0}})
    await sim.create()
    await sim.tick(2)
    stats = await sim.admin("GET", "/admin/pushes")
    assert stats["counts"]["dropped"] == 2
    assert stats["pending"] == 0
    await sim.faults({"push": {"drop_rate": 0.0}})
    await sim.tick(1)
    # The first push to arrive is the third event: the two dropped ones never come.
    assert (await receiver.next()).event["opCode"] == "954"
    # Tracking still has all three, which is how a poller recovers lost pushes.
    waybill = (await sim.orders())["waybills"]["shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"]
    _, _, track = await sim.call("040001", {"waybillNo": waybill, "direction": "0"})
    assert [i["opCode"] for i in track["responseItems"]] == ["203", "305", "954"]


async def test_automatic_clock_moves_parcels_on_its_own(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url, step_seconds=0.01, failed_attempt_rate=0.0)
    await sim.create()
    pushes = await receiver.take(7)
    assert [p.event["opCode"] for p in pushes] == ["203", "305", "954", "989", "306", "702", "704"]
    times = [parse_time(p.event["opTime"]) for p in pushes]
    assert times == sorted(times)


async def test_automatic_clock_leaves_time_to_cancel(make_sim: SimFactory, receiver: Receiver) -> None:
    sim = await make_sim(callback_url=receiver.url, step_seconds=0.01, pickup_delay_seconds=60)
    body = await sim.create()
    code, _, _ = await sim.call("020006", {"waybillNo": body["waybillNo"], "cancelReason": "改为窗口自取"})
    assert code == "00000"
    assert (await sim.admin("GET", f"/admin/parcels/{body['waybillNo']}"))["state"] == "cancelled"
