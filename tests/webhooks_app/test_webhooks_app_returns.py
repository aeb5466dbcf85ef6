"""Webhooks of the unhappy path, verified by the approval system's standardwebhooks receiver: a failed attempt, the
way back and the return carry the reason and the attempts; the hall's resolution is announced too."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from returns_support import new_shipment, push, refused_and_returned
from webhooks_app_support import Clock, Receiver, drain

from logistics.accounts.clients import Credentials
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database

from support import auth


async def test_refused_returning_returned_and_resolved_webhooks_carry_reason_and_attempts(
    api: TestClient, db: Database, subscribed: Credentials, receiver: Receiver, rt: Runtime, clock: Clock
) -> None:
    made = await new_shipment(db, subscribed.id)
    await push(db, *refused_and_returned(made["waybill"]))
    resp = await api.post(
        f"/v1/shipments/{made['id']}/resolve",
        json={"action": "window_pickup", "note": "申请人将到3号窗口领取"},
        headers=auth(subscribed),
    )
    assert resp.status == 200
    await drain(rt, clock)

    received = {r.payload["type"]: r.payload["data"] for r in receiver.verified()}
    assert len(receiver.verified()) == len(receiver.received)  # every one verified by the reference library
    assert list(received) == [
        "shipment.picked_up",
        "shipment.out_for_delivery",
        "shipment.delivery_failed",
        "shipment.returning",
        "shipment.returned",
        "shipment.resolved",
    ]
    refused = {"reason_code": "104", "reason": "拒收", "occurred_at": "2026-12-03T06:30:00Z", "stage": "delivery"}
    for kind in ("shipment.delivery_failed", "shipment.returning", "shipment.returned"):
        assert received[kind]["attempts"] == 1, kind
        assert received[kind]["last_failure"] == refused, kind
    assert received["shipment.returning"]["event"]["reason_code"] == "104"
    assert received["shipment.returning"]["event"]["reason"] == "收件人拒收"
    assert received["shipment.returned"]["status"] == "returned"
    resolved = received["shipment.resolved"]
    assert resolved["resolution"]["action"] == "window_pickup"
    assert resolved["resolution"]["note"] == "申请人将到3号窗口领取"
    assert "attempts" not in received["shipment.picked_up"]
