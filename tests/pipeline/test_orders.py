"""Ordering over real HTTP: API → outbox → arq worker → EMS simulator → waybill in the database."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline_support import Stack, StackFactory, wait_until

from support import APPLICANT, delivery_body, intake_body

BEIJING = ZoneInfo("Asia/Shanghai")


async def test_delivery_is_ordered_with_a_waybill_and_sorting_codes(stack: Stack) -> None:
    sid = await stack.create(delivery_body())
    await stack.wait_status([sid], "ordered", timeout=15)

    shipment = await stack.shipment(sid)
    assert len(shipment["waybill_no"]) == 13 and shipment["waybill_no"].isdigit()
    assert shipment["route_code"]
    assert shipment["destination_name"]
    assert shipment["label_url"].endswith(f"/v1/shipments/{sid}/label")
    assert [e["status"] for e in shipment["events"]] == ["pending", "ordered"]
    orders = await stack.orders()
    assert orders["calls"] == {"020003": 1}
    assert orders["orders"] == {sid: 1}
    assert orders["waybills"] == {sid: shipment["waybill_no"]}


async def test_intake_order_books_door_pickup_in_the_window(stack: Stack) -> None:
    body = intake_body()
    sid = await stack.create(body)
    await stack.wait_status([sid], "ordered", timeout=15)

    shipment = await stack.shipment(sid)
    order = (await stack.parcel(shipment["waybill_no"]))["order"]
    start = datetime.fromisoformat(body["pickup_window"]["start"]).astimezone(BEIJING)
    end = datetime.fromisoformat(body["pickup_window"]["end"]).astimezone(BEIJING)
    assert order["logisticsOrderNo"] == sid
    assert str(order["pickupType"]) == "1"
    assert order["pickupPreBeginTime"] == start.strftime("%Y-%m-%d %H:%M:%S")
    assert order["pickupPreEndTime"] == end.strftime("%Y-%m-%d %H:%M:%S")
    assert order["sender"]["name"] == "张伟" and order["sender"]["county"] == "上街区"
    assert "receiverSafetyCode" not in order


async def test_delivery_with_verification_code_sends_receiver_safety_code(stack: Stack) -> None:
    sid = await stack.create(delivery_body(verification_code=True))
    await stack.wait_status([sid], "ordered", timeout=15)

    shipment = await stack.shipment(sid)
    order = (await stack.parcel(shipment["waybill_no"]))["order"]
    assert order["receiverSafetyCode"] == shipment["verification_code"]
    assert len(shipment["verification_code"]) == 6
    assert str(order["pickupType"]) == "0"  # the hall hands the envelope in; EMS delivers to the door
    assert order["receiver"]["name"] == APPLICANT["name"]


async def test_business_rejection_fails_after_one_call(make_stack: StackFactory) -> None:
    # The simulator's contract only covers Henan: an address in Guangdong is a B06 rejection, final.
    stack = await make_stack(sim={"service_provinces": frozenset({"河南省"})})
    recipient = {**APPLICANT, "province": "广东省", "city": "广州市", "district": "天河区", "address": "天河路385号"}
    sid = await stack.create(delivery_body(recipient=recipient))
    await stack.wait_status([sid], "failed", timeout=15)

    shipment = await stack.shipment(sid)
    assert shipment["failure_reason"].startswith("B06")
    assert "超出服务范围" in shipment["failure_reason"]
    assert shipment["waybill_no"] is None
    assert shipment["events"][-1]["carrier_code"] == "B06"
    # Let a sweep or two pass: a rejected order must not be tried again.
    await wait_until(lambda: _no_order_tasks(stack), timeout=5, what="order task finished")
    orders = await stack.orders()
    assert orders["calls"] == {"020003": 1}
    assert orders["orders"] == {}


async def _no_order_tasks(stack: Stack) -> bool:
    return await stack.outbox_count("order") == 0


async def test_cancel_of_an_ordered_shipment_cancels_at_the_carrier(stack: Stack) -> None:
    sid = await stack.create(delivery_body())
    await stack.wait_status([sid], "ordered", timeout=15)
    waybill = (await stack.shipment(sid))["waybill_no"]

    resp = await stack.api.post(
        f"/v1/shipments/{sid}/cancel", json={"reason": "申请人改为窗口自取"}, headers=_auth(stack)
    )
    assert resp.status == 200
    assert (await resp.json())["status"] == "cancelled"

    async def cancelled_at_carrier() -> bool:
        return (await stack.parcel(waybill))["state"] == "cancelled"

    await wait_until(cancelled_at_carrier, timeout=15, what="the carrier order cancelled")
    parcel = await stack.parcel(waybill)
    assert parcel["cancelReason"] == "申请人改为窗口自取"
    assert (await stack.orders())["calls"]["020006"] == 1
    await wait_until(lambda: _no_cancel_tasks(stack), timeout=5, what="cancel task finished")
    assert (await stack.statuses([sid])) == {sid: "cancelled"}


async def _no_cancel_tasks(stack: Stack) -> bool:
    return await stack.outbox_count("cancel") == 0


def _auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.hall.api_key}"}
