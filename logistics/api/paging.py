"""Cursor pages and list filters, the same for every list endpoint.

Ids are time-ordered (ULIDs behind a prefix), so "newest first, after this id" is a stable keyset page: rows
created while a client pages through never shift what it has not seen yet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from logistics.api.errors import validation_problem

DEFAULT_LIMIT = 20


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not value.startswith(prefix) or len(value) > 40:
        raise validation_problem([{"field": "cursor", "message": "is not a cursor this API gave out"}])
    return value


class ListQuery:
    """Reads `limit`, `cursor` and enumerated filters, collecting every error before answering 422 once."""

    def __init__(self, query: Mapping[str, str], *, maximum: int) -> None:
        self.query = query
        self.errors: list[dict[str, str]] = []
        self.limit = DEFAULT_LIMIT
        if "limit" in query:
            try:
                self.limit = int(query["limit"])
                if not 1 <= self.limit <= maximum:
                    raise ValueError
            except ValueError:
                self.errors.append({"field": "limit", "message": f"must be an integer from 1 to {maximum}"})

    def choice(self, name: str, allowed: Iterable[str]) -> str | None:
        value = self.query.get(name)
        allowed = tuple(allowed)
        if value is not None and value not in allowed:
            self.errors.append({"field": name, "message": "must be one of " + ", ".join(allowed)})
        return value

    def text(self, name: str) -> str | None:
        value = (self.query.get(name) or "").strip()
        return value or None

    def cursor(self, prefix: str) -> str | None:
        """Call after the other filters: a bad cursor answers at once, with the errors found so far."""
        self.check()
        return decode_cursor(self.query["cursor"], prefix) if self.query.get("cursor") else None

    def check(self) -> None:
        if self.errors:
            raise validation_problem(self.errors)

    def split(self, rows: list[Any]) -> tuple[list[Any], bool]:
        """``rows`` were fetched with ``limit + 1``: the page, and whether another follows."""
        return rows[: self.limit], len(rows) > self.limit

    @staticmethod
    def page(data: list[dict[str, Any]], next_after: str | None) -> dict[str, Any]:
        return {"data": data, "next_cursor": encode_cursor(next_after) if next_after else None}
