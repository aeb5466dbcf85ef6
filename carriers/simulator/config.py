"""Settings of one simulated EMS environment (the secrets a contract customer would be issued, and pacing)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from carriers.simulator.faults import clock_speed
from carriers.simulator.geo import MAINLAND_PROVINCES, canonical_province


@dataclass(slots=True)
class SimConfig:
    # Credentials the simulator accepts; a client configured with anything else gets S02.
    sender_no: str = "1100012345678"
    authorization: str = "sim-authorization-0001"
    sign_key: str = "TvaBgrhE46sft3nZlfe7xw=="  # base64 of 16 bytes (the published sample key)
    callback_url: str | None = None  # where 040002 pushes go; None = record events, push nothing
    # Pacing: each parcel stays this long at each tracking step. 0 = no automatic clock; only POST /admin/tick
    # moves parcels, which is what deterministic tests want.
    step_seconds: float = 0.0
    # Delay from order creation to the 203 收寄 event on the automatic clock; None = step_seconds.
    pickup_delay_seconds: float | None = None
    seed: int | None = None
    service_provinces: frozenset[str] = field(default_factory=lambda: MAINLAND_PROVINCES)
    push_retry_seconds: float = 5.0
    push_max_attempts: int = 8  # per event, then the push is given up (as a real partner eventually does)
    push_timeout_seconds: float = 5.0  # total time for one outbound push
    push_concurrency: int = 8  # parallel pushes, never two at once for the same waybill
    failed_attempt_rate: float = 0.2  # share of parcels with one 705 未妥投 before delivery (the run-time default)
    # Simulated seconds per real second at start (run-time setting clock.speed). Door pickups wait for their
    # booked window, so a development stack with intakes booked for tomorrow wants this well above 1.
    clock_speed: float = 1.0

    def __post_init__(self) -> None:
        try:
            key = base64.b64decode(self.sign_key, validate=True)
        except binascii.Error as exc:
            raise ValueError("sign_key must be base64") from exc
        if len(key) != 16:
            raise ValueError("sign_key must be base64 of 16 bytes")
        provinces = set()
        for prov in self.service_provinces:
            full = canonical_province(prov)
            if full is None:
                raise ValueError(f"unknown province {prov!r} in service_provinces")
            provinces.add(full)
        self.service_provinces = frozenset(provinces)
        if self.step_seconds < 0 or self.push_retry_seconds < 0:
            raise ValueError("step_seconds and push_retry_seconds must not be negative")
        clock_speed({"speed": self.clock_speed})  # the bounds of the run-time setting
        if not 0.0 <= self.failed_attempt_rate <= 1.0:
            raise ValueError("failed_attempt_rate must be within [0, 1]")
        if self.push_max_attempts < 1 or self.push_concurrency < 1:
            raise ValueError("push_max_attempts and push_concurrency must be at least 1")

    @property
    def pickup_delay(self) -> float:
        return self.step_seconds if self.pickup_delay_seconds is None else self.pickup_delay_seconds
