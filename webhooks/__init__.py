"""Signed status webhooks: Standard Webhooks signing, retry schedule, SSRF guard and a one-attempt sender.

A library: it knows nothing of the app's database or job queue. The app keeps the durable outbox, calls
``Sender.send`` for one attempt and asks ``schedule`` when (and whether) to try again.
"""

from webhooks.schedule import (
    DEFAULT_SCHEDULE,
    Decision,
    Next,
    Outcome,
    OutcomeKind,
    RetrySchedule,
    classify,
    decide,
    next_attempt_at,
    next_attempt_delay,
    retry_delay,
)
from webhooks.sender import AttemptResult, Sender
from webhooks.signing import VerificationError, generate_secret, headers, sign, verify
from webhooks.ssrf import AddressPolicy, BlockedAddress, check_url, make_connector

__all__ = [
    "DEFAULT_SCHEDULE",
    "AddressPolicy",
    "AttemptResult",
    "BlockedAddress",
    "Decision",
    "Next",
    "Outcome",
    "OutcomeKind",
    "RetrySchedule",
    "Sender",
    "VerificationError",
    "check_url",
    "classify",
    "decide",
    "generate_secret",
    "headers",
    "make_connector",
    "next_attempt_at",
    "next_attempt_delay",
    "retry_delay",
    "sign",
    "verify",
]
