"""The data a label is made from.

Renderers receive the unmasked party data and mask it themselves, so that the masking rule lives in one
place (:mod:`labels.privacy`) and a caller cannot forget it. The 取件验证码 deliberately has no field here:
a label is seen by every courier and clerk on the way, the code must reach only the recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["intake", "delivery"]

_WAYBILL = re.compile(r"\d{13}")


@dataclass(frozen=True, slots=True)
class LabelParty:
    name: str
    phone: str
    province: str
    city: str
    district: str
    address: str
    # A government hall's own name, switchboard and address are public information, not personal data;
    # masking them would only make the label harder to use. Applicants are never organisations here.
    is_organisation: bool = False


@dataclass(frozen=True, slots=True)
class LabelData:
    waybill_no: str
    tracking_url: str
    kind: Kind
    carrier_name: str
    product_name: str
    destination_name: str
    destination_code: str
    route_code: str
    sender: LabelParty
    recipient: LabelParty
    contents: tuple[tuple[str, int], ...]
    cases: tuple[tuple[str, str], ...]
    department: str
    window: str
    printed_at: datetime

    def __post_init__(self) -> None:
        # Fail at construction: a malformed label found at print time means a wasted parcel trip.
        if not _WAYBILL.fullmatch(self.waybill_no):
            raise ValueError(f"waybill_no must be 13 digits, got {self.waybill_no!r}")
        if self.kind not in ("intake", "delivery"):
            raise ValueError(f"kind must be 'intake' or 'delivery', got {self.kind!r}")
        if not self.tracking_url.isascii() or not self.tracking_url:
            raise ValueError("tracking_url must be a non-empty ASCII URL")
        if self.printed_at.tzinfo is None or self.printed_at.utcoffset() is None:
            raise ValueError("printed_at must be timezone-aware")
        if not self.cases:
            raise ValueError("a label carries at least one case")
        for name, count in self.contents:
            if count < 1:
                raise ValueError(f"content {name!r} has count {count}")
