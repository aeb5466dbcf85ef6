"""Request and response models of the dispatch API: they validate the input and generate /openapi.json.

Input is normalised before it is judged: full-width digits and letters (１３８…), ideographic spaces and stray
whitespace are what people paste from office documents, so they are repaired rather than rejected.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from logistics.domain import deadlines
from logistics.domain.payment import DEFAULT_PAYMENT_MODE, RECIPIENT_PAYS, RECIPIENT_PAYS_REFUSAL
from logistics.domain.statuses import STATUSES

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# The years an instant of this service can fall in. Python's datetime ends at years 1 and 9999, so converting
# an instant near either end to another offset overflows; bounding the year first keeps every later conversion,
# comparison and database write of an accepted instant safe, and no shipment happens outside these years.
FIRST_YEAR, LAST_YEAR = 2000, 2099


def utc_instant(value: datetime) -> datetime:
    """An input instant in UTC; without an offset it is Beijing time. ValueError (a 422) outside the years above."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return (value if value.tzinfo else value.replace(tzinfo=BEIJING)).astimezone(UTC)


# Every datetime a request carries: pydantic parses it, then it is bounded and made UTC.
Instant = Annotated[datetime, AfterValidator(utc_instant)]

_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_HAS_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")
_SPACES = re.compile(r"\s{2,}|[^\S ]")
_NEEDS_CLEANING = re.compile("^\\s|\\s$|\\s{2,}|[^\\S ]|[\uff01-\uff5e\u3000]")
# Every string _NEEDS_CLEANING matches has one of these; a plain character-set scan is ~4x faster, and most
# values (Chinese names and addresses) have none, so it answers first.
_MAYBE_DIRTY = re.compile("[\\s\uff01-\uff5e\u3000]")
# The characters of \s (str.isspace), spelled out: a class of literal ranges scans twice as fast as \s, which
# asks for the Unicode category of every character (tests/api/test_normalisation.py holds the two equal).
WHITESPACE = "\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Anything repair may have to act on (NUL included); "|", which joins the fields for one scan, is not in it.
_SUSPECT = re.compile(f"[{WHITESPACE}\x00\uff01-\uff5e]")
# Phones that clean_phone would return unchanged (ASCII digits, no +86/0086 prefix): most of them.
_PLAIN_PHONE = re.compile(r"1[3-9][0-9]{9}|(?!0086)0[0-9]{2,3}-[0-9]{7,8}(?:-[0-9]{1,6})?")
MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"(0\d{2,3})-?(\d{7,8})(?:-(\d{1,6}))?")
_PHONE_NOISE = re.compile(r"[\s()（）]")


def clean_text(value: Any) -> Any:
    """Full-width ASCII → ASCII, whitespace runs → one space, trimmed."""
    if not isinstance(value, str) or not _MAYBE_DIRTY.search(value) or not _NEEDS_CLEANING.search(value):
        return value
    if _HAS_FULLWIDTH.search(value):  # rare: translate() is the slow part, so only when needed
        value = value.translate(_FULLWIDTH)
    return _SPACES.sub(" ", value).strip()


def clean_phone(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value)
    text = _PHONE_NOISE.sub("", text).replace("转", "-").replace("—", "-").replace("–", "-")
    if text.startswith("+86"):
        text = text[3:].lstrip("-")
    elif text.startswith("0086"):
        text = text[4:].lstrip("-")
    return text


def canonical_phone(value: str) -> str | None:
    """A mobile as 11 digits, a landline as ``0371-68123456[-801]``; None for anything else."""
    if MOBILE.fullmatch(value):
        return value
    # People group a mobile's digits as they say them (138-0371-2345); a landline keeps its dashes, which part
    # area code, number and extension.
    if value.startswith("1") and MOBILE.fullmatch(compact := value.replace("-", "")):
        return compact
    match = LANDLINE.fullmatch(value)
    if match:
        area, number, ext = match.groups()
        return f"{area}-{number}" + (f"-{ext}" if ext else "")
    return None


