"""The EMS wire format as the simulator speaks it: times, codes, response envelopes, and a request builder.

``request_form`` / ``read_response`` are the client half, so tests, benchmarks and smoke checks can talk to the
simulator without the real adapter (carriers/ems) and so catch disagreements between the two.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from carriers.ems.envelope import seal

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

API_PATHS = ("/amp-prod-api/f/amp/api/open", "/amp-prod-api/f/amp/api/test")

OK = "00000"
# Codes the simulator answers with. S = system level (client retries), B = business (client gives up).
S_BAD_JSON = "S01"
S_BAD_SIGNATURE = "S02"  # undecryptable body, and also wrong senderNo / authorization (see README)
S_TIMEOUT = "S06"
S_SYSTEM = "S07"
B_MISSING = "B01"
B_FORMAT = "B02"
B_NOT_FOUND = "B03"
B_SAVE_FAILED = "B04"
# No public source names the real codes for these two; the simulator picks B-codes outside the documented
# B01..B05 so tests can tell them apart.
B_OUT_OF_RANGE = "B06"
B_ALREADY_COLLECTED = "B07"


def beijing_now() -> datetime:
    return datetime.now(BEIJING)


def format_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse ``yyyy-MM-dd HH:mm:ss`` as Beijing time; ValueError when it is not in that shape."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def dumps(value: Any) -> str:
    # EMS wants compact JSON with non-ASCII kept as is (README, "Encryption" step 1).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def serial_no(rng: random.Random | None = None) -> str:
    value = uuid.UUID(int=rng.getrandbits(128), version=4) if rng is not None else uuid.uuid4()
    return value.hex.upper()


def response(ret_code: str, ret_msg: str, body: Any = None, *, serial: str | None = None) -> dict[str, Any]:
    return {
        "serialNo": serial or serial_no(),
        "retCode": ret_code,
        "retMsg": ret_msg,
        "retBody": None if body is None else dumps(body),
        "success": ret_code == OK,
    }


def request_form(
    api_code: str,
    body: Any,
    *,
    sender_no: str,
    authorization: str,
    sign_key: str,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """The form fields of one call, sealed the way the real client must seal them (with the key suffix)."""
    return {
        "apiCode": api_code,
        "senderNo": sender_no,
        "authorization": authorization,
        "timeStamp": format_time(timestamp or beijing_now()),
        "logitcsInterface": seal(dumps(body), sign_key, append_key=True),
        "msgType": "0",
        "version": "V1.0.0",
    }


def read_response(payload: dict[str, Any]) -> tuple[str, str, Any]:
    """(retCode, retMsg, decoded retBody) of a response envelope; retBody is JSON inside a string."""
    raw = payload.get("retBody")
    body = json.loads(raw) if isinstance(raw, str) and raw else None
    return str(payload.get("retCode")), str(payload.get("retMsg", "")), body
