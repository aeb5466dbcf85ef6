from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from webhooks.schedule import (
    DEFAULT_SCHEDULE,
    RETRY_AFTER_CAP,
    Outcome,
    OutcomeKind,
    RetrySchedule,
    classify,
    next_attempt_at,
    next_attempt_delay,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2026, 5, 9, 0, 14, 27, tzinfo=UTC)  # 08:14:27 in Zhengzhou


def test_schedule_has_about_ten_attempts_over_about_three_days() -> None:
    rng = random.Random(20260509)
    delays = []
    attempts = 0
    while (d := next_attempt_delay(attempts, rng)) is not None:
        delays.append(d)
        attempts += 1
    assert attempts == DEFAULT_SCHEDULE.max_attempts == 10
    assert delays[0] == timedelta(0)  # the first attempt goes out at once
    span = sum(delays, timedelta(0))
    assert timedelta(days=2) < span < timedelta(days=3.5)
    assert timedelta(days=2.5) <= DEFAULT_SCHEDULE.nominal_span <= timedelta(days=3)
    # At least a day of retrying, as PRODUCT §5 promises.
    assert sum(delays[:8], timedelta(0)) > timedelta(days=1)


def test_nominal_delays_follow_standard_webhooks_guidance() -> None:
    assert DEFAULT_SCHEDULE.delays[:8] == (
        timedelta(0),
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    )


def test_exhaustion_returns_none() -> None:
    rng = random.Random(1)
    assert next_attempt_delay(9, rng) is not None
    assert next_attempt_delay(10, rng) is None
    assert next_attempt_delay(11, rng) is None
    with pytest.raises(ValueError):
        next_attempt_delay(-1, rng)


def test_jitter_stays_within_bounds_and_actually_varies() -> None:
    seen: dict[int, set[timedelta]] = {i: set() for i in range(10)}
    for seed in range(200):
        rng = random.Random(seed)
        for i, base in enumerate(DEFAULT_SCHEDULE.delays):
            d = next_attempt_delay(i, rng)
            assert d is not None
            assert base * 0.8 <= d <= base * 1.2
            seen[i].add(d)
    assert seen[0] == {timedelta(0)}
    assert all(len(seen[i]) > 100 for i in range(1, 10))


def test_same_seed_same_schedule() -> None:
    a = [next_attempt_delay(i, random.Random(7)) for i in range(10)]
    b = [next_attempt_delay(i, random.Random(7)) for i in range(10)]
    assert a == b


def test_next_attempt_at_uses_the_given_clock() -> None:
    rng = random.Random(3)
    at = next_attempt_at(1, rng, NOW)
    assert at is not None and NOW + timedelta(seconds=4) <= at <= NOW + timedelta(seconds=6)
    assert next_attempt_at(10, rng, NOW) is None


def test_custom_schedule_without_jitter() -> None:
    sched = RetrySchedule((timedelta(0), timedelta(minutes=1)), jitter=0)
    rng = random.Random(0)
    assert [next_attempt_delay(i, rng, sched) for i in range(3)] == [timedelta(0), timedelta(minutes=1), None]
    with pytest.raises(ValueError):
        RetrySchedule(())
    with pytest.raises(ValueError):
        RetrySchedule((timedelta(seconds=-1),))
    with pytest.raises(ValueError):
        RetrySchedule((timedelta(0),), jitter=1.5)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, OutcomeKind.DELIVERED),
        (201, OutcomeKind.DELIVERED),
        (204, OutcomeKind.DELIVERED),
        (301, OutcomeKind.RETRY),
        (302, OutcomeKind.RETRY),
        (307, OutcomeKind.RETRY),
        (400, OutcomeKind.RETRY),
        (401, OutcomeKind.RETRY),
        (404, OutcomeKind.RETRY),
        (410, OutcomeKind.GONE),
        (429, OutcomeKind.SLOW_DOWN),
        (500, OutcomeKind.RETRY),
        (502, OutcomeKind.SLOW_DOWN),
        (503, OutcomeKind.SLOW_DOWN),
        (504, OutcomeKind.SLOW_DOWN),
        (None, OutcomeKind.RETRY),
    ],
)
def test_classify_statuses(status: int | None, kind: OutcomeKind) -> None:
    outcome = classify(status, {}, None if status else "ClientConnectorError: refused", now=NOW)
    assert outcome.kind is kind
    assert outcome.delivered is (kind is OutcomeKind.DELIVERED)
    assert outcome.disable_endpoint is (kind is OutcomeKind.GONE)


def test_redirects_are_failures_and_say_so() -> None:
    outcome = classify(302, {"Location": "http://169.254.169.254/"}, None, now=NOW)
    assert not outcome.delivered and outcome.should_retry
    assert "redirect not followed" in outcome.reason


def test_no_response_keeps_the_error_text() -> None:
    outcome = classify(None, None, "timed out after 15s")
    assert outcome.kind is OutcomeKind.RETRY and "timed out after 15s" in outcome.reason


def test_429_with_retry_after_seconds() -> None:
    outcome = classify(429, {"Retry-After": "120"}, None, now=NOW)
    assert outcome.kind is OutcomeKind.SLOW_DOWN
    assert outcome.retry_after == timedelta(seconds=120)


def test_retry_after_header_name_is_case_insensitive() -> None:
    assert classify(429, {"retry-after": "7"}, None, now=NOW).retry_after == timedelta(seconds=7)


def test_503_with_retry_after_http_date() -> None:
    outcome = classify(503, {"Retry-After": "Sat, 09 May 2026 00:19:27 GMT"}, None, now=NOW)
    assert outcome.kind is OutcomeKind.SLOW_DOWN
    assert outcome.retry_after == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("86400", RETRY_AFTER_CAP),  # a day is clamped to the cap
        ("Sun, 10 May 2026 00:14:27 GMT", RETRY_AFTER_CAP),
        ("Fri, 08 May 2026 00:14:27 GMT", timedelta(0)),  # a date in the past means now
        ("0", timedelta(0)),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_edges(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_slow_down_without_retry_after_falls_back_to_schedule() -> None:
    outcome = classify(502, {}, None, now=NOW)
    assert outcome.kind is OutcomeKind.SLOW_DOWN and outcome.retry_after is None
    delay = retry_delay(outcome, 1, random.Random(0))
    assert delay is not None and timedelta(seconds=4) <= delay <= timedelta(seconds=6)


def test_retry_after_only_lengthens_the_wait() -> None:
    rng_seed = 11
    longer = classify(429, {"Retry-After": "1800"}, None, now=NOW)
    assert retry_delay(longer, 1, random.Random(rng_seed)) == timedelta(minutes=30)
    shorter = classify(429, {"Retry-After": "1"}, None, now=NOW)
    d = retry_delay(shorter, 5, random.Random(rng_seed))
    assert d is not None and d >= timedelta(hours=4)


def test_retry_delay_stops_for_delivered_gone_and_exhausted() -> None:
    rng = random.Random(0)
    assert retry_delay(classify(204, {}, None), 1, rng) is None
    assert retry_delay(classify(410, {}, None), 1, rng) is None
    assert retry_delay(classify(500, {}, None), 10, rng) is None
    assert retry_delay(Outcome(OutcomeKind.RETRY, "HTTP 500"), 3, rng) is not None