PHONE_MESSAGE = "must be a mobile number (11 digits, 1[3-9]…) or a landline with area code, e.g. 0371-68123456"
POSTCODE_MESSAGE = "must be 6 digits"
# The formats pydantic checks by pattern (on input already repaired), and what a client is told when one fails.
PATTERN_MESSAGES = {"phone": PHONE_MESSAGE, "postcode": POSTCODE_MESSAGE}

# PostgreSQL cannot store U+0000 in text or JSON: refused here, it is a 422 naming the field, not a failed
# insert (a 500, and one that took the other requests of its group commit down with it).
NUL_MESSAGE = "must not contain the character U+0000"


def no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


_TOP_TEXT = ("department", "window")
_PARTY_TEXT = ("name", "province", "city", "district", "address", "postcode")
_LIST_TEXT = {"cases": ("case_no", "item_name"), "contents": ("name",)}
_POSTCODE = re.compile("[0-9]{6}")


def _plain(data: dict[str, Any]) -> bool:
    """Whether a create's body needs no repair, as nearly every body does: one scan over all its text.

    Repair runs in Python, before pydantic-core validates; done object by object (a validator on each model)
    it would cost a noticeable share of the API's time per create, for bodies that almost never need it.
    """
    texts: list[Any] = [data.get("department"), data.get("window")]
    for party in (data.get("sender"), data.get("recipient")):
        if party is None:
            continue
        if type(party) is not dict:
            return False
        phone, postcode = party.get("phone"), party.get("postcode")
        if type(phone) is not str or not _PLAIN_PHONE.fullmatch(phone):
            return False
        if postcode is not None and (type(postcode) is not str or not _POSTCODE.fullmatch(postcode)):
            return False
        texts += map(party.get, _PARTY_TEXT)
    try:
        for key, names in _LIST_TEXT.items():
            items = data.get(key) or ()
            if type(items) is not list:
                return False
            for item in items:
                texts += map(item.get, names)
        joined = "|".join(filter(None, texts))
    except (AttributeError, TypeError):  # a value of the wrong type: left to pydantic to report
        return False
    return _SUSPECT.search(joined) is None  # "|" is not in _SUSPECT


def _repaired(data: dict[str, Any]) -> dict[str, Any]:
    """A create's body with every text field repaired: a new dict where anything changed; the caller's dict is
    never changed (the raw body is hashed for Idempotency-Key afterwards)."""
    changed = _cleaned(data, _TOP_TEXT)
    for side in ("sender", "recipient"):
        party = data.get(side)
        repaired = _within(side, _repaired_party, party)
        if repaired is not party:
            changed = {**changed, side: repaired}
    for key, names in _LIST_TEXT.items():
        items = data.get(key)
        if isinstance(items, list):
            repaired_items = [_within(f"{key}.{n}", _cleaned, item, names) for n, item in enumerate(items)]
            if any(new is not old for new, old in zip(repaired_items, items, strict=True)):
                changed = {**changed, key: repaired_items}
    return changed


def _within(prefix: str, repair: Any, *args: Any) -> Any:
    """``repair(*args)``, with the field of a FieldError it raises put under ``prefix``."""
    try:
        return repair(*args)
    except FieldError as exc:
        raise FieldError(f"{prefix}.{exc.field}", exc.message) from None


def _repaired_party(data: Any) -> Any:
    """A party with its text repaired, its phone in canonical form where it is one (pydantic judges the rest by
    pattern) and an empty postcode left out."""
    if not isinstance(data, dict):
        return data  # pydantic reports the wrong type
    changed = _cleaned(data, _PARTY_TEXT)
    phone = changed.get("phone")
    if isinstance(phone, str) and not _PLAIN_PHONE.fullmatch(phone):
        cleaned = clean_phone(phone)
        canonical = canonical_phone(cleaned) or cleaned
        if canonical != phone:
            changed = {**changed, "phone": canonical}
    if changed.get("postcode") == "":
        changed = {**changed, "postcode": None}
    return changed


