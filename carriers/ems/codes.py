"""EMS code tables: tracking event codes, delivery-failure reasons and response codes.

The tables live in CSV files beside this module so that a newly observed code is a data change, not a code
change. They are read once, at import. Codes missing from the event table are mapped by their wording, because
the full EMS table is far longer than what has been seen in real payloads (shared/ems/README.md).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal, cast, get_args

from carriers.base import Attempt, TrackingStatus

RetKind = Literal["ok", "system", "business"]
SUCCESS = "00000"

_STATUSES: frozenset[str] = frozenset(get_args(TrackingStatus))
_ATTEMPTS: frozenset[str] = frozenset(get_args(Attempt))


@dataclass(frozen=True, slots=True)
class EventCode:
    code: str
    name: str
    status: TrackingStatus | None  # None: informational, moves nothing
    note: str = ""
    attempt: Attempt | None = None  # the event is a failed delivery or pickup attempt


@dataclass(frozen=True, slots=True)
class FailureReason:
    code: str
    meaning: str
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetCode:
    code: str
    kind: RetKind
    meaning: str


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return [
        {k.strip(): (v or "").strip() for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


def _load_events() -> Mapping[str, EventCode]:
    table: dict[str, EventCode] = {}
    for row in _rows("codes.csv"):
        status = row["status"] or None
        # Fail at import rather than hand the app a status outside the public vocabulary.
        if status is not None and status not in _STATUSES:
            raise ValueError(f"codes.csv: unknown status {status!r} for op_code {row['op_code']}")
        attempt = row["attempt"] or None
        if attempt is not None and attempt not in _ATTEMPTS:
            raise ValueError(f"codes.csv: unknown attempt {attempt!r} for op_code {row['op_code']}")
        table[row["op_code"]] = EventCode(
            row["op_code"],
            row["op_name"],
            cast("TrackingStatus | None", status),
            row["note"],
            cast("Attempt | None", attempt),
        )
    return MappingProxyType(table)


def _load_reasons() -> Mapping[str, FailureReason]:
    table: dict[str, FailureReason] = {}
    for row in _rows("failure_reasons.csv"):
        keywords = tuple(k for k in row["keywords"].split("|") if k)
        table[row["reason_code"]] = FailureReason(row["reason_code"], row["meaning"], keywords)
    return MappingProxyType(table)


def _load_ret_codes() -> Mapping[str, RetCode]:
    table: dict[str, RetCode] = {}
    for row in _rows("ret_codes.csv"):
        if row["kind"] not in get_args(RetKind):
            raise ValueError(f"ret_codes.csv: unknown kind {row['kind']!r} for {row['ret_code']}")
        table[row["ret_code"]] = RetCode(row["ret_code"], cast(RetKind, row["kind"]), row["meaning"])
    return MappingProxyType(table)


EVENT_CODES: Mapping[str, EventCode] = _load_events()
FAILURE_REASONS: Mapping[str, FailureReason] = _load_reasons()  # in match priority order
RET_CODES: Mapping[str, RetCode] = _load_ret_codes()


# Ordered: the first rule that matches wins. A return that arrived (退回妥投, 寄件人签收) must beat the return
# under way (退回), and 未妥投 must beat 妥投. A failed attempt that mentions a refusal is still an attempt, so
# 未妥投 is checked before a bare 拒收 (a refusal alone starts the return). A failed or voided door pickup must
# beat 揽收 (collected). Movement words are checked before the bare 投递 so that "到达投递网点" is transit, not
# out for delivery. A rule whose status is None matches an informational event: it moves nothing.
_TEXT_RULES: tuple[tuple[re.Pattern[str], TrackingStatus | None], ...] = (
    (re.compile(r"退回妥投|退件妥投|寄件人签收|寄件人已签收|成功退回|已退回寄件人|已退还寄件人"), "returned"),
    (re.compile(r"退回|退件|退还寄件人|返还寄件人"), "returning"),
    (re.compile(r"未妥投|未能妥投|妥投失败|投递失败|无法投递"), "delivery_failed"),
    (re.compile(r"作废"), "failed"),
    (re.compile(r"揽收失败|揽收未成功|取件失败|未能揽收"), None),
    (re.compile(r"拒收|拒签"), "returning"),
    (re.compile(r"妥投|签收"), "delivered"),
    (re.compile(r"派送|派件"), "out_for_delivery"),
    (re.compile(r"收寄|揽收|揽件"), "picked_up"),
    (
        re.compile(r"到达|离开|发往|发运|运输|中转|转运|封车|解车|航班|航空|启运|进港|出港|处理中心|分拣|在途"),
        "in_transit",
    ),
    (re.compile(r"投递"), "out_for_delivery"),
)
_PICKUP_FAILED = re.compile(r"揽收失败|揽收未成功|取件失败|未能揽收")


def _rule_for(text: str) -> tuple[bool, TrackingStatus | None]:
    """(matched, status) of the first rule that matches ``text``."""
    for pattern, status in _TEXT_RULES:
        if pattern.search(text):
            return True, status
    return False, None


def status_for(op_code: str, op_name: str = "", op_desc: str = "") -> TrackingStatus | None:
    """The tracking status an EMS event means, or None when it moves nothing.

    Known codes come from the table. Unknown ones are read from ``op_name`` first, since the free-text
    ``op_desc`` also carries org names and courier remarks that could mislead; ``op_desc`` is the last resort.
    """
    known = EVENT_CODES.get(op_code.strip())
    if known is not None:
        return known.status
    matched, status = _rule_for(op_name)
    return status if matched else _rule_for(op_desc)[1]


def attempt_for(op_code: str, op_name: str = "", op_desc: str = "") -> Attempt | None:
    """Whether the event is a failed attempt: ``delivery`` (未妥投), ``pickup`` (揽收失败), or None."""
    known = EVENT_CODES.get(op_code.strip())
    if known is not None:
        return known.attempt
    if status_for(op_code, op_name, op_desc) == "delivery_failed":
        return "delivery"
    matched = _rule_for(op_name)[0]
    if _PICKUP_FAILED.search(op_name) or (not matched and _PICKUP_FAILED.search(op_desc)):
        return "pickup"
    return None


# Only a number introduced as a reason counts: descriptions are full of phone and room numbers.
_EXPLICIT_REASON = re.compile(r"(?:原因|代码为|代码|reason)\s*[:：]?\s*[\[(（【]?\s*(1\d\d)(?!\d)", re.IGNORECASE)


def reason_for(op_desc: str) -> str | None:
    """The delivery-failure reason code (101 … 130) an ``opDesc`` states or describes, else None."""
    if not op_desc:
        return None
    explicit = _EXPLICIT_REASON.search(op_desc)
    if explicit and explicit.group(1) in FAILURE_REASONS:
        return explicit.group(1)
    for reason in FAILURE_REASONS.values():
        if any(keyword in op_desc for keyword in reason.keywords):
            return reason.code
    return None


def reason_meaning(reason_code: str) -> str | None:
    reason = FAILURE_REASONS.get(reason_code)
    return reason.meaning if reason else None


def reason_text(reason_code: str) -> str | None:
    """The reason in Chinese, as people read it (the table's English gloss in brackets is for developers)."""
    meaning = reason_meaning(reason_code)
    return meaning.split(" (")[0].strip() if meaning else None


def ret_kind(ret_code: str) -> RetKind:
    """Classify a response code; the prefix decides when the code is not in the table."""
    code = ret_code.strip()
    known = RET_CODES.get(code)
    if known is not None:
        return known.kind
    if code == SUCCESS:
        return "ok"
    if code.upper().startswith("B"):
        return "business"
    return "system"


def is_retryable(ret_code: str) -> bool:
    """``S…`` and unknown failure codes: try again later. ``B…``: the request itself is wrong. ``00000``: done."""
    return ret_kind(ret_code) == "system"


def ret_meaning(ret_code: str) -> str | None:
    known = RET_CODES.get(ret_code.strip())
    return known.meaning if known else None
