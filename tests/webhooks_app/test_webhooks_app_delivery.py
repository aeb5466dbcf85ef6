"""Status changes reach the approval system: signed, verifiable with the reference library, in order per
shipment, through outages and a flaky receiver, without one stuck shipment holding up the others."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from webhooks_app_support import (
    JOURNEY,
    Clock,
    Received,
    Receiver,
    StaticResolver,
    attempts,
    deliveries,
    drain,
    move,
    new_shipment,
    run_due,
    webhook_tasks,
)

from logistics.accounts import clients
from logistics.domain.events import apply_event, emit_label_ready, lock_shipment
from logistics.domain.tables import outbox, webhook_deliveries
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database
from webhooks import AddressPolicy, Sender


async def test_every_status_change_arrives_signed_and_in_order(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, *JOURNEY)
    await drain(rt, clock)
    got = receiver.accepted()
    assert [r.payload["type"] for r in got] == [f"shipment.{s}" for s in JOURNEY]
    assert [r.payload["data"]["sequence"] for r in got] == [2, 3, 4, 5]
    assert all(r.verified for r in receiver.received)


async def test_webhook_id_is_the_delivery_id(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    (row,) = await deliveries(db, sid)
    assert row["status"] == "delivered"
    assert row["delivered_at"] is not None
    assert [r.msg_id for r in receiver.received] == [row["id"]]
    assert row["id"].startswith("msg_")


async def test_payload_is_a_summary_without_the_applicants_personal_data(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    (got,) = receiver.accepted()
    text = got.body.decode()
    for personal in ("欧阳娜娜", "13803712345", "济源路8号院", "402715"):
        assert personal not in text
    data = got.payload["data"]
    assert data["id"] == sid
    assert data["status"] == "picked_up"
    assert data["cases"] == [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}]
    assert data["tracking_url"] == f"http://127.0.0.1:8080/t/{data['tracking_code']}"
    assert data["event"]["carrier_text"] == "已收寄"
    assert data["event"]["sequence"] == data["sequence"] == 2


async def test_client_without_webhook_url_gets_no_delivery(db: Database, hall: clients.Credentials) -> None:
    sid = await new_shipment(db, hall.id)
    await move(db, sid, "picked_up")
    assert await deliveries(db) == []
    assert await webhook_tasks(db) == []


async def test_delivery_is_written_in_the_status_change_transaction(
    db: Database, subscribed: clients.Credentials
) -> None:
    sid = await new_shipment(db, subscribed.id)
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            row = await lock_shipment(conn, sid)
            assert row is not None
            await apply_event(conn, row, status="picked_up", source="scan")
            raise RuntimeError("the caller's transaction fails after the change")
    assert await deliveries(db) == []
    assert await webhook_tasks(db) == []


async def test_one_task_per_shipment_whatever_the_number_of_changes(
    db: Database, subscribed: clients.Credentials
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, *JOURNEY)
    assert [t["shipment_id"] for t in await webhook_tasks(db)] == [sid]
    assert [d["position"] for d in await deliveries(db, sid)] == [1, 2, 3, 4]


async def test_a_late_event_that_changes_nothing_sends_nothing(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "in_transit", "picked_up")  # the pickup scan arrives after the transit scan
    assert [d["type"] for d in await deliveries(db, sid)] == ["shipment.in_transit"]


async def test_label_ready_follows_the_status_change_it_came_with(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id, status="pending")
    async with db.write() as conn:
        row = await lock_shipment(conn, sid)
        assert row is not None
        await apply_event(conn, row, status="ordered", source="system")
        await emit_label_ready(conn, {sid: {"label_formats": ["pdf", "png", "zpl"]}})
    await drain(rt, clock)
    got = [r.payload for r in receiver.accepted()]
    assert [p["type"] for p in got] == ["shipment.ordered", "shipment.label_ready"]
    assert got[1]["data"]["label_url"] == f"http://127.0.0.1:8080/v1/shipments/{sid}/label"
    assert got[1]["data"]["label_formats"] == ["pdf", "png", "zpl"]
    assert got[1]["data"]["event"] is None


async def test_a_changed_body_fails_verification_at_the_receiver(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "delivered")
    await drain(rt, clock)
    (got,) = receiver.accepted()
    Webhook(subscribed.webhook_secret).verify(got.body, got.headers)
    tampered = got.body.replace(b'"delivered"', b'"returned"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        Webhook(subscribed.webhook_secret).verify(tampered, got.headers)


async def test_an_old_timestamp_is_refused_and_the_next_fresh_attempt_passes(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    import time

    # A worker whose signature is ten minutes old: the reference receiver must reject it as a replay.
    await rt.services[webhook_delivery.SENDER].close()
    rt.services[webhook_delivery.SENDER] = Sender(AddressPolicy(allow_loopback=True), clock=lambda: time.time() - 600)
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    (first,) = receiver.received
    assert not first.verified and "too old" in (first.error or "")
    (row,) = await deliveries(db, sid)
    assert (row["status"], row["last_status_code"]) == ("pending", 400)

    await rt.services[webhook_delivery.SENDER].close()
    rt.services[webhook_delivery.SENDER] = Sender(AddressPolicy(allow_loopback=True))
    await drain(rt, clock)
    assert [r.msg_id for r in receiver.accepted()] == [first.msg_id]
    assert receiver.accepted()[0].timestamp != first.timestamp


async def test_receiver_down_for_a_while_then_back_gets_everything_in_order(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    await receiver.stop()
    shipments = [await new_shipment(db, subscribed.id, case_no=f"410106-2018-{n:05d}") for n in range(1, 4)]
    for sid in shipments:
        await move(db, sid, *JOURNEY)
    # Attempts at 0 s, 5 s, 5 min and 30 min (±20 % jitter: the 4th by 42 min at the latest, the 5th after 1 h 36 min
    # at the earliest): an hour holds exactly four refused attempts whatever the jitter.
    await drain(rt, clock, limit=timedelta(minutes=60))
    refused = await attempts(db, (await deliveries(db, shipments[0]))[0]["id"])
    assert len(refused) == 4 and all(a["status_code"] is None for a in refused)

    await receiver.start()  # same port
    await drain(rt, clock)
    by_shipment = receiver.sequences_by_shipment(receiver.accepted())
    assert by_shipment == {sid: [2, 3, 4, 5] for sid in shipments}
    assert {d["status"] for d in await deliveries(db)} == {"delivered"}


async def test_receiver_failing_30_percent_still_gets_every_event_in_order(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    rng = random.Random(20180709)
    receiver.answer = lambda _: (500, {}) if rng.random() < 0.3 else (204, {})
    shipments = [await new_shipment(db, subscribed.id, case_no=f"410106-2018-{n:05d}") for n in range(1, 7)]
    for sid in shipments:
        await move(db, sid, *JOURNEY)
    await drain(rt, clock)
    assert any(r.answered == 500 for r in receiver.received)
    # Everything the receiver saw, retries included, is in order per shipment; and nothing is missing.
    for sid, seen in receiver.sequences_by_shipment().items():
        assert seen == sorted(seen), sid
        assert sorted(set(seen)) == [2, 3, 4, 5]
    assert {r.payload["data"]["id"] for r in receiver.accepted()} == set(shipments)
    assert {d["status"] for d in await deliveries(db)} == {"delivered"}


async def test_one_stuck_shipment_does_not_hold_up_the_others(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    stuck = await new_shipment(db, subscribed.id, case_no="410106-2018-00001")
    flowing = [await new_shipment(db, subscribed.id, case_no=f"410106-2018-{n:05d}") for n in range(2, 5)]

    def answer(record: Received) -> tuple[int, dict[str, str]]:
        return (503, {}) if record.payload["data"]["id"] == stuck else (204, {})

    receiver.answer = answer
    for sid in [stuck, *flowing]:
        await move(db, sid, *JOURNEY)
    # Attempts at 0 s, 5 s, 5 min, 30 min and 2 h (±20 % jitter: the 5th by 3 h 6 min at the latest, the 6th after
    # 6 h at the earliest): four hours hold exactly five attempts whatever the jitter.
    await drain(rt, clock, limit=timedelta(hours=4))
    assert receiver.sequences_by_shipment(receiver.accepted()) == {sid: [2, 3, 4, 5] for sid in flowing}
    head, *behind = await deliveries(db, stuck)
    assert head["status"] == "pending" and head["attempts"] == 5
    # Order per shipment: nothing behind the stuck delivery has been tried.
    assert [d["attempts"] for d in behind] == [0, 0, 0]
    assert {r.payload["data"]["sequence"] for r in receiver.received if r.payload["data"]["id"] == stuck} == {2}


async def test_the_next_delivery_goes_once_the_previous_gave_up(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up", "in_transit")
    first, _second = await deliveries(db, sid)
    receiver.answer = lambda r: (500, {}) if r.msg_id == first["id"] else (204, {})
    await drain(rt, clock)
    gave_up, sent = await deliveries(db, sid)
    assert (gave_up["status"], gave_up["attempts"]) == ("failed", 10)
    assert sent["status"] == "delivered"
    assert [r.payload["data"]["sequence"] for r in receiver.received] == [2] * 10 + [3]


async def test_rotation_signs_with_both_secrets_for_a_day(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    new_secret = await clients.rotate_secret(db, subscribed.id)
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    (got,) = receiver.accepted()  # the receiver still only knows the old secret
    assert len(got.signature.split()) == 2
    Webhook(new_secret).verify(got.body, got.headers)

    clock.advance(timedelta(hours=24, minutes=1))
    await move(db, sid, "in_transit")
    await drain(rt, clock)
    later = receiver.received[-1]
    assert not later.verified  # only the new secret signs now
    assert len(later.signature.split()) == 1
    Webhook(new_secret).verify(later.body, later.headers)


@pytest.mark.parametrize(
    ("host", "resolves_to"),
    [
        ("10.12.0.8", None),
        ("172.16.3.4", None),
        ("192.168.1.20", None),
        ("100.64.0.9", None),
        ("169.254.169.254", None),
        ("[::1]", None),
        ("[::ffff:127.0.0.1]", None),
        ("spxt.sj-zwfw.example", "127.0.0.1"),
        ("intranet.sj-zwfw.example", "10.0.0.7"),
    ],
)
async def test_private_or_loopback_targets_are_refused_at_delivery(
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    receiver: Receiver,
    host: str,
    resolves_to: str | None,
) -> None:
    # Production policy: nothing private, not even loopback (where the receiver does listen).
    await rt.services[webhook_delivery.SENDER].close()
    resolver = StaticResolver({host: resolves_to}) if resolves_to else None
    rt.services[webhook_delivery.SENDER] = Sender(AddressPolicy(), resolver=resolver)
    await clients.set_webhook(db, subscribed.id, f"http://{host}:{receiver.port}/hooks/logistics")
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    (row,) = await deliveries(db, sid)
    (attempt,) = await attempts(db, row["id"])
    assert attempt["status_code"] is None
    assert "blocked by webhook address policy" in attempt["error"]
    assert row["status"] == "pending"
    assert receiver.received == []


async def test_a_second_task_for_the_same_shipment_steps_aside(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    from logistics.storage.outbox import insert_tasks, task_row

    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, *JOURNEY)
    async with db.write() as conn:
        await insert_tasks(conn, [task_row("webhook", sid)])
    await drain(rt, clock)
    assert receiver.sequences_by_shipment() == {sid: [2, 3, 4, 5]}
    assert await webhook_tasks(db) == []
    async with db.read() as conn:
        assert (await conn.execute(select(outbox.c.id))).first() is None
        statuses = (await conn.execute(select(webhook_deliveries.c.status))).scalars().all()
    assert set(statuses) == {"delivered"}
    assert json.loads(receiver.received[0].body)["type"] == "shipment.picked_up"