def _cleaned(data: Any, text_fields: tuple[str, ...]) -> Any:
    """``data`` with its text fields repaired: the same dict when nothing changed, else a new one."""
    if not isinstance(data, dict):
        return data  # pydantic reports the wrong type
    texts = [v for v in map(data.get, text_fields) if isinstance(v, str)]
    if _SUSPECT.search("|".join(texts)) is None:
        return data
    changed: dict[str, Any] = {}
    for name in text_fields:
        value = data.get(name)
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise FieldError(name, NUL_MESSAGE)
        if _MAYBE_DIRTY.search(value) and _NEEDS_CLEANING.search(value):
            changed[name] = clean_text(value)
    return {**data, **changed} if changed else data


# Input is repaired before it is validated (see _repaired), so the types below only constrain.
Phone = Annotated[
    str,
    StringConstraints(pattern=r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-[0-9]{7,8}(?:-[0-9]{1,6})?)$"),
    Field(description="Mobile `1[3-9]` + 9 digits, or landline `0371-68123456[-801]`", examples=["13803712345"]),
]
Postcode = Annotated[str | None, StringConstraints(pattern=r"^[0-9]{6}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Party(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=50), Field(examples=["欧阳娜娜"])]
    phone: Phone
    province: Annotated[str, StringConstraints(min_length=2, max_length=20), Field(examples=["河南省"])]
    city: Annotated[str, StringConstraints(min_length=2, max_length=30), Field(examples=["郑州市"])]
    district: Annotated[str, StringConstraints(min_length=2, max_length=30), Field(examples=["上街区"])]
    address: Annotated[
        str,
        StringConstraints(min_length=2, max_length=200),
        Field(examples=["新安路街道济源路8号院3号楼2单元501室"]),
    ]
    postcode: Annotated[Postcode, Field(default=None, examples=["450041"])] = None


class PartyForm(Party):
    """A party validated on its own (the applicant fills in their side on a page), repaired like a create's."""

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        return _repaired_party(data)


class Case(Strict):
    case_no: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        Field(examples=["410106-2018-00095"]),
    ]
    item_name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=200),
        Field(examples=["食品经营许可证核发"]),
    ]


class ContentItem(Strict):
    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100),
        Field(examples=["食品经营许可证正本"]),
    ]
    count: Annotated[int, Field(ge=1, le=999)] = 1


class PickupWindow(Strict):
    start: Instant = Field(description="ISO 8601; without an offset, Beijing time is assumed")
    end: Instant

    @model_validator(mode="after")
    def _ordered(self) -> PickupWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=7):
            raise ValueError("a pickup window can be at most 7 days long")
        return self


