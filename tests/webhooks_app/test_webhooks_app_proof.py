"""The shipment.delivered webhook carries the proof of service, verified with the reference receiver."""

from __future__ import annotations

from webhooks_app_support import JOURNEY, Clock, Receiver, drain, move, new_shipment

from logistics.accounts import clients
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database


async def test_the_delivered_webhook_carries_the_proof_without_the_signers_name(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, *JOURNEY)
    await drain(rt, clock)
    (delivered,) = [r for r in receiver.accepted() if r.payload["type"] == "shipment.delivered"]
    assert delivered.verified
    proof = delivered.payload["data"]["proof"]
    assert proof["signer"] == {"class": "addressee", "relation": None}  # the name is for the API, not webhooks
    assert proof["personal_service_proven"] is True
    assert proof["verified_by_code"] is False
    assert proof["signed_at"] == delivered.payload["data"]["event"]["occurred_at"]
    assert proof["url"] == f"http://127.0.0.1:8080/v1/shipments/{sid}/proof"
    assert len(proof["sha256"]) == 64


async def test_other_status_webhooks_carry_no_proof(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up", "in_transit")
    await drain(rt, clock)
    assert [r.payload["data"].get("proof") for r in receiver.accepted()] == [None, None]
