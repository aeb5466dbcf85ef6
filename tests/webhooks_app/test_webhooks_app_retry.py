"""What each answer does to a delivery, on a controllable clock: the retry schedule, 3xx, 410, 429 with
Retry-After, and disabling an endpoint that has been failing for days. No test waits in real time."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from webhooks_app_support import (
    Clock,
    Receiver,
    attempts,
    deliveries,
    drain,
    move,
    new_shipment,
    run_due,
    webhook_tasks,
)

from logistics import metrics
from logistics.accounts import clients
from logistics.domain.tables import clients as clients_table
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database
from webhooks import DEFAULT_SCHEDULE


def _always(status: int, headers: dict[str, str] | None = None) -> object:
    return lambda _: (status, headers or {})


async def _endpoint(db: Database, client_id: str) -> dict[str, object]:
    async with db.read() as conn:
        row = (await conn.execute(select(clients_table).where(clients_table.c.id == client_id))).one()
    return dict(row._mapping)


async def test_retries_follow_the_schedule_then_the_delivery_fails(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(500)  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    gaps = []
    for _ in range(DEFAULT_SCHEDULE.max_attempts):
        await run_due(rt, clock)
        (row,) = await deliveries(db, sid)
        if row["next_attempt_at"] is None:
            break
        gaps.append(row["next_attempt_at"] - clock())
        clock.move_to(row["next_attempt_at"])
    jitter = DEFAULT_SCHEDULE.jitter
    for gap, nominal in zip(gaps, DEFAULT_SCHEDULE.delays[1:], strict=True):
        assert nominal * (1 - jitter) <= gap <= nominal * (1 + jitter)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("failed", 10, 500)
    assert len(await attempts(db, row["id"])) == 10
    assert await webhook_tasks(db) == []


async def test_the_schedule_spans_more_than_two_days(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(500)  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    (row,) = await deliveries(db, sid)
    tried = await attempts(db, row["id"])
    assert tried[-1]["attempted_at"] - tried[0]["attempted_at"] > timedelta(days=2)


async def test_a_redirect_is_a_failure_and_is_not_followed(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(302, {"Location": "http://10.0.0.1/admin"})  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    (row,) = await deliveries(db, sid)
    assert (row["status"], row["last_status_code"], row["attempts"]) == ("pending", 302, 1)
    assert "redirect not followed" in row["last_error"]
    assert len(receiver.received) == 1


async def test_410_gone_disables_the_endpoint(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(410)  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up", "in_transit")
    before = metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get()
    await drain(rt, clock)
    endpoint = await _endpoint(db, subscribed.id)
    assert endpoint["webhook_disabled_at"] is not None
    assert metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get() == before + 1
    gone, behind = await deliveries(db, sid)
    assert (gone["status"], gone["last_status_code"]) == ("skipped", 410)
    assert behind["status"] == "skipped" and behind["attempts"] == 0
    assert len(receiver.received) == 1
    assert await webhook_tasks(db) == []


async def test_changes_while_disabled_are_kept_as_skipped(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(410)  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    await move(db, sid, "in_transit")
    assert [d["status"] for d in await deliveries(db, sid)] == ["skipped", "skipped"]
    assert await webhook_tasks(db) == []


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"), [(429, "600", 600), (503, "120", 120), (502, "86400", 3600)]
)
async def test_slow_down_answers_honour_retry_after_within_the_cap(
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    receiver: Receiver,
    status: int,
    retry_after: str,
    expected: int,
) -> None:
    receiver.answer = _always(status, {"Retry-After": retry_after})  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    (row,) = await deliveries(db, sid)
    assert row["next_attempt_at"] - clock() == timedelta(seconds=expected)
    (task,) = await webhook_tasks(db)
    assert task["due_at"] == row["next_attempt_at"]


async def test_429_without_retry_after_keeps_the_schedule(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = _always(429)  # type: ignore[assignment]
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    (row,) = await deliveries(db, sid)
    assert timedelta(seconds=4) <= row["next_attempt_at"] - clock() <= timedelta(seconds=6)


async def test_an_endpoint_failing_for_five_days_is_disabled_with_an_alert(
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.answer = _always(503)  # type: ignore[assignment]
    before = metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get()
    sid = await new_shipment(db, subscribed.id)
    started = clock()
    await move(db, sid, "picked_up")
    # Four days of a broken approval system: the first delivery runs out of retries, the endpoint stays on.
    await drain(rt, clock, limit=timedelta(days=4))
    assert (await deliveries(db, sid))[0]["status"] == "failed"
    assert (await _endpoint(db, subscribed.id))["webhook_disabled_at"] is None
    clock.move_to(started + timedelta(hours=rt.settings.webhook_disable_after_hours, minutes=1))
    with caplog.at_level(logging.ERROR, logger="logistics.webhooks"):
        await move(db, sid, "in_transit")
        await run_due(rt, clock)
    endpoint = await _endpoint(db, subscribed.id)
    assert endpoint["webhook_disabled_at"] is not None
    assert metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get() == before + 1
    (alert,) = [r for r in caplog.records if r.getMessage() == "webhook_endpoint_disabled"]
    assert alert.client_id == subscribed.id  # type: ignore[attr-defined]
    assert "failing continuously" in alert.reason  # type: ignore[attr-defined]
    assert receiver.url not in str(alert.__dict__)
    last = (await deliveries(db, sid))[-1]
    assert last["status"] == "skipped"


async def test_one_success_resets_the_failing_clock(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    answers = iter([(503, {}), (204, {})])
    receiver.answer = lambda _: next(answers)
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await run_due(rt, clock)
    assert (await _endpoint(db, subscribed.id))["webhook_failing_since"] is not None
    await drain(rt, clock)
    assert (await _endpoint(db, subscribed.id))["webhook_failing_since"] is None


async def test_every_attempt_is_recorded_with_status_latency_and_body(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    answers = iter([(500, {}), (204, {})])
    receiver.answer = lambda _: next(answers)
    sid = await new_shipment(db, subscribed.id)
    await move(db, sid, "picked_up")
    await drain(rt, clock)
    (row,) = await deliveries(db, sid)
    failed, ok = await attempts(db, row["id"])
    assert (failed["status_code"], failed["response_body"]) == (500, "稍后重试")
    assert (ok["status_code"], ok["error"]) == (204, None)
    assert failed["latency_ms"] > 0 and ok["attempted_at"] > failed["attempted_at"]
