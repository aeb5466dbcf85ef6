"""EMS wire messages: build request bodies and forms, parse answers and pushes.

Pure functions, no I/O, so the client stays a thin transport and the simulator and tests can exercise the
exact wire format without a network. Field names follow shared/ems/README.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote_plus

import orjson

from carriers.base import (
    FinalCarrierError,
    OrderRequest,
    OrderResult,
    Party,
    PushRejected,
    PushResult,
    RetryableCarrierError,
    TrackingEvent,
)
from carriers.ems import codes
from carriers.ems.envelope import EnvelopeError, open_, seal

logger = logging.getLogger(__name__)

PROD_PATH = "/amp-prod-api/f/amp/api/open"
SANDBOX_PATH = "/amp-prod-api/f/amp/api/test"

API_CREATE_ORDER = "020003"
API_CANCEL_ORDER = "020006"
API_TRACK = "040001"
API_TRACK_PUSH = "040002"

PUSH_FAILURE_CODE = "S00001"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"

# China has had no daylight saving since 1991, so a fixed offset is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Codes in order objects: strings, as in every sample of this API.
_CONTENTS_DOCUMENTS = "1"
_PICKUP_DROP_OFF = "0"
_PICKUP_AT_DOOR = "1"
_DELIVER_TO_DOOR = "2"
_PAY_SENDER = "1"
_PAY_RECIPIENT_CENTRALLY = "4"
PAYMENT_MODES = {"sender": _PAY_SENDER, "recipient": "2", "recipient_monthly": _PAY_RECIPIENT_CENTRALLY}

_MAX_MESSAGE = 300


def beijing_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time. A naive datetime is taken as UTC, as the app stores it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime(_TIME_FORMAT)


# The years an event time can fall in; outside them a time is unreadable, like a malformed one. Python's
# datetime ends at years 1 and 9999 (converting a time near either end overflows), and epoch milliseconds
# such as 1e20 or Infinity are no time at all (the platform's clock conversion fails with an OSError).
FIRST_YEAR, LAST_YEAR = 2000, 2099
_EARLIEST_MS = datetime(FIRST_YEAR, 1, 1, tzinfo=BEIJING).timestamp() * 1000
_LATEST_MS = datetime(LAST_YEAR + 1, 1, 1, tzinfo=BEIJING).timestamp() * 1000


def _from_epoch_ms(value: float) -> datetime:
    if not (math.isfinite(value) and _EARLIEST_MS <= value < _LATEST_MS):
        raise ValueError("opTime is out of range")
    return datetime.fromtimestamp(value / 1000, tz=BEIJING)


def parse_beijing_time(value: object) -> datetime:
    """An EMS time (Beijing wall clock, or epoch milliseconds) as a timezone-aware datetime.

    Raises ValueError when it is missing, unreadable, or outside the years FIRST_YEAR–LAST_YEAR.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch_ms(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing opTime")
    text = value.strip()
    if text.isdigit() and len(text) == 13:
        return _from_epoch_ms(int(text))
    parsed = datetime.fromisoformat(text.replace("/", "-"))
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ValueError("opTime is out of range")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=BEIJING)


def loads(text: str) -> Any:
    """JSON from the carrier, or sent in its name. orjson, not json: it refuses NaN and Infinity (not JSON,
    and no time or number of ours), and bounds nesting while decoding, where json recurses until a
    RecursionError — both end as a ValueError, the way every unreadable body does."""
    return orjson.loads(text)


def compact_json(body: object) -> str:
    # The envelope is computed over this exact text, so spacing and escaping must match EMS's samples.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _party(party: Party) -> dict[str, str]:
    fields = {
        "name": party.name,
        "prov": party.province,
        "city": party.city,
        "county": party.district,
        "address": party.address,
    }
    # EMS validates the two fields differently; a landline in `mobile` is rejected as a bad format.
    fields["mobile" if party.is_mobile else "phone"] = party.phone
    if party.postcode:
        fields["postCode"] = party.postcode
    return fields


