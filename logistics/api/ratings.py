"""好差评: the applicant's rating of a delivered shipment, given once on the public tracking page.

Five levels, best first (国办发〔2019〕51号): 5 非常满意 … 1 非常不满意; 1 and 2 are 差评 and open a follow-up for
the department in the same transaction (logistics/api/follow_ups.py). The optional comment is bounded and has
every phone and resident-ID number removed before it is stored (labels.privacy.remove_numbers_in); it goes to
the client (``shipment.rated`` webhook, ``GET /v1/ratings``), never onto a public page: the tracking page shows
only the level given. One rating per shipment: checked under the shipment's lock and enforced by a unique
constraint, so two posts at once still store one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from labels.privacy import remove_numbers_in
from logistics.api import follow_ups
from logistics.api.appkeys import DB
from logistics.api.auth import authenticate
from logistics.api.complaints import clean
from logistics.api.paging import ListQuery
from logistics.api.present import iso
from logistics.api.shipments import json_response
from logistics.domain import ids
from logistics.domain.events import emit, lock_shipment
from logistics.domain.tables import ratings, shipments, utcnow
from logistics.storage.db import Database

log = logging.getLogger("logistics.ratings")
routes = web.RouteTableDef()
RATED = "shipment.rated"

LEVELS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD = frozenset({1, 2})  # 差评: a follow-up is owed
COMMENT_MAX = 200
RATABLE = frozenset({"delivered"})  # a delivery at the applicant's door, an intake at the hall


def clean_comment(text: str) -> str:
    """The comment as stored: control characters and blank runs gone (as for complaints), then every phone
    and resident-ID number removed. Pure; bound the length on what this returns."""
    return clean(remove_numbers_in(clean(text)))


def parse_level(value: object) -> int | None:
    """The level 1–5 from a form field or JSON value, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in LEVELS else None
    text = str(value or "").strip()
    return int(text) if text in {"1", "2", "3", "4", "5"} else None


def check(level: int | None, comment: str) -> tuple[str, str] | None:
    """(field, Chinese message) of the first problem, or None."""
    if level is None:
        return "level", "请选择评价等级"
    if len(comment) > COMMENT_MAX:
        return "comment", f"评价内容太长了（最多{COMMENT_MAX}个字）"
    return None


class NotRatable(Exception):
    """The shipment has not been delivered (yet): there is nothing to rate."""


class AlreadyRated(Exception):
    """One rating per shipment; ``level`` is the one given."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.level = level


@dataclass(frozen=True, slots=True)
class Rated:
    id: str
    level: int
    follow_up_id: str | None


async def rate(db: Database, shipment_id: str, level: int, comment: str, *, now: datetime | None = None) -> Rated:
    """Store the rating, open a follow-up when it is a bad one and owe the client its webhook, in one
    transaction. ``comment`` must already be cleaned and checked. LookupError for an unknown shipment."""
    now = now or utcnow()
    rid = "rat_" + ids.ulid()
    try:
        async with db.write() as conn:
            row = await lock_shipment(conn, shipment_id)
            if row is None:
                raise LookupError(shipment_id)
            if row["status"] not in RATABLE:
                raise NotRatable(shipment_id)
            given = await level_of(conn, shipment_id)
            if given is not None:
                raise AlreadyRated(given)
            record = {
                "id": rid,
                "shipment_id": shipment_id,
                "client_id": row["client_id"],
                "level": level,
                "comment": comment or None,
                "created_at": now,
            }
            await conn.execute(insert(ratings).values(**record))
            follow_up = await follow_ups.open_for(conn, record, now) if level in BAD else None
            await emit(conn, row, RATED, None, extra={"rating": rating_json(record, follow_up)})
    except IntegrityError:
        # Two posts raced past the check (the lock is PostgreSQL's): the unique constraint kept the first.
        async with db.read() as conn:
            given = await level_of(conn, shipment_id)
        if given is None:
            raise
        raise AlreadyRated(given) from None
    # Ids and the level only: the comment is the applicant's free text.
    log.info("rated", extra={"rating_id": rid, "shipment_id": shipment_id, "level": level})
    return Rated(rid, level, follow_up["id"] if follow_up else None)


async def level_of(conn: Any, shipment_id: str) -> int | None:
    return (await conn.execute(select(ratings.c.level).where(ratings.c.shipment_id == shipment_id))).scalar()


def rating_json(r: Any, follow_up: Any = None) -> dict[str, Any]:
    """A rating as the client reads it (comment included: the client owns the case); ``follow_up`` the one
    it opened, if any."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k, None)
    return {
        "id": get("id"),
        "shipment_id": get("shipment_id"),
        "level": get("level"),
        "level_text": LEVELS.get(get("level"), str(get("level"))),
        "comment": get("comment"),
        "created_at": iso(get("created_at")),
        "follow_up_opened": follow_up is not None,
        "follow_up": None if follow_up is None else follow_ups.summary_json(follow_up),
    }


def since_param(q: ListQuery) -> datetime | None:
    """``since`` (ISO 8601 with an offset): only what was created at or after it. A bad one joins the 422."""
    raw = q.query.get("since")
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00")) if len(raw) <= 40 else None
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or not 1970 <= value.year <= 9998:
        q.errors.append({"field": "since", "message": "must be an ISO 8601 date-time with a time zone"})
        return None
    return value


@routes.get("/v1/ratings")
async def list_ratings(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    since = since_param(q)
    q.cursor("rat_")
    query = (
        select(ratings, shipments.c.tracking_code, follow_ups.table.c.id.label("fu_id"), follow_ups.table.c.due_by)
        .join(shipments, shipments.c.id == ratings.c.shipment_id)
        .outerjoin(follow_ups.table, follow_ups.table.c.rating_id == ratings.c.id)
        .where(ratings.c.client_id == client_id)
    )
    if since is not None:
        query = query.where(ratings.c.created_at >= since)
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, ratings.c.id)
    data = [
        {
            **rating_json(r, {"id": r.fu_id, "due_by": r.due_by} if r.fu_id else None),
            "tracking_code": r.tracking_code,
        }
        for r in page.rows
    ]
    return json_response(page.answer(data))
