"""Run-time settings: fault injection (with its seeded decisions) and what happens to new parcels.

Kept apart from HTTP so that what a seed decides can be reasoned about (and tested) on its own; the server
only asks "what now?" and acts on the answer. JSON shape of GET/PUT /admin/faults is ``FaultInjector.to_json``
merged with ``ParcelSettings.to_json`` (and the server's clock).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

ERROR_KINDS = ("http_5xx", "s_code", "connection_reset", "timeout_after_create", "b_code")
ErrorKind = Literal["http_5xx", "s_code", "connection_reset", "timeout_after_create", "b_code"]
OUTAGE_MODES = ("503", "reset")
RATE_LIMIT_MODES = ("429", "s_code")
HANG_THEN = ("answer", "reset")

# Who signed a 704 (the same classes as the proof of service) and the EMS failure reasons the simulator uses.
SIGNER_CLASSES = ("addressee", "family", "unit_mailroom", "locker_or_station", "other", "unknown")
CODE_CHECKED_CLASSES = ("addressee", "family")  # the only people a courier hands a code-protected parcel to
REASON_CODES = ("101", "102", "103", "104", "113", "115", "118", "124", "127", "130")
REFUSED = "104"  # a refusal ends the delivery at once, so it has its own rate and is not in the reason mix
DEFAULT_SIGNERS: Mapping[str, float] = MappingProxyType(
    {"addressee": 0.5, "family": 0.25, "unit_mailroom": 0.25, "locker_or_station": 0.0, "other": 0.0, "unknown": 0.0}
)
DEFAULT_REASONS: Mapping[str, float] = MappingProxyType(
    {"101": 0.08, "102": 0.05, "103": 0.35, "113": 0.2, "115": 0.08, "118": 0.05, "124": 0.1, "127": 0.04, "130": 0.05}
)
MAX_ATTEMPTS = 10
MAX_CLOCK_SPEED = 1_000_000.0


@dataclass(slots=True)
class FaultSettings:
    latency_fixed_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # uniform extra in [0, jitter]
    error_rates: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0.0))
    http_status: int = 503  # answer of an http_5xx fault
    s_code: str = "S07"  # retCode of an s_code fault
    b_code: str = "B04"  # retCode of a b_code fault
    # timeout_after_create: the order is created, then the answer waits this long (longer than any client's
    # timeout), then is sent ("answer") or the connection is reset ("reset").
    hang_seconds: float = 60.0
    hang_then: str = "answer"
    api_codes: list[str] | None = None  # error faults apply to these apiCodes only; None = all
    outage_until: float = 0.0  # monotonic time until which every API request fails
    outage_mode: str = "503"
    push_duplicate_rate: float = 0.0
    push_reorder_rate: float = 0.0
    push_drop_rate: float = 0.0
    rate_limit_rps: float | None = None
    rate_limit_mode: str = "429"
    rate_limit_s_code: str = "S07"


@dataclass(frozen=True, slots=True)
class PushDecision:
    drop: bool = False
    duplicate: bool = False
    reorder: bool = False


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number within [0, 1]")
    return float(value)


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def _code(value: Any, prefix: str, name: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) < 2:
        raise ValueError(f"{name} must be a string starting with {prefix}")
    return value


def _object(value: Any, name: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object")
    unknown = set(value) - keys
    if unknown:
        raise ValueError(f"unknown keys in {name}: {', '.join(sorted(unknown))}")
    return value


def _count_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer {low}..{high}")
    return value


def _mix(value: Any, name: str, keys: tuple[str, ...]) -> dict[str, float]:
    """A whole mix replaces the old one: weights per key (missing keys weigh 0), stored as shares adding to 1."""
    weights = _object(value, name, set(keys))
    checked = {key: _non_negative(weights.get(key, 0.0), f"{name}.{key}") for key in keys}
    if not all(math.isfinite(weight) for weight in checked.values()):
        raise ValueError(f"{name} weights must be finite numbers")
    total = sum(checked.values())
    if total <= 0:
        raise ValueError(f"{name} needs at least one positive weight")
    return {key: weight / total for key, weight in checked.items()}


@dataclass(frozen=True, slots=True)
class ParcelSettings:
    """What the parcel book draws for every new order; a change applies to parcels ordered after it.

    Delivery outcomes are shares of parcels and add up to at most 1: ``refusal_rate`` (104 at the first attempt,
    the return starts at once), ``undeliverable_rate`` (every one of ``attempts`` fails, then the return) and
    ``failed_attempt_rate`` (one failed attempt, then delivered); the rest are delivered at the first attempt.
    A door pickup fails at each attempt with ``pickup_failure_rate``; after ``pickup_attempts`` failures the
    order is void (207).
    """

    failed_attempt_rate: float = 0.2
    refusal_rate: float = 0.0
    undeliverable_rate: float = 0.0
    attempts: int = 3
    reasons: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REASONS)
    reason_fields_rate: float = 0.5  # share of 705/206/207 events that carry reasonCode/reasonDesc fields
    signers: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SIGNERS)
    pickup_failure_rate: float = 0.0
    pickup_attempts: int = 2

    def __post_init__(self) -> None:
        if self.failed_attempt_rate + self.refusal_rate + self.undeliverable_rate > 1.0 + 1e-9:
            raise ValueError("delivery: failed_attempt_rate, refusal_rate and undeliverable_rate add up to more than 1")

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery": {
                "failed_attempt_rate": self.failed_attempt_rate,
                "refusal_rate": self.refusal_rate,
                "undeliverable_rate": self.undeliverable_rate,
                "attempts": self.attempts,
                "reasons": dict(self.reasons),
                "reason_fields_rate": self.reason_fields_rate,
            },
            "signers": dict(self.signers),
            "pickup": {"failure_rate": self.pickup_failure_rate, "attempts": self.pickup_attempts},
        }

    def updated(self, patch: Mapping[str, Any]) -> ParcelSettings:
        """These settings with ``patch`` (keys delivery, signers, pickup of ``to_json``); ValueError if bad."""
        top = _object(dict(patch), "settings", {"delivery", "signers", "pickup"})
        changes: dict[str, Any] = {}
        if "delivery" in top:
            delivery = _object(
                top["delivery"],
                "delivery",
                {
                    "failed_attempt_rate",
                    "refusal_rate",
                    "undeliverable_rate",
                    "attempts",
                    "reasons",
                    "reason_fields_rate",
                },
            )
            for key in ("failed_attempt_rate", "refusal_rate", "undeliverable_rate", "reason_fields_rate"):
                if key in delivery:
                    changes[key] = _rate(delivery[key], f"delivery.{key}")
            if "attempts" in delivery:
                changes["attempts"] = _count_in(delivery["attempts"], "delivery.attempts", 1, MAX_ATTEMPTS)
            if "reasons" in delivery:
                reasons = delivery["reasons"]
                if isinstance(reasons, dict) and REFUSED in reasons:
                    raise ValueError("delivery.reasons: 104 (refusal) is set with delivery.refusal_rate")
                codes = tuple(code for code in REASON_CODES if code != REFUSED)
                changes["reasons"] = MappingProxyType(_mix(reasons, "delivery.reasons", codes))
        if "signers" in top:
            changes["signers"] = MappingProxyType(_mix(top["signers"], "signers", SIGNER_CLASSES))
        if "pickup" in top:
            pickup = _object(top["pickup"], "pickup", {"failure_rate", "attempts"})
            if "failure_rate" in pickup:
                changes["pickup_failure_rate"] = _rate(pickup["failure_rate"], "pickup.failure_rate")
            if "attempts" in pickup:
                changes["pickup_attempts"] = _count_in(pickup["attempts"], "pickup.attempts", 1, MAX_ATTEMPTS)
        return replace(self, **changes)


def clock_speed(patch: Any) -> float | None:
    """The new speed of the simulated clock in a ``clock`` settings object (None: unchanged); ValueError if bad.
    ``now`` is accepted and ignored, so the JSON from GET can be sent back as it is."""
    clock = _object(patch, "clock", {"speed", "now"})
    if "speed" not in clock:
        return None
    speed = clock["speed"]
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 1.0 <= float(speed) <= MAX_CLOCK_SPEED:
        raise ValueError(f"clock.speed must be a number from 1 to {MAX_CLOCK_SPEED:g} (simulated seconds per second)")
    return float(speed)


class FaultInjector:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.settings = FaultSettings()
        self.injected: dict[str, int] = {}
        self._tokens = 0.0
        self._refilled_at: float | None = None

    def reset(self, rng: random.Random) -> None:
        self.rng = rng
        self.injected.clear()
        self.clear()

    def clear(self) -> None:
        """No faults (counters stay)."""
        self.settings = FaultSettings()
        self._tokens = 0.0
        self._refilled_at = None

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    # -- JSON ------------------------------------------------------------------------------------------------

    def to_json(self, mono: float) -> dict[str, Any]:
        s = self.settings
        return {
            "latency": {"fixed_ms": s.latency_fixed_ms, "jitter_ms": s.latency_jitter_ms},
            "errors": dict(s.error_rates),
            "http_status": s.http_status,
            "s_code": s.s_code,
            "b_code": s.b_code,
            "hang_seconds": s.hang_seconds,
            "hang_then": s.hang_then,
            "api_codes": s.api_codes,
            "outage": {"seconds": max(0.0, round(s.outage_until - mono, 3)), "mode": s.outage_mode},
            "push": {
                "duplicate_rate": s.push_duplicate_rate,
                "reorder_rate": s.push_reorder_rate,
                "drop_rate": s.push_drop_rate,
            },
            "rate_limit": {"rps": s.rate_limit_rps, "mode": s.rate_limit_mode, "s_code": s.rate_limit_s_code},
            "injected": dict(self.injected),
        }

    def update(self, patch: Any, mono: float) -> None:
        """Apply a partial settings object (same shape as ``to_json``); all or nothing, ValueError if bad."""
        top = _object(
            patch,
            "faults",
            {
                "latency",
                "errors",
                "http_status",
                "s_code",
                "b_code",
                "hang_seconds",
                "hang_then",
                "api_codes",
                "outage",
                "push",
                "rate_limit",
                "injected",
            },
        )
        s = self.settings
        new = replace(s, error_rates=dict(s.error_rates))
        if "latency" in top:
            latency = _object(top["latency"], "latency", {"fixed_ms", "jitter_ms"})
            if "fixed_ms" in latency:
                new.latency_fixed_ms = _non_negative(latency["fixed_ms"], "latency.fixed_ms")
            if "jitter_ms" in latency:
                new.latency_jitter_ms = _non_negative(latency["jitter_ms"], "latency.jitter_ms")
        if "errors" in top:
            errors = _object(top["errors"], "errors", set(ERROR_KINDS))
            for kind, value in errors.items():
                new.error_rates[kind] = _rate(value, f"errors.{kind}")
            if sum(new.error_rates.values()) > 1.0 + 1e-9:
                raise ValueError("error rates must add up to at most 1")
        if "http_status" in top:
            status = top["http_status"]
            if not isinstance(status, int) or not 500 <= status <= 599:
                raise ValueError("http_status must be an integer 500..599")
            new.http_status = status
        if "s_code" in top:
            new.s_code = _code(top["s_code"], "S", "s_code")
        if "b_code" in top:
            new.b_code = _code(top["b_code"], "B", "b_code")
        if "hang_seconds" in top:
            new.hang_seconds = _non_negative(top["hang_seconds"], "hang_seconds")
        if "hang_then" in top:
            new.hang_then = _choice(top["hang_then"], HANG_THEN, "hang_then")
        if "api_codes" in top:
            codes = top["api_codes"]
            if codes is not None and (not isinstance(codes, list) or not all(isinstance(c, str) for c in codes)):
                raise ValueError("api_codes must be null or a list of strings")
            new.api_codes = None if codes is None else list(codes)
        if "outage" in top:
            outage = _object(top["outage"], "outage", {"seconds", "mode"})
            if "mode" in outage:
                new.outage_mode = _choice(outage["mode"], OUTAGE_MODES, "outage.mode")
            if "seconds" in outage:
                # "N seconds from now": a PUT restarts the window; 0 ends an outage.
                new.outage_until = mono + _non_negative(outage["seconds"], "outage.seconds")
        if "push" in top:
            push = _object(top["push"], "push", {"duplicate_rate", "reorder_rate", "drop_rate"})
            if "duplicate_rate" in push:
                new.push_duplicate_rate = _rate(push["duplicate_rate"], "push.duplicate_rate")
            if "reorder_rate" in push:
                new.push_reorder_rate = _rate(push["reorder_rate"], "push.reorder_rate")
            if "drop_rate" in push:
                new.push_drop_rate = _rate(push["drop_rate"], "push.drop_rate")
        if "rate_limit" in top:
            limit = _object(top["rate_limit"], "rate_limit", {"rps", "mode", "s_code"})
            if "rps" in limit:
                rps = limit["rps"]
                if rps is not None and (_non_negative(rps, "rate_limit.rps") <= 0):
                    raise ValueError("rate_limit.rps must be positive or null")
                new.rate_limit_rps = None if rps is None else float(rps)
            if "mode" in limit:
                new.rate_limit_mode = _choice(limit["mode"], RATE_LIMIT_MODES, "rate_limit.mode")
            if "s_code" in limit:
                new.rate_limit_s_code = _code(limit["s_code"], "S", "rate_limit.s_code")
        if new.rate_limit_rps != s.rate_limit_rps:
            self._refilled_at = None
        self.settings = new

    # -- decisions -------------------------------------------------------------------------------------------

    def outage(self, mono: float) -> str | None:
        """The outage mode when an outage is on, else None."""
        if mono < self.settings.outage_until:
            self._count("outage")
            return self.settings.outage_mode
        return None

    def rate_limited(self, mono: float) -> bool:
        """Token bucket with a one-second burst: above ``rps`` sustained, requests are refused."""
        rps = self.settings.rate_limit_rps
        if rps is None:
            return False
        burst = max(1.0, rps)
        if self._refilled_at is None:
            self._tokens, self._refilled_at = burst, mono
        self._tokens = min(burst, self._tokens + (mono - self._refilled_at) * rps)
        self._refilled_at = mono
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return False
        self._count("rate_limit")
        return True

    def latency_seconds(self) -> float:
        s = self.settings
        if s.latency_fixed_ms <= 0 and s.latency_jitter_ms <= 0:
            return 0.0
        return (s.latency_fixed_ms + self.rng.uniform(0.0, s.latency_jitter_ms)) / 1000.0

    def error_for(self, api_code: str) -> str | None:
        """One draw decides which error kind (if any) hits this request."""
        s = self.settings
        if s.api_codes is not None and api_code not in s.api_codes:
            return None
        total = sum(s.error_rates.values())
        if total <= 0:
            return None
        draw = self.rng.random()
        upto = 0.0
        for kind in ERROR_KINDS:
            upto += s.error_rates.get(kind, 0.0)
            if draw < upto:
                self._count(kind)
                return kind
        return None

    def push_decision(self) -> PushDecision:
        s = self.settings
        if s.push_drop_rate <= 0 and s.push_duplicate_rate <= 0 and s.push_reorder_rate <= 0:
            return PushDecision()
        drop = self.rng.random() < s.push_drop_rate
        duplicate = self.rng.random() < s.push_duplicate_rate
        reorder = self.rng.random() < s.push_reorder_rate
        if drop:
            self._count("push_drop")
            return PushDecision(drop=True)
        if duplicate:
            self._count("push_duplicate")
        if reorder:
            self._count("push_reorder")
        return PushDecision(duplicate=duplicate, reorder=reorder)
