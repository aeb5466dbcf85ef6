"""End to end against the EMS simulator: the delivered parcel's proof of service comes from what EMS pushed."""

from __future__ import annotations

from datetime import UTC

from pipeline_support import Stack, wait_until

from carriers.ems.signers import classify
from carriers.simulator.wire import parse_time

from support import auth, delivery_body


async def test_a_parcel_delivered_by_the_simulator_has_the_proof_its_events_state(stack: Stack) -> None:
    [sid] = await stack.create_many([delivery_body()])
    await stack.wait_status([sid], "ordered", timeout=15)
    waybill = (await stack.shipment(sid))["waybill_no"]
    while await stack.tick(1, waybill):
        pass
    await stack.wait_status([sid], "delivered", timeout=15)
    await wait_until(stack.pushes_settled, timeout=10, what="pushes settled")
    pushed = {e["opCode"]: e for e in (await stack.parcel(waybill))["events"]}

    resp = await stack.api.get(f"/v1/shipments/{sid}/proof", headers=auth(stack.hall) | {"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    facts = await resp.json()
    signer = classify(pushed["704"]["opDesc"])
    assert facts["signer"] == {"class": signer.cls, "name": signer.name, "relation": signer.relation}
    assert facts["signer"]["class"] != "unknown"

    def utc(op_time: str) -> str:
        return parse_time(op_time).astimezone(UTC).isoformat().replace("+00:00", "Z")

    assert facts["signed_at"] == utc(pushed["704"]["opTime"])
    assert facts["handed_to_post_at"] == utc(pushed["203"]["opTime"])
    assert facts["events"][-1]["text"] == pushed["704"]["opDesc"]
    pdf = await stack.api.get(f"/v1/shipments/{sid}/proof", headers=auth(stack.hall))
    assert pdf.content_type == "application/pdf"
    assert pdf.headers["X-Proof-SHA256"] == facts["sha256"] == (await stack.shipment(sid))["proof"]["sha256"]
