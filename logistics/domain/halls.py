"""The halls' own addresses, by department, from a file the operator keeps (``LOGISTICS_HALLS_FILE``).

An approval system may then leave out the hall's side of a create (the sender of a delivery, the recipient of
an intake): the address of the department's hall is filled in, as stored data, when the shipment is created.
The file is JSON: ``{"上街区市场监督管理局": {"name": …, "phone": …, "province": …, "city": …, "district": …,
"address": …, "postcode": …}, …}``; each entry is checked and repaired like a party in a request.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import ValidationError

from logistics.api.errors import field_errors
from logistics.api.schemas import PartyForm, clean_text

Halls = dict[str, PartyForm]


class HallsError(ValueError):
    """The halls file cannot be used; the message names the file, and the department and field at fault."""


def load_halls(path: Path | None) -> Halls:
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
    halls: Halls = {}
    for department, party in data.items():
        if not isinstance(party, dict):
            raise HallsError(f"the halls file {path}: {department}: must be an object (name, phone, address…)")
        try:
            halls[clean_text(department)] = PartyForm.model_validate(party)
        except ValidationError as exc:
            wrong = "; ".join(f"{e['field']} {e['message']}" for e in field_errors(exc))
            raise HallsError(f"the halls file {path}: {department}: {wrong}") from None
    return halls
