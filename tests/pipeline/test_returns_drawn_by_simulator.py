"""The unhappy path drawn by the simulator itself (no hand-made pushes): a refusal at the door (705/104 → 708 …
→ 711) and the resend delivered; a door pickup that fails twice (206, 206, 207) voiding the intake."""

from __future__ import annotations

from pipeline_support import StackFactory, wait_until
from returns_support import CORRECTED

from support import auth, delivery_body, intake_body


async def test_the_simulator_refuses_returns_and_the_resend_is_delivered(make_stack: StackFactory) -> None:
    stack = await make_stack(sim={"failed_attempt_rate": 0.0})
    # Settings apply to parcels ordered after them: this one is refused at the door.
    await stack.faults({"delivery": {"refusal_rate": 1.0}})
    sid = await stack.create(delivery_body())
    await stack.wait_status([sid], "ordered", timeout=15)
    waybill = (await stack.shipment(sid))["waybill_no"]
    while await stack.tick(1, waybill):
        pass
    await stack.wait_status([sid], "returned", timeout=15)
    returned = await stack.shipment(sid)
    assert returned["attempts"] == 1
    assert returned["last_failure"]["reason_code"] == "104"
    statuses = [e["status"] for e in returned["events"] if e["carrier_code"]]
    assert statuses[-5:] == ["delivery_failed", "returning", "returning", "returning", "returned"]
    parcel = await stack.parcel(waybill)
    assert (parcel["refused"], parcel["returned"], parcel["attempts"]) == (True, True, 1)

    await stack.faults({"delivery": {"refusal_rate": 0.0}})
    resp = await stack.api.post(
        f"/v1/shipments/{sid}/resend",
        json={"recipient": CORRECTED},
        headers={**auth(stack.hall), "Idempotency-Key": "resend-410106-2018-00095"},
    )
    assert resp.status == 201, await resp.text()
    new_id = (await resp.json())["id"]
    await stack.wait_status([new_id], "ordered", timeout=15)
    new_waybill = (await stack.shipment(new_id))["waybill_no"]
    while await stack.tick(1, new_waybill):
        pass
    await stack.wait_status([new_id], "delivered", timeout=15)
    assert (await stack.parcel(new_waybill))["signer_class"] is not None
    await wait_until(stack.pushes_settled, timeout=10, what="pushes settled")


async def test_a_door_pickup_that_fails_twice_voids_the_intake(make_stack: StackFactory) -> None:
    stack = await make_stack()
    await stack.faults({"pickup": {"failure_rate": 1.0}})
    sid = await stack.create(intake_body())
    await stack.wait_status([sid], "ordered", timeout=15)
    waybill = (await stack.shipment(sid))["waybill_no"]
    while await stack.tick(1, waybill):
        pass
    await stack.wait_status([sid], "failed", timeout=15)
    failed = await stack.shipment(sid)
    parcel = await stack.parcel(waybill)
    assert parcel["state"] == "voided"
    assert failed["attempts"] == 2
    assert failed["last_failure"]["reason_code"] == parcel["pickup_failure_reasons"][-1]
