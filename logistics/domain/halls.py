"""The halls' own addresses, by department, from a file the operator keeps (``LOGISTICS_HALLS_FILE``).

An approval system may then leave out the hall's side of a create (the sender of a delivery, the recipient of
an intake): the address of the department's hall is filled in, as stored data, when the shipment is created.
The file is JSON: ``{"上街区市场监督管理局": {"name": …, "phone": …, "province": …, "city": …, "district": …,
"address": …, "postcode": …}, …}``; each entry is checked and repaired like a party in a request.
An entry may also set ``"delivery_days"``: the working days from the approval decision to its statutory
deadline (logistics.domain.deadlines; default 10); and ``"payment_mode"``: ``"monthly"`` (default) or
``"sender_pays"``, who pays EMS for the department's shipments (logistics.domain.payment).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import ValidationError

from logistics.api.errors import field_errors
from logistics.api.schemas import PartyForm, clean_text
from logistics.domain.deadlines import DEFAULT_DELIVERY_DAYS, MAX_DELIVERY_DAYS
from logistics.domain.payment import DEFAULT_PAYMENT_MODE, PAYMENT_MODES

Halls = dict[str, PartyForm]
DELIVERY_DAYS = "delivery_days"
PAYMENT_MODE = "payment_mode"
_NOT_PARTY = (DELIVERY_DAYS, PAYMENT_MODE)


class HallsError(ValueError):
    """The halls file cannot be used; the message names the file, and the department and field at fault."""


def load_halls(path: Path | None) -> Halls:
    return {department: party for department, (party, _, _) in _entries(path).items()}


def load_delivery_days(path: Path | None) -> dict[str, int]:
    """Department → working days to its statutory delivery deadline (only the departments the file names)."""
    return {department: days for department, (_, days, _) in _entries(path).items()}


def load_payment_modes(path: Path | None) -> dict[str, str]:
    """Department → who pays EMS (``monthly`` or ``sender_pays``; only the departments the file names)."""
    return {department: mode for department, (_, _, mode) in _entries(path).items()}


def _entries(path: Path | None) -> dict[str, tuple[PartyForm, int, str]]:
    if path is None:
        return {}
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HallsError(f"cannot read the halls file {path}: {exc.strerror or exc}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HallsError(f"the halls file {path} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise HallsError(f"the halls file {path} must be an object: department → hall address")
    halls: dict[str, tuple[PartyForm, int, str]] = {}
    for department, entry in data.items():
        if not isinstance(entry, dict):
            raise HallsError(f"the halls file {path}: {department}: must be an object (name, phone, address…)")
        party = {k: v for k, v in entry.items() if k not in _NOT_PARTY}
        days = entry.get(DELIVERY_DAYS, DEFAULT_DELIVERY_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DELIVERY_DAYS:
            raise HallsError(
                f"the halls file {path}: {department}: {DELIVERY_DAYS} must be a whole number of working days, "
                f"1–{MAX_DELIVERY_DAYS}"
            )
        mode = entry.get(PAYMENT_MODE, DEFAULT_PAYMENT_MODE)
        if mode not in PAYMENT_MODES:
            raise HallsError(
                f"the halls file {path}: {department}: {PAYMENT_MODE} must be one of {', '.join(PAYMENT_MODES)} "
                f"(default {DEFAULT_PAYMENT_MODE}), not {orjson.dumps(mode).decode()[:40]}"
            )
        try:
            halls[clean_text(department)] = (PartyForm.model_validate(party), days, mode)
        except ValidationError as exc:
            wrong = "; ".join(f"{e['field']} {e['message']}" for e in field_errors(exc))
            raise HallsError(f"the halls file {path}: {department}: {wrong}") from None
    return halls
