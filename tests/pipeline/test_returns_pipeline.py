"""The unhappy path end to end over real HTTP against the EMS simulator: a parcel refused at the door comes back
to the hall (705 refusal → 708 → 711, pushed sealed as EMS pushes them), the hall resends it with the corrected
address, and the new parcel is delivered there. One carrier order each."""

from __future__ import annotations

from datetime import timedelta

from pipeline_support import StackFactory, wait_until
from returns_support import CORRECTED
from test_tracking import push_body

from carriers.simulator.wire import format_time, parse_time

from support import auth, delivery_body


async def test_refused_returned_resent_and_delivered_to_the_new_address(make_stack: StackFactory) -> None:
    stack = await make_stack(sim={"failed_attempt_rate": 0.0})
    sid = await stack.create(delivery_body())
    await stack.wait_status([sid], "ordered", timeout=15)
    waybill = (await stack.shipment(sid))["waybill_no"]
    [collected] = await stack.tick(1, waybill)  # 收寄, pushed by the simulator
    await stack.wait_status([sid], "picked_up", timeout=15)

    def later(minutes: int) -> str:
        return format_time(parse_time(collected["opTime"]) + timedelta(minutes=minutes))

    unhappy = [
        {
            **collected,
            "opCode": "702",
            "opName": "投递邮件接收-下段",
            "opDesc": "正在投递,投递员:王强",
            "opTime": later(300),
        },
        {
            **collected,
            "opCode": "705",
            "opName": "投递结果反馈-未妥投",
            "opDesc": "未妥投,原因:收件人拒收,投递员:王强 138****5678",
            "opTime": later(330),
        },
        {
            **collected,
            "opCode": "708",
            "opName": "退回",
            "opDesc": "邮件退回中,原因:收件人拒收,已离开【郑州市邮区中心】",
            "opTime": later(600),
        },
        {
            **collected,
            "opCode": "711",
            "opName": "退回妥投",
            "opDesc": "退回邮件已妥投,寄件人签收",
            "opTime": later(1500),
        },
    ]
    for n, event in enumerate(unhappy):
        body = push_body(event, stack.settings.ems_sign_key, f"2026120310000000000{n}")
        answer = await stack.api.post("/carriers/ems/push", data=body, headers={"Content-Type": "application/json"})
        assert (await answer.json())["code"] == "00000"
    await stack.wait_status([sid], "returned", timeout=15)
    returned = await stack.shipment(sid)
    assert returned["attempts"] == 1
    assert returned["last_failure"]["reason_code"] == "104"
    assert [e["status"] for e in returned["events"] if e["carrier_code"]][-3:] == [
        "delivery_failed",
        "returning",
        "returned",
    ]

    resp = await stack.api.post(
        f"/v1/shipments/{sid}/resend",
        json={"recipient": CORRECTED},
        headers={**auth(stack.hall), "Idempotency-Key": "resend-410106-2018-00095"},
    )
    assert resp.status == 201, await resp.text()
    new_id = (await resp.json())["id"]
    await stack.wait_status([new_id], "ordered", timeout=15)
    new_waybill = (await stack.shipment(new_id))["waybill_no"]
    assert new_waybill != waybill
    while await stack.tick(1, new_waybill):
        pass
    await stack.wait_status([new_id], "delivered", timeout=15)

    parcel = await stack.parcel(new_waybill)
    assert parcel["order"]["receiver"]["county"] == "中原区"
    assert parcel["order"]["receiver"]["address"] == CORRECTED["address"]
    orders = await stack.orders()
    assert orders["waybills"] == {sid: waybill, new_id: new_waybill}  # one carrier order each
    assert (await stack.shipment(sid))["resent_as"] == new_id
    assert (await stack.shipment(new_id))["resend_of"] == sid
    await wait_until(stack.pushes_settled, timeout=10, what="pushes settled")