class ShipmentCreate(Strict):
    kind: Literal["intake", "delivery"] = Field(
        description="intake: applicant → hall (door pickup); delivery: hall → applicant"
    )
    cases: Annotated[list[Case], Field(min_length=1, max_length=50)]
    department: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100),
        Field(examples=["上街区市场监督管理局"]),
    ]
    window: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100),
        Field(examples=["综合受理3号窗口"]),
    ]
    sender: Party | None = Field(
        None, description="intake: the applicant; delivery: the hall, which may be left out if configured"
    )
    recipient: Party | None = Field(
        None, description="delivery: the applicant; intake: the hall, which may be left out if configured"
    )
    contents: Annotated[list[ContentItem], Field(max_length=50)] = []
    pickup_window: PickupWindow | None = None
    verification_code: bool = Field(False, description="issue a 取件验证码 that the recipient gives at hand-over")
    applicant_choice: bool = Field(
        False, description="the applicant chooses mail or window pickup and fills in their side"
    )
    metadata: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=20)
    decision_date: date | None = Field(
        None,
        description="delivery: the date of the approval decision (Beijing); due_by follows from the department's "
        "delivery_days (working days, default 10)",
    )
    due_by: date | None = Field(
        None, description="delivery: the statutory delivery deadline (Beijing date), when the client knows it"
    )
    payment_mode: Literal["monthly", "sender_pays", "recipient_pays"] | None = Field(
        None,
        description="who pays EMS: monthly (月结, the hall's contract account) or sender_pays (寄付: the hall for a "
        "delivery, the applicant at an intake's door pickup); default: the department's payment_mode in the halls "
        "file, else monthly. recipient_pays is refused (a 422): a delivery's result travels at the hall's cost, and "
        "the recipient of an intake is the hall, which pays monthly",
    )

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            for k, v in metadata.items():
                if (isinstance(k, str) and "\x00" in k) or (isinstance(v, str) and "\x00" in v):
                    raise FieldError("metadata", NUL_MESSAGE)
        return data if _plain(data) else _repaired(data)

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> ShipmentCreate:
        applicant_side = "sender" if self.kind == "intake" else "recipient"
        hall_side = "recipient" if self.kind == "intake" else "sender"
        if getattr(self, hall_side) is None:
            halls = (info.context or {}).get("halls") or {}
            if self.department not in halls:
                unknown = " (no hall address is configured for this department)" if halls else ""
                raise _field_error(hall_side, f"is required{unknown}")
            setattr(self, hall_side, halls[self.department])
        if getattr(self, applicant_side) is None and not self.applicant_choice:
            raise _field_error(applicant_side, "is required (or set applicant_choice to let the applicant fill it in)")
        if self.kind == "intake":
            if self.pickup_window is None and not self.applicant_choice:
                raise _field_error("pickup_window", "is required for intake")
            now = (info.context or {}).get("now") or datetime.now(UTC)
            if self.pickup_window is not None and self.pickup_window.start <= now:
                raise _field_error("pickup_window.start", "must be in the future")
            if self.verification_code:
                raise _field_error("verification_code", "applies to delivery only")
        elif self.pickup_window is not None:
            raise _field_error("pickup_window", "applies to intake only")
        if sum(len(str(k)) + len(str(v)) for k, v in self.metadata.items()) > 4000:
            raise _field_error("metadata", "is larger than 4000 characters")
        if self.decision_date is not None or self.due_by is not None:
            self._deadline(info)
        if self.payment_mode is None:
            modes = (info.context or {}).get("payment_modes") or {}
            self.payment_mode = modes.get(self.department, DEFAULT_PAYMENT_MODE)
        elif self.payment_mode == RECIPIENT_PAYS:
            raise _field_error("payment_mode", RECIPIENT_PAYS_REFUSAL[self.kind])
        return self

    def _deadline(self, info: ValidationInfo) -> None:
        context = info.context or {}
        today = (context.get("now") or datetime.now(UTC)).astimezone(BEIJING).date()
        field = "decision_date" if self.decision_date is not None else "due_by"
        if self.kind != "delivery":
            raise _field_error(field, "applies to delivery only")
        if self.decision_date is not None and self.due_by is not None:
            raise _field_error("due_by", "give decision_date or due_by, not both")
        if self.decision_date is not None:
            if self.decision_date > today:
                raise _field_error("decision_date", "must not be in the future (Beijing date)")
            days = (context.get("delivery_days") or {}).get(self.department, deadlines.DEFAULT_DELIVERY_DAYS)
            self.due_by = deadlines.due_by(self.decision_date, days).due_by
        elif self.due_by is not None and self.due_by < today:
            raise _field_error("due_by", "must not be in the past (Beijing date)")


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _field_error(field: str, message: str) -> FieldError:
    return FieldError(field, message)


# Responses (documentation of the shapes the handlers write; the handlers serialise dicts for speed).


class PartyOut(BaseModel):
    name: str
    phone: str
    province: str
    city: str
    district: str
    address: str
    postcode: str | None = None


class EventOut(BaseModel):
    sequence: int
    status: Literal[STATUSES]  # type: ignore[valid-type]
    occurred_at: datetime
    source: Literal["api", "carrier_push", "carrier_poll", "scan", "applicant", "system", "console"]
    carrier_code: str | None
    carrier_text: str | None
    location: str | None
    reason_code: str | None = Field(
        description="why an attempt failed or the parcel goes back: EMS reason 101 … 130 (see `last_failure`)"
    )
    reason: str | None = Field(description="the same in words, as EMS gave it or from the reason table")