def build_order_body(
    req: OrderRequest, *, ecommerce_user_id: str, biz_product_no: str
) -> list[dict[str, Any]]:
    """The ``020003`` body: a JSON array holding one order object."""
    # Contents are documents by definition here; EMS needs at least one cargo line.
    cargos = [{"cargoName": item.name, "cargoQuantity": item.count} for item in req.items] or [
        {"cargoName": "文件", "cargoQuantity": 1}
    ]
    order: dict[str, Any] = {
        "createdTime": beijing_time(req.created_at),
        "ecommerceUserId": ecommerce_user_id,
        "logisticsOrderNo": req.order_no,
        "contentsAttribute": _CONTENTS_DOCUMENTS,
        "bizProductNo": biz_product_no,
        "weight": req.weight_grams,
        "sender": _party(req.sender),
        "receiver": _party(req.receiver),
        "cargos": cargos,
    }
    if req.kind == "intake":
        # Unless told otherwise, the hall pays: the contract customer, and the recipient of intake parcels.
        order["paymentMode"] = _PAY_RECIPIENT_CENTRALLY if req.payer is None else PAYMENT_MODES[req.payer]
        order["pickupType"] = _PICKUP_AT_DOOR
        if req.pickup_start is not None:
            order["pickupPreBeginTime"] = beijing_time(req.pickup_start)
        if req.pickup_end is not None:
            order["pickupPreEndTime"] = beijing_time(req.pickup_end)
    else:
        order["paymentMode"] = _PAY_SENDER if req.payer is None else PAYMENT_MODES[req.payer]
        order["pickupType"] = _PICKUP_DROP_OFF
        order["deliverType"] = _DELIVER_TO_DOOR
        if req.safety_code:
            order["receiverSafetyCode"] = req.safety_code
    if req.notes:
        order["pickupNotes"] = req.notes
    return [order]


def build_cancel_body(order_no: str, waybill_no: str | None, reason: str) -> dict[str, str]:
    """The ``020006`` body."""
    return {"logisticsOrderNo": order_no, "waybillNo": waybill_no or "", "cancelReason": reason}


def build_track_body(waybill_no: str) -> dict[str, str]:
    """The ``040001`` body; direction ``0`` asks for the history oldest first."""
    return {"waybillNo": waybill_no, "direction": "0"}


def build_form(
    api_code: str,
    body: object,
    *,
    sender_no: str,
    authorization: str,
    sign_key: str,
    now: datetime,
) -> dict[str, str]:
    """The form fields of one request, with the business body sealed into ``logitcsInterface``."""
    return {
        "apiCode": api_code,
        "senderNo": sender_no,
        "authorization": authorization,
        "timeStamp": beijing_time(now),
        "logitcsInterface": seal(compact_json(body), sign_key, append_key=True),
        "msgType": "0",
        "version": "V1.0.0",
    }


# A sealed body: the envelope prefix and base64. Of these, urlencode escapes exactly the five characters below.
_SEALED = re.compile(r"[A-Za-z0-9+/=|$]*")
_SEALED_ESCAPES = (("+", "%2B"), ("/", "%2F"), ("=", "%3D"), ("|", "%7C"), ("$", "%24"))


def _form_quote(value: str) -> str:
    if _SEALED.fullmatch(value):
        for char, escaped in _SEALED_ESCAPES:
            value = value.replace(char, escaped)
        return value
    return quote_plus(value)


def encode_form(form: Mapping[str, str]) -> bytes:
    """The form as ``urllib.parse.urlencode`` encodes it, in a fraction of its time.

    urlencode quotes character by character in Python: for the sealed body (1–3 KB of base64) that is a
    noticeable share of an order's CPU time in the worker."""
    return "&".join(f"{quote_plus(key)}={_form_quote(value)}" for key, value in form.items()).encode("ascii")


def _short(text: object) -> str:
    return str(text or "")[:_MAX_MESSAGE]


