"""One claim's worth of shipments delivered by one batch run, as a worker does it: every attempt recorded and
every delivery and task settled by its own outcome whatever the others did, a change made while the batch
sends is not lost, and a cancelled batch still stores what it sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import select
from webhooks_app_support import (
    Clock,
    Received,
    Receiver,
    attempts,
    deliveries,
    drain,
    move,
    new_shipment,
    webhook_tasks,
)

from logistics import metrics
from logistics.accounts import clients
from logistics.domain.events import WEBHOOK_TASK
from logistics.domain.tables import clients as clients_table
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database
from logistics.storage.outbox import Task, claim_due

from support import eventually


async def _claim(rt: Runtime, clock: Clock) -> list[Task]:
    clock.move_to(datetime.now(UTC))
    tasks = await claim_due(rt.db, limit=100, lease_seconds=rt.settings.lease_seconds, now=clock())
    assert tasks and {t.kind for t in tasks} == {WEBHOOK_TASK}
    return tasks


async def _one_batch(rt: Runtime, clock: Clock) -> None:
    """Everything due, in one batch run (the worker's path; ``run_due`` in the other tests runs one task at a
    time)."""
    await webhook_delivery.deliver_batch(rt, await _claim(rt, clock))


@dataclass
class Gate(Receiver):
    """A receiver that notes the sequence of each request as it arrives and holds those of ``held`` until
    ``release`` is set."""

    held: set[int] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: list[int] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.Response:
        sequence = json.loads(await request.read())["data"]["sequence"]
        self.arrived.append(sequence)
        if sequence in self.held:
            await self.release.wait()
        return await super()._handle(request)


async def test_a_batch_with_mixed_answers_records_each_attempt_and_settles_each_row(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    ok, failing, slowed, half = [
        await new_shipment(db, subscribed.id, case_no=f"410106-2018-{n:05d}") for n in range(1, 5)
    ]
    for sid in (ok, failing, slowed, half):
        await move(db, sid, "picked_up", "in_transit")

    def answer(record: Received) -> tuple[int, dict[str, str]]:
        data = record.payload["data"]
        if data["id"] == failing or (data["id"] == half and data["sequence"] == 3):
            return 500, {}
        if data["id"] == slowed:
            return 503, {"Retry-After": "120"}
        return 204, {}

    receiver.answer = answer
    await _one_batch(rt, clock)

    assert receiver.sequences_by_shipment() == {ok: [2, 3], failing: [2], slowed: [2], half: [2, 3]}
    rows = {sid: await deliveries(db, sid) for sid in (ok, failing, slowed, half)}
    tried = {d["id"]: await attempts(db, d["id"]) for ds in rows.values() for d in ds}

    for d in [*rows[ok], rows[half][0]]:
        assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("delivered", 1, 204, None)
        assert d["delivered_at"] is not None and d["next_attempt_at"] is None
        (attempt,) = tried[d["id"]]
        assert (attempt["status_code"], attempt["error"]) == (204, None)
        assert attempt["attempted_at"] == d["delivered_at"]

    head, behind = rows[failing]
    assert (head["status"], head["attempts"], head["last_status_code"]) == ("pending", 1, 500)
    gap = head["next_attempt_at"] - tried[head["id"]][0]["attempted_at"]
    assert timedelta(seconds=4) <= gap <= timedelta(seconds=6)
    # Order per shipment: what is behind a failed delivery was not tried.
    assert (behind["status"], behind["attempts"], tried[behind["id"]]) == ("pending", 0, [])

    (head, _) = rows[slowed]
    assert (head["status"], head["attempts"], head["last_status_code"]) == ("pending", 1, 503)
    assert head["next_attempt_at"] - tried[head["id"]][0]["attempted_at"] == timedelta(seconds=120)

    second = rows[half][1]
    assert (second["status"], second["attempts"], second["last_status_code"]) == ("pending", 1, 500)
    assert [a["status_code"] for a in tried[second["id"]]] == [500]
    assert "稍后重试" in tried[second["id"]][0]["response_body"]

    # Each task is settled by its own shipment: finished when all was sent, else due with its next delivery.
    tasks = {t["shipment_id"]: t for t in await webhook_tasks(db)}
    assert set(tasks) == {failing, slowed, half}
    for sid, task in tasks.items():
        due = next(d["next_attempt_at"] for d in rows[sid] if d["status"] == "pending")
        assert (task["due_at"], task["lease_until"], task["claim_token"]) == (due, None, None)

    await drain(rt, clock, limit=timedelta(hours=1))
    for sid, seen in receiver.sequences_by_shipment().items():
        assert seen == sorted(seen), sid


async def test_gone_in_a_batch_disables_that_endpoint_only(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    other = await clients.create(db, "荥阳市行政审批系统")
    gone = Receiver(secrets=[other.webhook_secret], answer=lambda _: (410, {}))
    await gone.start()
    try:
        await clients.set_webhook(db, other.id, gone.url)
        mine = await new_shipment(db, subscribed.id, case_no="410106-2018-00001")
        theirs = [await new_shipment(db, other.id, case_no=f"410182-2018-{n:05d}") for n in range(1, 3)]
        for sid in [mine, *theirs]:
            await move(db, sid, "picked_up", "in_transit")
        before = metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get()
        await _one_batch(rt, clock)
    finally:
        await gone.stop()

    assert [d["status"] for d in await deliveries(db, mine)] == ["delivered", "delivered"]
    assert receiver.sequences_by_shipment() == {mine: [2, 3]}
    async with db.read() as conn:
        states = {
            r.id: r.webhook_disabled_at
            for r in await conn.execute(select(clients_table.c.id, clients_table.c.webhook_disabled_at))
        }
    assert states[subscribed.id] is None and states[other.id] is not None
    assert metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get() == before + 1  # one alert, however many 410s
    assert {r.payload["data"]["sequence"] for r in gone.received} == {2}
    for sid in theirs:
        head, behind = await deliveries(db, sid)
        assert (head["status"], behind["status"], behind["attempts"]) == ("skipped", "skipped", 0)
        assert [a["status_code"] for a in await attempts(db, head["id"])] == [410] * head["attempts"]
    assert await webhook_tasks(db) == []


async def test_a_change_made_while_the_batch_sends_is_sent_by_the_same_task(
    db: Database, rt: Runtime, clock: Clock, hall: clients.Credentials
) -> None:
    gate = Gate(secrets=[hall.webhook_secret], held={2})
    await gate.start()
    try:
        await clients.set_webhook(db, hall.id, gate.url)
        sid = await new_shipment(db, hall.id)
        await move(db, sid, "picked_up")
        sending = asyncio.create_task(webhook_delivery.deliver_batch(rt, await _claim(rt, clock)))

        async def arrived() -> bool:
            return gate.arrived == [2]

        await eventually(arrived, timeout=10)
        # Planned already and busy sending: this delivery was not in the plan.
        await move(db, sid, "in_transit")
        gate.release.set()
        await sending
        sent, added = await deliveries(db, sid)
        assert (sent["status"], added["status"], added["attempts"]) == ("delivered", "pending", 0)
        (task,) = await webhook_tasks(db)
        assert task["claim_token"] is None and task["due_at"] <= datetime.now(UTC)  # due at once
        await drain(rt, clock)
    finally:
        gate.release.set()
        await gate.stop()
    assert gate.sequences_by_shipment() == {sid: [2, 3]}
    assert [d["status"] for d in await deliveries(db, sid)] == ["delivered", "delivered"]


async def test_a_cancelled_batch_still_stores_what_it_sent(
    db: Database, rt: Runtime, clock: Clock, hall: clients.Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Results wait far longer than the test for their wave: only the cancelled batch's own close stores them.
    monkeypatch.setattr(webhook_delivery, "WAVE_SECONDS", 60.0)
    gate = Gate(secrets=[hall.webhook_secret], held={3})
    await gate.start()
    try:
        await clients.set_webhook(db, hall.id, gate.url)
        sid = await new_shipment(db, hall.id)
        await move(db, sid, "picked_up", "in_transit")
        sending = asyncio.create_task(webhook_delivery.deliver_batch(rt, await _claim(rt, clock)))

        async def second_in_flight() -> bool:
            return gate.arrived == [2, 3]  # so the answer to the first is in hand

        await eventually(second_in_flight, timeout=10)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
    finally:
        gate.release.set()
        await gate.stop()
    first, second = await deliveries(db, sid)
    assert (first["status"], first["attempts"]) == ("delivered", 1)
    assert [a["status_code"] for a in await attempts(db, first["id"])] == [204]
    # The answer to the second never came back before the cancel: it is sent again, a duplicate at worst.
    assert (second["status"], second["attempts"], await attempts(db, second["id"])) == ("pending", 0, [])