class LastFailure(BaseModel):
    reason_code: str | None = Field(
        examples=["104"],
        description="101 name or address wrong, 102 no such person, 103 not at the address, 104 refused, "
        "113 cannot reach, 115 will collect, 118 moved away, 124 address unclear, 127 not collected in time, "
        "130 other; null when the carrier gave no readable reason",
    )
    reason: str | None = Field(examples=["收件人拒收"])
    occurred_at: datetime
    stage: Literal["delivery", "pickup"] = Field(description="a failed delivery, or a failed door pickup (intake)")


class Resolution(BaseModel):
    action: Literal["window_pickup", "closed"] = Field(
        description="window_pickup: the applicant collects it at the window; closed: nothing more is sent"
    )
    note: str | None
    resolved_at: datetime


class SignerOut(BaseModel):
    class_: Literal["addressee", "family", "unit_mailroom", "locker_or_station", "other", "unknown"] = Field(
        alias="class",
        description="addressee 本人; family 家属/同住; unit_mailroom 单位收发室/门卫/物业; locker_or_station "
        "快递柜/驿站/村邮站/代收点; other; unknown: the carrier's wording does not say (never a guess)",
    )
    name: str | None = Field(None, description="as the carrier wrote it (a person, or the station's name)")
    relation: str | None = Field(None, description="as the carrier wrote it, e.g. 家人, 收发室")


class ProofOut(BaseModel):
    """The proof of service (送达回证), frozen when the shipment was delivered; the document is at ``url``."""

    signer: SignerOut
    signed_at: datetime
    handed_to_post_at: datetime | None = Field(description="交邮: the carrier's 收寄 (203) time")
    verified_by_code: bool = Field(description="the 取件验证码 / 收件人安全码 was checked at the hand-over")
    personal_service_proven: bool = Field(description="signer is addressee or family, or verified_by_code")
    failed_attempts: int
    purged: bool = Field(description="personal data purged: name, relation and event texts are gone")
    sha256: str = Field(description="SHA-256 of the proof's facts, printed on the document")
    url: str = Field(description="GET: the 送达回证 PDF, or JSON with Accept: application/json")


class ProofEventOut(BaseModel):
    occurred_at: datetime
    source: Literal["carrier_push", "carrier_poll", "scan"]
    carrier_code: str | None
    text: str | None = Field(None, description="the carrier's own text (or the scan's); absent once purged")
    location: str | None = Field(None, description="absent once purged")


class ProofDocumentOut(BaseModel):
    """The 送达回证's facts, as frozen at delivery. ``sha256`` is the SHA-256 of this object without ``sha256``,
    serialised with sorted keys, no spaces and UTF-8 (non-ASCII as is); it is printed on the PDF and sent as
    ``X-Proof-SHA256``. After the personal-data purge only non-personal facts stay (``purged: true``; the
    recipient's region, no signer name or relation, events without texts) and ``issued_sha256`` is the digest
    of the document as it was issued."""

    version: int
    shipment_id: str
    kind: Literal["intake", "delivery"]
    carrier: str
    waybill_no: str | None
    cases: list[Case]
    department: str
    window: str
    recipient: dict[str, Any] = Field(description="in full (the owning client only); the region once purged")
    handed_to_post_at: datetime | None
    signed_at: datetime
    signer: SignerOut
    verified_by_code: bool
    personal_service_proven: bool
    failed_attempts: int
    events: list[ProofEventOut] = Field(description="the carrier's events and staff scans up to the delivery")
    purged: bool
    issued_sha256: str | None = Field(None, description="only once purged")
    sha256: str