def parse_response(api_code: str, http_status: int, text: str) -> dict[str, Any]:
    """The decoded ``retBody`` of a successful answer; raises a CarrierError otherwise.

    A non-object ``retBody`` (e.g. an array) is returned as ``{"items": value}``; an empty one as ``{}``.
    """
    if not 200 <= http_status < 300:
        # Not even a non-5xx status is EMS's verdict on the order (proxies, gateways, our own config), so
        # none of them may end a shipment as failed; the job's backoff and alerts deal with them.
        raise RetryableCarrierError(f"HTTP{http_status}", f"{api_code}: HTTP {http_status}")
    try:
        envelope = loads(text)
    except ValueError as exc:
        raise RetryableCarrierError("BADJSON", f"{api_code}: answer is not JSON") from exc
    if not isinstance(envelope, dict):
        raise RetryableCarrierError("BADJSON", f"{api_code}: answer is not a JSON object")

    ret_code = str(envelope.get("retCode") or "").strip()
    if not ret_code:
        if envelope.get("success") is not True:
            raise RetryableCarrierError("NOCODE", f"{api_code}: answer has no retCode")
        ret_code = codes.SUCCESS
    if ret_code != codes.SUCCESS:
        message = _short(envelope.get("retMsg")) or codes.ret_meaning(ret_code) or "no message"
        if codes.is_retryable(ret_code):
            raise RetryableCarrierError(ret_code, message)
        raise FinalCarrierError(ret_code, message)

    ret_body = envelope.get("retBody")
    if ret_body is None or ret_body == "":
        return {}
    if isinstance(ret_body, str):
        # retBody is JSON inside a JSON string.
        try:
            ret_body = loads(ret_body)
        except ValueError as exc:
            raise RetryableCarrierError("BADJSON", f"{api_code}: retBody is not JSON") from exc
    if isinstance(ret_body, dict):
        return ret_body
    return {"items": ret_body}


def parse_order_result(ret_body: Mapping[str, Any], *, order_no: str | None = None) -> OrderResult:
    """The waybill and sorting codes of a ``020003`` success; ``order_no`` fills a missing echo."""
    body: Mapping[str, Any] = ret_body
    items = ret_body.get("items")
    if "waybillNo" not in ret_body and isinstance(items, list) and items and isinstance(items[0], dict):
        body = items[0]
    waybill_no = str(body.get("waybillNo") or "").strip()
    echoed = str(body.get("logisticsOrderNo") or "").strip() or order_no
    if not waybill_no or not echoed:
        # The order number is idempotent at EMS, so asking again returns the same waybill.
        raise RetryableCarrierError("NOWAYBILL", "020003 success without waybillNo or logisticsOrderNo")
    if order_no is not None and echoed != order_no:
        raise FinalCarrierError("MISMATCH", "020003 answered for another logisticsOrderNo")

    def opt(key: str) -> str | None:
        value = body.get(key)
        return (str(value).strip() or None) if value is not None else None

    return OrderResult(
        order_no=echoed,
        waybill_no=waybill_no,
        route_code=opt("routeCode"),
        package_code=opt("packageCode"),
        package_name=opt("packageCodeName"),
        destination_code=opt("markDestinationCode"),
        destination_name=opt("markDestinationName"),
    )


def _location(item: Mapping[str, Any]) -> str:
    parts = [str(item.get(key) or "").strip() for key in ("opOrgProvName", "opOrgCity", "opOrgName")]
    parts = [p for p in parts if p]
    # Org names usually start with their city ("郑州市上街区揽投部"); repeating it reads badly on a timeline.
    kept = [p for i, p in enumerate(parts) if not any(later.startswith(p) for later in parts[i + 1 :])]
    return " ".join(kept)


# Events whose reason matters: a failed attempt, the return it starts, and a voided door pickup.
_REASONED_STATUSES = frozenset({"delivery_failed", "returning", "returned", "failed"})
_REASON_CODE = re.compile(r"\d{3}")
_MAX_REASON = 100


def reason_of(item: Mapping[str, Any], description: str) -> tuple[str | None, str | None]:
    """(reason_code, reason) of an event: EMS's ``reasonCode``/``reasonDesc`` fields when it sent them, else read
    from the ``opDesc`` wording (codes.reason_for). A code outside our table is kept as EMS gave it."""
    given = str(item.get("reasonCode") or "").strip()
    said = str(item.get("reasonDesc") or "").strip()[:_MAX_REASON] or None
    code = given if _REASON_CODE.fullmatch(given) else None
    if code is None:
        code = codes.reason_for(said or "") or codes.reason_for(description)
    if code is None:
        return None, said
    return code, said or codes.reason_text(code)


