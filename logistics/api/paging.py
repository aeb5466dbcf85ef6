"""Cursor pages and list filters, the same for every list endpoint.

Ids are time-ordered (ULIDs behind a prefix), so "newest first, after this id" is a stable keyset page: rows
created while a client pages through never shift what it has not seen yet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import Row, Select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from logistics.api.appkeys import SETTINGS
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


def if_given(value: object, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` when the client gave the filter ``value``, else a true that SQLAlchemy leaves out of the
    WHERE: a list's filters are then one ``where(...)`` instead of an ``if`` each."""
    return condition if value is not None else true()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows, newest first; ``next_after`` is the last row's id when another page follows."""

    rows: list[Row[Any]]
    next_after: str | None

    def answer(self, data: list[dict[str, Any]]) -> dict[str, Any]:
        """The list endpoints' body: ``data`` (the rows as JSON) and the cursor of the next page, or null."""
        return {"data": data, "next_cursor": encode_cursor(self.next_after) if self.next_after else None}


class ListQuery:
    """Reads `limit`, `cursor` and enumerated filters, collecting every error before answering 422 once."""

    def __init__(self, query: Mapping[str, str], *, maximum: int) -> None:
        self.query = query
        self.errors: list[dict[str, str]] = []
        self.after: str | None = None
        self.limit = DEFAULT_LIMIT
        if "limit" in query:
            try:
                self.limit = int(query["limit"])
                if not 1 <= self.limit <= maximum:
                    raise ValueError
            except ValueError:
                self.errors.append({"field": "limit", "message": f"must be an integer from 1 to {maximum}"})

    @classmethod
    def of(cls, request: web.Request) -> ListQuery:
        return cls(request.query, maximum=request.app[SETTINGS].page_size_max)

    def choice(self, name: str, allowed: Iterable[str]) -> str | None:
        value = self.query.get(name)
        allowed = tuple(allowed)
        if value is not None and value not in allowed:
            self.errors.append({"field": name, "message": "must be one of " + ", ".join(allowed)})
        return value

    def text(self, name: str) -> str | None:
        value = (self.query.get(name) or "").strip()
        return value or None

    def cursor(self, prefix: str) -> None:
        """Call after the other filters and before :meth:`fetch`: a bad cursor answers at once, with the errors
        found so far."""
        self.check()
        self.after = decode_cursor(self.query["cursor"], prefix) if self.query.get("cursor") else None

    def check(self) -> None:
        if self.errors:
            raise validation_problem(self.errors)

    async def fetch(self, conn: AsyncConnection, query: Select[Any], key: ColumnElement[str]) -> Page:
        """The page of ``query`` (already filtered) ordered by its id column ``key``, newest first.

        One row more than the limit is read: it only tells whether another page follows, so the last page
        answers ``next_cursor: null`` instead of sending the client to an empty page.
        """
        if self.after is not None:
            query = query.where(key < self.after)
        rows = list(await conn.execute(query.order_by(key.desc()).limit(self.limit + 1)))
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        return Page(rows, rows[-1]._mapping[key] if more else None)
