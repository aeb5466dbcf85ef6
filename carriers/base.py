"""What every carrier adapter offers, in carrier-neutral types.

The app (``logistics``) only ever speaks these types; a carrier package turns them into its own wire
format and back. Nothing here knows about databases, queues or HTTP servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Kind = Literal["intake", "delivery"]

# The tracking part of the public status vocabulary (docs/integration.md) that a carrier can report.
# `returning`: the carrier is bringing the parcel back (after a refusal or its last attempt); `returned`: it is
# back with the sender; `failed`: the carrier voided the order (a door pickup that never succeeded).
TrackingStatus = Literal[
    "picked_up", "in_transit", "out_for_delivery", "delivered", "delivery_failed", "returning", "returned", "failed"
]
# A failed attempt: at the recipient's door (delivery) or at the sender's, collecting (pickup).
Attempt = Literal["delivery", "pickup"]
# Who pays the carrier: the sender (on its account, or on the spot), the recipient at delivery, or the recipient
# on its account, settled centrally (monthly). EMS paymentMode 1, 2 and 4.
Payer = Literal["sender", "recipient", "recipient_monthly"]


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    phone: str  # a mobile (11 digits) or a landline such as 0371-68123456-801
    province: str
    city: str
    district: str
    address: str
    postcode: str | None = None

    @property
    def is_mobile(self) -> bool:
        return len(self.phone) == 11 and self.phone.isdigit() and self.phone.startswith("1")


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class OrderRequest:
    order_no: str  # ours; the carrier's idempotency key (EMS logisticsOrderNo)
    kind: Kind
    sender: Party
    receiver: Party
    items: tuple[Item, ...]
    created_at: datetime
    pickup_start: datetime | None = None  # intake: the booked collection window
    pickup_end: datetime | None = None
    safety_code: str | None = None  # 取件验证码, delivery only
    notes: str = ""
    weight_grams: int = 200
    payer: Payer | None = None  # None: the carrier's usual payer for the kind (the receiving hall for an intake)


@dataclass(frozen=True, slots=True)
class OrderResult:
    order_no: str
    waybill_no: str
    route_code: str | None = None  # sorting code
    package_code: str | None = None
    package_name: str | None = None
    destination_code: str | None = None  # 大头笔 code
    destination_name: str | None = None  # 大头笔, printed big


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    waybill_no: str
    code: str  # raw carrier code, always kept
    name: str
    description: str
    occurred_at: datetime  # timezone-aware
    status: TrackingStatus | None  # None: informational, moves nothing
    location: str = ""
    order_no: str | None = None
    reason_code: str | None = None  # why an attempt failed or the parcel goes back (EMS 101 … 130)
    reason: str | None = None  # the same in words: the carrier's own, else the reason table's
    attempt: Attempt | None = None  # set when the event is a failed delivery or pickup attempt
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def dedup_key(self) -> tuple[str, str, str]:
        return (self.waybill_no, self.code, self.occurred_at.isoformat())


@dataclass(frozen=True, slots=True)
class PushResult:
    """A parsed carrier push: the events in it and the exact bytes the carrier wants back."""

    events: tuple[TrackingEvent, ...]
    reply: bytes
    reply_content_type: str = "application/json"


class CarrierError(Exception):
    """A carrier call that did not succeed. ``retryable`` decides what the caller does next."""

    retryable: bool = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RetryableCarrierError(CarrierError):
    """Transient: network trouble, timeouts, 5xx, system-level codes. Try again, same order_no."""

    retryable = True


class FinalCarrierError(CarrierError):
    """The carrier rejected the request for good (EMS ``B`` codes). Do not retry."""

    retryable = False


class PushRejected(Exception):
    """A push we could not authenticate or read; ``reply`` is what to answer so the carrier retries."""

    def __init__(self, reason: str, reply: bytes) -> None:
        super().__init__(reason)
        self.reply = reply


class Carrier(Protocol):
    name: str

    async def create_order(self, request: OrderRequest) -> OrderResult: ...

    async def cancel_order(self, order_no: str, waybill_no: str | None, reason: str) -> None: ...

    async def track(self, waybill_no: str) -> list[TrackingEvent]: ...

    def parse_push(self, body: bytes, content_type: str) -> PushResult: ...

    async def close(self) -> None: ...