def event_from_item(item: Mapping[str, Any]) -> TrackingEvent:
    """One EMS event (a ``040001`` response item or a ``040002`` push body) in neutral form.

    Raises ValueError when the waybill, the code or the time is missing or unreadable.
    """
    waybill_no = str(item.get("waybillNo") or item.get("traceNo") or "").strip()
    if not waybill_no:
        raise ValueError("event without waybillNo")
    code = str(item.get("opCode") or "").strip()
    if not code:
        raise ValueError("event without opCode")
    occurred_at = parse_beijing_time(item.get("opTime"))
    name = str(item.get("opName") or "").strip()
    description = str(item.get("opDesc") or "").strip()
    status = codes.status_for(code, name, description)
    order_no = str(item.get("orderNo") or item.get("logisticsOrderNo") or "").strip() or None
    attempt = codes.attempt_for(code, name, description)
    reason_code, reason = (None, None)
    if attempt is not None or status in _REASONED_STATUSES:
        reason_code, reason = reason_of(item, description)
    return TrackingEvent(
        waybill_no=waybill_no,
        code=code,
        name=name,
        description=description,
        occurred_at=occurred_at,
        status=status,
        location=_location(item),
        order_no=order_no,
        reason_code=reason_code,
        reason=reason,
        attempt=attempt,
        raw=dict(item),
    )


def parse_track_items(ret_body: Mapping[str, Any], *, waybill_no: str | None = None) -> list[TrackingEvent]:
    """The events of a ``040001`` answer, oldest first. Unreadable items are skipped, not fatal."""
    items = ret_body.get("responseItems")
    if items is None:
        items = ret_body.get("items", [])
    if not isinstance(items, list):
        raise RetryableCarrierError("BADBODY", "040001 responseItems is not a list")
    events: list[TrackingEvent] = []
    for item in items:
        if not isinstance(item, dict):
            logger.warning("ems 040001: skipped a non-object tracking item")
            continue
        if waybill_no and not (item.get("waybillNo") or item.get("traceNo")):
            item = {**item, "waybillNo": waybill_no}
        try:
            events.append(event_from_item(item))
        except ValueError as exc:
            # One bad item must not hide the rest of the history; codes carry no personal data.
            logger.warning("ems 040001: skipped tracking item opCode=%s: %s", item.get("opCode"), exc)
    events.sort(key=lambda event: event.occurred_at)
    return events


def push_reply(serial_no: str, sender_no: str, *, code: str = codes.SUCCESS, message: str = "") -> bytes:
    """The exact answer EMS expects to a push; any code but ``00000`` makes it push again."""
    reply = {"serialNo": serial_no, "code": code, "codeMessage": message, "senderNo": sender_no}
    return json.dumps(reply, ensure_ascii=False).encode("utf-8")


def _push_fields(body: bytes, content_type: str) -> dict[str, Any]:
    text = body.decode("utf-8")
    # Sniff rather than trust the header: some senders label JSON as a form and vice versa.
    if text.lstrip().startswith("{") or ("json" in content_type.lower() and "form" not in content_type):
        fields = loads(text)
        if not isinstance(fields, dict):
            raise ValueError("push body is not a JSON object")
        return fields
    form = parse_qs(text, keep_blank_values=True)
    fields = {key: values[-1] for key, values in form.items()}
    envelope = fields.get("logitcsInterface")
    if isinstance(envelope, str):
        # An unescaped '+' in base64 turns into a space in form decoding; base64 itself never has spaces.
        fields["logitcsInterface"] = envelope.replace(" ", "+")
    return fields


def parse_push(body: bytes, content_type: str, *, sign_key: str, sender_no: str) -> PushResult:
    """A ``040002`` tracking push: its event and our reply. Decrypting with our key authenticates it.

    Raises PushRejected, carrying an ``S00001`` reply so that EMS sends it again, when the push cannot be
    read or opened.
    """
    serial_no = ""
    try:
        fields = _push_fields(body, content_type)
        serial_no = str(fields.get("serialNo") or "")
        sealed = fields.get("logitcsInterface")
        if not isinstance(sealed, str) or not sealed:
            raise ValueError("push without logitcsInterface")
        decoded = loads(open_(sealed, sign_key, strip_key=True))
        items = decoded if isinstance(decoded, list) else [decoded]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError("push body is not an event object")
        events = tuple(event_from_item(item) for item in items)
    except EnvelopeError as exc:
        raise PushRejected(
            "push cannot be decrypted with our key",
            push_reply(serial_no, sender_no, code=PUSH_FAILURE_CODE, message="decrypt failed"),
        ) from exc
    except (ValueError, TypeError) as exc:
        raise PushRejected(
            f"malformed push: {exc}",
            push_reply(serial_no, sender_no, code=PUSH_FAILURE_CODE, message="malformed push"),
        ) from exc
    return PushResult(events=events, reply=push_reply(serial_no, sender_no))
