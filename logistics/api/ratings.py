"""好差评: the applicant's rating of a delivered shipment, given once on the public tracking page.

Five levels, best first (国办发〔2019〕51号): 5 非常满意 … 1 非常不满意; 1 and 2 are 差评 and open a follow-up for
the department in the same transaction (below). The optional comment is bounded and has
every phone and resident-ID number removed before it is stored (labels.privacy.remove_numbers_in); it goes to
the client (``shipment.rated`` webhook, ``GET /v1/ratings``), never onto a public page: the tracking page shows
only the level given. One rating per shipment: checked under the shipment's lock and enforced by a unique
constraint, so two posts at once still store one.

Follow-ups (差评回访): opened in the rating's transaction, due on the fifth working day after the Beijing date it
was opened (logistics/domain/deadlines.py: the opening day is not counted, 调休 and holidays are). Closed once,
with the action taken, by the client over the API or by a clerk of the department on the console (``closed_by``
is the client id or the staff id); one closed after its ``due_by`` is late. Each close is also sent to the
client as a ``shipment.follow_up_closed`` webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from labels.privacy import remove_numbers_in
from logistics.api.appkeys import DB, REQUEST_ID, SIGNAL
from logistics.api.auth import authenticate
from logistics.api.complaints import clean
from logistics.api.errors import CONTENT_TYPE, PROBLEM_TYPE_BASE, Problem, not_found
from logistics.api.paging import ListQuery, if_given
from logistics.api.present import iso
from logistics.api.shipments import json_response, read_json
from logistics.domain import ids
from logistics.domain.deadlines import beijing_today, due_by
from logistics.domain.events import emit, lock_shipment
from logistics.domain.tables import follow_ups as follow_ups_table
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
            follow_up = await open_follow_up(conn, record, row["department"], now) if level in BAD else None
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
        "follow_up": None if follow_up is None else follow_up_summary(follow_up),
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
        select(ratings, shipments.c.tracking_code, follow_ups_table.c.id.label("fu_id"), follow_ups_table.c.due_by)
        .join(shipments, shipments.c.id == ratings.c.shipment_id)
        .outerjoin(follow_ups_table, follow_ups_table.c.rating_id == ratings.c.id)
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


# Follow-ups (差评回访)
CLOSED = "shipment.follow_up_closed"
WORKING_DAYS = 5
ACTION_MIN, ACTION_MAX = 5, 500
FOLLOW_UP_STATUSES = ("open", "closed")


def due_date(opened_at: datetime) -> date:
    return due_by(beijing_today(opened_at), WORKING_DAYS).due_by


def is_late(due: date, closed_at: datetime | None, now: datetime) -> bool:
    """Closed after its due date (Beijing), or still open past it."""
    return beijing_today(closed_at or now) > due


async def open_follow_up(
    conn: AsyncConnection, rating: dict[str, Any], department: str, now: datetime
) -> dict[str, Any]:
    """Open the follow-up of a bad ``rating`` (of a shipment of ``department``) in the caller's transaction."""
    record = {
        "id": "fu_" + ids.ulid(),
        "rating_id": rating["id"],
        "shipment_id": rating["shipment_id"],
        "department": department,
        "client_id": rating["client_id"],
        "opened_at": now,
        "due_by": due_date(now),
        "closed_at": None,
        "action": None,
        "closed_by": None,
    }
    await conn.execute(insert(follow_ups_table).values(**record))
    log.info("follow_up_opened", extra={"follow_up_id": record["id"], "shipment_id": rating["shipment_id"]})
    return record


def clean_action(text: str) -> str:
    return clean(text)


def check_action(text: str) -> str | None:
    """The Chinese message for an action that cannot be recorded, or None."""
    if len(text) < ACTION_MIN:
        return f"请写清楚回访和处理情况（至少{ACTION_MIN}个字）"
    if len(text) > ACTION_MAX:
        return f"处理情况太长了（最多{ACTION_MAX}个字）"
    return None


class AlreadyClosed(Exception):
    """A follow-up is closed once; ``record`` is the first close."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["id"])
        self.record = record


@dataclass(frozen=True, slots=True)
class Closing:
    action: str
    closed_by: str
    now: datetime


async def close_locked(
    conn: AsyncConnection, shipment: dict[str, Any], follow_up: dict[str, Any], closing: Closing
) -> dict[str, Any]:
    """Close ``follow_up`` of ``shipment`` (locked by the caller with ``lock_shipment``, which also serialises two
    closes) and owe the client its webhook. AlreadyClosed when it was closed before."""
    if follow_up["closed_at"] is not None:
        raise AlreadyClosed(follow_up)
    values = {"closed_at": closing.now, "action": closing.action, "closed_by": closing.closed_by}
    await conn.execute(
        update(follow_ups_table)
        .where(follow_ups_table.c.id == follow_up["id"], follow_ups_table.c.closed_at.is_(None))
        .values(**values)
    )
    record = {**follow_up, **values}
    await emit(conn, shipment, CLOSED, None, extra={"follow_up": follow_up_json(record, closing.now)})
    log.info("follow_up_closed", extra={"follow_up_id": follow_up["id"], "shipment_id": shipment["id"]})
    return record


async def follow_up_of(conn: AsyncConnection, shipment_id: str) -> dict[str, Any] | None:
    """The shipment's follow-up with its rating's level (at most one: one rating per shipment)."""
    row = (
        await conn.execute(
            select(follow_ups_table, ratings.c.level)
            .join(ratings, ratings.c.id == follow_ups_table.c.rating_id)
            .where(follow_ups_table.c.shipment_id == shipment_id)
        )
    ).first()
    return dict(row._mapping) if row is not None else None


def follow_up_summary(f: Any) -> dict[str, Any]:
    """What a rating's answer says of the follow-up it opened."""
    get = f.get if isinstance(f, dict) else lambda k: getattr(f, k, None)
    due = get("due_by")
    return {"id": get("id"), "due_by": due.isoformat() if due else None}


