"""When to try a webhook again, and what an attempt's answer means.

Everything here is pure: the app passes in the attempt count, a ``random.Random`` and ``now``, and stores
the answers in its outbox. That keeps a three-day schedule testable without waiting and keeps the database
the only record of what must still be sent.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_SCHEDULE",
    "RETRY_AFTER_CAP",
    "Decision",
    "Next",
    "Outcome",
    "OutcomeKind",
    "RetrySchedule",
    "classify",
    "decide",
    "next_attempt_at",
    "next_attempt_delay",
    "parse_retry_after",
    "retry_delay",
]

# A receiver asking for more than this is treated as asking for this: an hour-long pause is already generous,
# and an unbounded Retry-After would let one endpoint park a delivery past the whole schedule.
RETRY_AFTER_CAP = timedelta(hours=1)

# Statuses that mean "you are too fast / I am overloaded"; Retry-After is honoured for these.
_SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays before each attempt, the first usually zero, plus a relative jitter.

    Jitter spreads retries of many deliveries that failed together (a receiver outage) so they do not all
    come back in the same second when it recovers.
    """

    delays: tuple[timedelta, ...]
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a schedule needs at least one attempt")
        if any(d < timedelta(0) for d in self.delays):
            raise ValueError("delays must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    @property
    def nominal_span(self) -> timedelta:
        """Time from the first to the last attempt, without jitter."""
        return sum(self.delays, timedelta(0))

    def delay(self, attempts_made: int, rng: random.Random) -> timedelta | None:
        if attempts_made < 0:
            raise ValueError("attempts_made must not be negative")
        if attempts_made >= len(self.delays):
            return None
        base = self.delays[attempts_made]
        if not base or not self.jitter:
            return base
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


# Standard Webhooks guidance (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), extended with 14 h and
# 20 h so that a receiver down over a weekend day still gets the event: 10 attempts over about 2.6 days.
DEFAULT_SCHEDULE = RetrySchedule(
    delays=(
        timedelta(0),
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
        timedelta(hours=14),
        timedelta(hours=20),
    )
)


def next_attempt_delay(
    attempts_made: int, rng: random.Random, schedule: RetrySchedule = DEFAULT_SCHEDULE
) -> timedelta | None:
    """Delay before the next attempt after ``attempts_made`` attempts, or ``None`` once exhausted.

    ``attempts_made=0`` is the first delivery (no delay).
    """
    return schedule.delay(attempts_made, rng)


def next_attempt_at(
    attempts_made: int,
    rng: random.Random,
    now: datetime,
    schedule: RetrySchedule = DEFAULT_SCHEDULE,
) -> datetime | None:
    delay = schedule.delay(attempts_made, rng)
    return None if delay is None else now + delay


class OutcomeKind(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    SLOW_DOWN = "slow_down"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    reason: str
    # Only for SLOW_DOWN with a usable Retry-After: the wait the receiver asked for, already capped.
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.kind is OutcomeKind.DELIVERED

    @property
    def disable_endpoint(self) -> bool:
        return self.kind is OutcomeKind.GONE

    @property
    def should_retry(self) -> bool:
        return self.kind in (OutcomeKind.RETRY, OutcomeKind.SLOW_DOWN)


def _get_header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: timedelta = RETRY_AFTER_CAP
) -> timedelta | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), clamped to ``[0, cap]``.

    ``None`` when absent or unparseable, so the caller falls back to the schedule.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    # delay-seconds is ASCII digits only: str.isdigit also takes "²" or "١٢", which int() refuses or reads.
    if text.isascii() and text.isdigit():
        # Compared as an integer first: a receiver's hundred-digit number would overflow timedelta.
        delay = cap if int(text) >= cap.total_seconds() else timedelta(seconds=int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            # HTTP-dates are always GMT; parsedate_to_datetime returns naive for "-0000".
            when = when.replace(tzinfo=UTC)
        current = now if now is not None else datetime.now(UTC)
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
        delay = when - current
    return max(timedelta(0), min(delay, cap))


def classify(
    status: int | None,
    headers: Mapping[str, str] | None = None,
    error: str | None = None,
    *,
    now: datetime | None = None,
    retry_after_cap: timedelta = RETRY_AFTER_CAP,
) -> Outcome:
    """What one attempt's answer means for the delivery.

    Only 2xx is success. 3xx is a failure because redirects are never followed: following one would let a
    receiver steer our signed request to an address the SSRF guard never saw. 410 means the receiver
    retired the endpoint, so the app should disable it instead of retrying for days.
    """
    if status is None:
        return Outcome(OutcomeKind.RETRY, f"no response: {error}" if error else "no response")
    if 200 <= status < 300:
        return Outcome(OutcomeKind.DELIVERED, f"HTTP {status}")
    if status == 410:
        return Outcome(OutcomeKind.GONE, "HTTP 410: endpoint gone, disable it")
    if status in _SLOW_DOWN_STATUSES:
        delay = parse_retry_after(_get_header(headers, "Retry-After"), now=now, cap=retry_after_cap)
        return Outcome(OutcomeKind.SLOW_DOWN, f"HTTP {status}: receiver asks to slow down", delay)
    if 300 <= status < 400:
        return Outcome(OutcomeKind.RETRY, f"HTTP {status}: redirect not followed, counted as failure")
    return Outcome(OutcomeKind.RETRY, f"HTTP {status}")


def retry_delay(
    outcome: Outcome,
    attempts_made: int,
    rng: random.Random,
    schedule: RetrySchedule = DEFAULT_SCHEDULE,
) -> timedelta | None:
    """The wait before the next attempt given this outcome, or ``None`` when there is none to make.

    A Retry-After only ever lengthens the wait: a receiver must not be able to pull retries forward and
    burn through the schedule.
    """
    if not outcome.should_retry:
        return None
    delay = schedule.delay(attempts_made, rng)
    if delay is None:
        return None
    if outcome.retry_after is not None:
        return max(delay, outcome.retry_after)
    return delay


class Next(enum.StrEnum):
    """What becomes of a delivery after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"  # try again at ``Decision.retry_at``
    GIVE_UP = "give_up"  # the schedule is spent: no further attempt
    ENDPOINT_GONE = "endpoint_gone"  # the receiver retired the endpoint: the delivery is skipped


@dataclass(frozen=True, slots=True)
class Decision:
    """The delivery's next step and, when the endpoint must stop receiving, why."""

    next: Next
    retry_at: datetime | None = None
    disable_reason: str | None = None

    @property
    def disable_endpoint(self) -> bool:
        return self.disable_reason is not None


_GONE_REASON = "HTTP 410 Gone"


def decide(
    outcome: Outcome,
    attempts_made: int,
    *,
    failing_since: datetime | None,
    now: datetime,
    rng: random.Random,
    schedule: RetrySchedule = DEFAULT_SCHEDULE,
    disable_after: timedelta,
) -> Decision:
    """What to do after an attempt answered with ``outcome``, ``attempts_made`` counting it.

    ``failing_since`` is when the endpoint's current run of failures began (this attempt's failure included),
    ``None`` when it is not failing. A success leaves the endpoint alone, whatever came before: the caller
    clears its failing clock. A 410 skips the delivery and disables the endpoint at once, without drawing from
    ``rng``; any other failure retries on the schedule, and disables the endpoint as well once it has failed
    for ``disable_after`` without a success in between, so a dead receiver is not retried for ever.
    """
    if outcome.delivered:
        return Decision(Next.DELIVERED)
    if outcome.disable_endpoint:
        return Decision(Next.ENDPOINT_GONE, disable_reason=_GONE_REASON)
    delay = retry_delay(outcome, attempts_made, rng, schedule)
    reason = None
    if failing_since is not None and now - failing_since >= disable_after:
        reason = f"failing continuously since {failing_since.isoformat()}"
    if delay is None:
        return Decision(Next.GIVE_UP, disable_reason=reason)
    return Decision(Next.RETRY, retry_at=now + delay, disable_reason=reason)
