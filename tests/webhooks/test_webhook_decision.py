"""What one attempt's answer means for the delivery and its endpoint: ``decide``, without a database.

The schedule here has no jitter, so every retry time is exact; the clock is a plain value.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from webhooks import DEFAULT_SCHEDULE, AttemptResult, Decision, Next, RetrySchedule, classify, decide
from webhooks.schedule import RETRY_AFTER_CAP, Outcome

NOW = datetime(2026, 5, 9, 0, 14, 27, tzinfo=UTC)  # 08:14:27 in Zhengzhou
EXACT = RetrySchedule(delays=DEFAULT_SCHEDULE.delays, jitter=0)
FIVE_DAYS = timedelta(hours=120)  # the default webhook_disable_after_hours


def _decide(
    outcome: Outcome,
    attempts_made: int = 1,
    *,
    failing_since: datetime | None = NOW,
    now: datetime = NOW,
    schedule: RetrySchedule = EXACT,
    disable_after: timedelta = FIVE_DAYS,
) -> Decision:
    return decide(
        outcome,
        attempts_made,
        failing_since=failing_since,
        now=now,
        rng=random.Random(20260509),
        schedule=schedule,
        disable_after=disable_after,
    )


@pytest.mark.parametrize("attempts_made", range(1, DEFAULT_SCHEDULE.max_attempts))
def test_a_failed_attempt_is_retried_after_the_schedules_next_step(attempts_made: int) -> None:
    decision = _decide(classify(500), attempts_made)
    assert decision == Decision(Next.RETRY, retry_at=NOW + EXACT.delays[attempts_made])


def test_the_default_schedule_steps_are_five_seconds_then_five_minutes_then_half_an_hour() -> None:
    at = [_decide(classify(500), n).retry_at for n in (1, 2, 3)]
    assert at == [NOW + timedelta(seconds=5), NOW + timedelta(minutes=5), NOW + timedelta(minutes=30)]


def test_jitter_keeps_the_retry_within_a_fifth_of_the_step() -> None:
    decision = _decide(classify(500), 4, schedule=DEFAULT_SCHEDULE)
    assert decision.next is Next.RETRY and decision.retry_at is not None
    assert NOW + timedelta(hours=2) * 0.8 <= decision.retry_at <= NOW + timedelta(hours=2) * 1.2


def test_after_the_last_scheduled_attempt_the_delivery_is_given_up() -> None:
    decision = _decide(classify(500), DEFAULT_SCHEDULE.max_attempts)
    assert decision == Decision(Next.GIVE_UP)
    assert not decision.disable_endpoint


@pytest.mark.parametrize(
    "outcome",
    [
        classify(None, error="timed out after 10s"),
        classify(None, error="ClientConnectorError: Cannot connect to host hooks.zz-spj.gov.cn:443"),
        classify(500),
        classify(502),
        classify(503),
        classify(504),
        classify(302),
        classify(404),
    ],
    ids=["timeout", "refused", "500", "502", "503", "504", "redirect", "404"],
)
def test_timeouts_and_error_answers_retry_on_the_schedule(outcome: Outcome) -> None:
    assert _decide(outcome, 3) == Decision(Next.RETRY, retry_at=NOW + timedelta(minutes=30))


def test_410_gone_skips_the_delivery_and_disables_the_endpoint_at_once() -> None:
    decision = _decide(classify(410), 1, failing_since=None)
    assert decision == Decision(Next.ENDPOINT_GONE, disable_reason="HTTP 410 Gone")
    assert decision.disable_endpoint and decision.retry_at is None


def test_410_draws_no_jitter_so_the_next_attempts_retry_times_stay_as_they_were() -> None:
    rng = random.Random(7)
    before = rng.getstate()
    decide(classify(410), 2, failing_since=None, now=NOW, rng=rng, schedule=DEFAULT_SCHEDULE, disable_after=FIVE_DAYS)
    assert rng.getstate() == before


def test_429_with_retry_after_in_seconds_waits_that_long_when_longer_than_the_step() -> None:
    outcome = classify(429, {"Retry-After": "120"}, now=NOW)
    assert _decide(outcome, 1) == Decision(Next.RETRY, retry_at=NOW + timedelta(minutes=2))


def test_429_with_retry_after_as_an_http_date_waits_until_then() -> None:
    outcome = classify(429, {"Retry-After": "Sat, 09 May 2026 00:24:27 GMT"}, now=NOW)
    assert _decide(outcome, 1) == Decision(Next.RETRY, retry_at=NOW + timedelta(minutes=10))


def test_a_retry_after_shorter_than_the_step_does_not_pull_the_retry_forward() -> None:
    outcome = classify(429, {"Retry-After": "1"}, now=NOW)
    assert _decide(outcome, 3) == Decision(Next.RETRY, retry_at=NOW + timedelta(minutes=30))


def test_a_retry_after_does_not_extend_a_spent_schedule() -> None:
    outcome = classify(429, {"Retry-After": "60"}, now=NOW)
    assert _decide(outcome, DEFAULT_SCHEDULE.max_attempts) == Decision(Next.GIVE_UP)


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("-30", timedelta(seconds=5)),  # not delay-seconds: the schedule's step
        ("soon", timedelta(seconds=5)),
        ("3.5", timedelta(seconds=5)),
        ("0x3c", timedelta(seconds=5)),
        ("²", timedelta(seconds=5)),  # a digit to str.isdigit, not to HTTP
        ("١٢٠", timedelta(seconds=5)),  # Arabic-Indic 120: HTTP digits are ASCII
        ("Sat, 32 May 2026 00:24:27 GMT", timedelta(seconds=5)),
        ("Fri, 08 May 2026 00:14:27 GMT", timedelta(seconds=5)),  # a date in the past means now
        ("86400", RETRY_AFTER_CAP),  # a day is clamped to the cap
        ("9" * 40, RETRY_AFTER_CAP),  # past what a timedelta can hold
        ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_AFTER_CAP),
    ],
)
def test_a_hostile_retry_after_falls_back_to_the_schedule_or_is_capped(value: str, wait: timedelta) -> None:
    outcome = classify(429, {"Retry-After": value}, now=NOW)
    assert _decide(outcome, 1) == Decision(Next.RETRY, retry_at=NOW + wait)


def test_an_endpoint_failing_for_the_configured_hours_is_disabled_and_the_delivery_still_retries() -> None:
    since = NOW - FIVE_DAYS
    decision = _decide(classify(503), 6, failing_since=since)
    assert decision == Decision(
        Next.RETRY,
        retry_at=NOW + timedelta(hours=10),
        disable_reason="failing continuously since 2026-05-04T00:14:27+00:00",
    )


def test_an_endpoint_failing_a_moment_less_than_the_configured_hours_stays_enabled() -> None:
    decision = _decide(classify(503), 6, failing_since=NOW - FIVE_DAYS + timedelta(seconds=1))
    assert not decision.disable_endpoint


def test_the_configured_hours_decide_when_to_disable() -> None:
    since = NOW - timedelta(hours=2)
    assert not _decide(classify(500), 4, failing_since=since, disable_after=timedelta(hours=3)).disable_endpoint
    assert _decide(classify(500), 4, failing_since=since, disable_after=timedelta(hours=2)).disable_endpoint


def test_a_given_up_delivery_on_a_long_failing_endpoint_disables_it_too() -> None:
    decision = _decide(classify(None, error="timed out after 10s"), 10, failing_since=NOW - timedelta(days=6))
    assert decision.next is Next.GIVE_UP
    assert decision.disable_reason == "failing continuously since 2026-05-03T00:14:27+00:00"


def test_the_first_failure_of_a_healthy_endpoint_does_not_disable_it() -> None:
    assert not _decide(classify(500), 1, failing_since=None).disable_endpoint


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_a_success_delivers_however_long_the_endpoint_had_been_failing(status: int) -> None:
    decision = _decide(classify(status), 7, failing_since=NOW - timedelta(days=30))
    assert decision == Decision(Next.DELIVERED)
    assert not decision.disable_endpoint


def test_a_success_received_after_a_broken_body_still_delivers() -> None:
    assert _decide(classify(200, error="ClientPayloadError: Response payload is not completed")).next is Next.DELIVERED


def test_an_attempt_result_is_built_by_name_only() -> None:
    with pytest.raises(TypeError):
        AttemptResult(None, 0.0, "cannot sign", b"", classify(None), None, False, 1778285667)  # type: ignore[misc]