class ShipmentOut(BaseModel):
    id: str = Field(examples=["shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"])
    status: Literal[STATUSES]  # type: ignore[valid-type]
    kind: Literal["intake", "delivery"]
    cases: list[Case]
    department: str
    window: str
    sender: PartyOut | None
    recipient: PartyOut | None
    contents: list[ContentItem]
    pickup_window: PickupWindow | None
    carrier: str
    waybill_no: str | None = Field(description="EMS 13-digit waybill, null until ordered")
    route_code: str | None
    destination_name: str | None
    tracking_code: str
    tracking_url: str
    label_url: str | None
    verification_code: str | None = Field(description="the 取件验证码; shown to the owning client only")
    applicant_url: str | None
    failure_reason: str | None
    proof: ProofOut | None = Field(None, description="null until delivered")
    attempts: int = Field(description="failed delivery (or door pickup) attempts the carrier or a courier reported")
    last_failure: LastFailure | None = Field(description="the latest failed attempt, or why the parcel went back")
    resend_of: str | None = Field(description="the returned shipment this one sends again")
    resent_as: str | None = Field(description="the shipment that sends this returned one again")
    resolution: Resolution | None = Field(description="the hall's decision on a returned parcel, when not resent")
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    due_by: date | None = Field(description="the statutory delivery deadline (Beijing date), or null")
    overdue_at: datetime | None = Field(description="when the shipment was found not delivered by due_by")
    payment_mode: Literal["monthly", "sender_pays"] | None = Field(
        description="who pays EMS (monthly 月结 or sender_pays 寄付); null for shipments created before it was kept"
    )
    events: list[EventOut] | None = Field(None, description="single reads only")


class ResendIn(Strict):
    """A returned parcel sent again: a delivery with the corrected recipient, an intake with a new pickup window
    (and, if the applicant's address was wrong, the corrected sender). Everything else is copied."""

    recipient: Party | None = Field(None, description="delivery: the corrected recipient (required)")
    sender: Party | None = Field(None, description="intake: the corrected applicant, when the address was wrong")
    pickup_window: PickupWindow | None = Field(None, description="intake: the new pickup window (required)")

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        return {k: _within(k, _repaired_party, v) if k in ("recipient", "sender") else v for k, v in data.items()}


class ResolveIn(Strict):
    action: Literal["window_pickup", "closed"] = Field(
        description="window_pickup: the applicant collects it at the window; closed: e.g. served by public notice"
    )
    note: Annotated[
        str | None,
        StringConstraints(min_length=1, max_length=500),
        BeforeValidator(clean_text),
        AfterValidator(no_nul),
        Field(description="for the hall's records; never shown on public pages", examples=["已公告送达"]),
    ] = None


class ShipmentPage(BaseModel):
    data: list[ShipmentOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class ProblemFieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None


# Webhook deliveries and the endpoint (logistics/api/webhooks.py writes these shapes).


class WebhookEnvelope(BaseModel):
    type: str = Field(examples=["shipment.delivered"], description="`shipment.<status>` or `shipment.label_ready`")
    timestamp: datetime = Field(description="when the event happened")
    data: dict[str, Any] = Field(
        description="shipment summary (id, kind, status, cases, waybill_no, tracking_code, tracking_url, "
        "label_url, metadata), `event` and the per-shipment `sequence`; `shipment.delivered` adds `proof` "
        "(as in the shipment, without `signer.name`); `shipment.delivery_failed`, `.returning`, `.returned` and "
        "`.failed` add `attempts` and `last_failure`, `shipment.resolved` adds `resolution`"
    )


class WebhookAttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="null when no answer came (refused, timed out, blocked)")
    latency_ms: float
    error: str | None
    response_body: str | None = Field(description="the start of the receiver's answer")


class WebhookDeliveryOut(BaseModel):
    id: str = Field(examples=["msg_01JD8Z9K4T6W2R8P5N3M7Q1B4X"], description="the `webhook-id`, kept on replays")
    type: str
    shipment_id: str
    sequence: int
    status: Literal["pending", "delivered", "failed", "skipped"] = Field(
        description="failed: retries exhausted; skipped: the endpoint was disabled. Both can be redelivered"
    )
    attempt_count: int = Field(description="attempts since the delivery was last queued")
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: WebhookEnvelope
    attempts: list[WebhookAttemptOut] = Field(description="every attempt, oldest first (the latest 50)")


class WebhookDeliveryPage(BaseModel):
    data: list[WebhookDeliveryOut]
    next_cursor: str | None


class WebhookEndpointOut(BaseModel):
    url: str | None
    enabled: bool
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="first failure of the current unbroken run of failures")
    previous_secret_valid_until: datetime | None = Field(description="the old secret signs too until then")
    replayed: int | None = Field(None, description="on enable: skipped deliveries queued again")