def follow_up_json(f: Any, now: datetime) -> dict[str, Any]:
    """A follow-up as the client reads it. ``closed_by`` is the client's id when it closed it, ``hall`` when a
    clerk did: which clerk stays with the hall, as for a complaint's answer."""
    get = f.get if isinstance(f, dict) else lambda k: getattr(f, k, None)
    closed_at, closer = get("closed_at"), get("closed_by")
    return {
        "id": get("id"),
        "rating_id": get("rating_id"),
        "shipment_id": get("shipment_id"),
        "status": "open" if closed_at is None else "closed",
        "opened_at": iso(get("opened_at")),
        "due_by": get("due_by").isoformat(),
        "closed_at": iso(closed_at),
        "closed_by": None if closer is None else closer if closer == get("client_id") else "hall",
        "action": get("action"),
        "late": is_late(get("due_by"), closed_at, now),
    }


@routes.get("/v1/follow-ups")
async def list_follow_ups(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    status = q.choice("status", FOLLOW_UP_STATUSES)
    q.cursor("fu_")
    closed = {"open": follow_ups_table.c.closed_at.is_(None), "closed": follow_ups_table.c.closed_at.is_not(None)}.get(
        status or ""
    )
    query = (
        select(follow_ups_table, shipments.c.tracking_code, ratings.c.level)
        .join(shipments, shipments.c.id == follow_ups_table.c.shipment_id)
        .join(ratings, ratings.c.id == follow_ups_table.c.rating_id)
        .where(follow_ups_table.c.client_id == client_id, if_given(closed, closed))  # type: ignore[arg-type]
    )
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, follow_ups_table.c.id)
    now = utcnow()
    data = [{**follow_up_json(r, now), "tracking_code": r.tracking_code, "level": r.level} for r in page.rows]
    return json_response(page.answer(data))


def _already_closed(request: web.Request, record: dict[str, Any]) -> web.Response:
    """409 problem+json carrying the first close, so a client that retried learns what was recorded."""
    body = {
        "type": PROBLEM_TYPE_BASE + "already-closed",
        "title": "Already closed",
        "status": 409,
        "detail": "This follow-up was closed before; follow_up is that close.",
        "instance": request.path,
        "request_id": request.get(REQUEST_ID),
        "follow_up": follow_up_json(record, utcnow()),
    }
    return web.Response(status=409, body=orjson.dumps(body), content_type=CONTENT_TYPE)


async def _read_action(request: web.Request) -> str:
    data = await read_json(request)
    raw = data.get("action") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        raise Problem(
            422,
            "validation",
            "Invalid request",
            "Some fields are invalid; see errors.",
            errors=[{"field": "action", "message": "is required: the action taken, as text"}],
        )
    action = clean_action(raw[: ACTION_MAX * 4])
    problem = check_action(action)
    if problem is not None:
        raise Problem(
            422,
            "validation",
            "Invalid request",
            problem,
            errors=[{"field": "action", "message": f"must be {ACTION_MIN} to {ACTION_MAX} characters"}],
        )
    return action


@routes.post("/v1/follow-ups/{id}/close")
async def close_follow_up(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    action = await _read_action(request)
    fid = request.match_info["id"][:40]
    now = utcnow()
    async with request.app[DB].write() as conn:
        owner = (
            await conn.execute(
                select(follow_ups_table.c.shipment_id).where(
                    follow_ups_table.c.id == fid, follow_ups_table.c.client_id == client_id
                )
            )
        ).scalar()
        shipment = await lock_shipment(conn, owner) if owner is not None else None
        if shipment is None:
            raise not_found("follow-up")
        found = (await conn.execute(select(follow_ups_table).where(follow_ups_table.c.id == fid))).one()
        try:
            record = await close_locked(conn, shipment, dict(found._mapping), Closing(action, client_id, now))
        except AlreadyClosed as exc:
            return _already_closed(request, exc.record)
    request.app[SIGNAL].poke()
    return json_response(follow_up_json(record, now))
