"""Follow-ups (差评回访): a 不满意 or 非常不满意 rating owes the department a follow-up within five working days.

Opened in the rating's transaction (logistics/api/ratings.py), due on the fifth working day after the Beijing
date it was opened (logistics/domain/deadlines.py: the opening day is not counted, 调休 and holidays are).
Closed once, with the action taken, by the client over the API or by a clerk of the department on the
console (``closed_by`` is the client id or the staff id); a follow-up closed after its ``due_by`` is late.
Each close is also sent to the client as a ``shipment.follow_up_closed`` webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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
from logistics.domain.tables import follow_ups as table
from logistics.domain.tables import ratings, shipments, utcnow

log = logging.getLogger("logistics.follow_ups")
routes = web.RouteTableDef()
CLOSED = "shipment.follow_up_closed"
WORKING_DAYS = 5
ACTION_MIN, ACTION_MAX = 5, 500
STATUSES = ("open", "closed")


def due_date(opened_at: datetime) -> date:
    return due_by(beijing_today(opened_at), WORKING_DAYS).due_by


def is_late(due: date, closed_at: datetime | None, now: datetime) -> bool:
    """Closed after its due date (Beijing), or still open past it."""
    return beijing_today(closed_at or now) > due


async def open_for(conn: AsyncConnection, rating: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Open the follow-up of a bad ``rating`` in the caller's transaction."""
    record = {
        "id": "fu_" + ids.ulid(),
        "rating_id": rating["id"],
        "shipment_id": rating["shipment_id"],
        "client_id": rating["client_id"],
        "opened_at": now,
        "due_by": due_date(now),
        "closed_at": None,
        "action": None,
        "closed_by": None,
    }
    await conn.execute(insert(table).values(**record))
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
    await conn.execute(update(table).where(table.c.id == follow_up["id"], table.c.closed_at.is_(None)).values(**values))
    record = {**follow_up, **values}
    await emit(conn, shipment, CLOSED, None, extra={"follow_up": follow_up_json(record, closing.now)})
    log.info("follow_up_closed", extra={"follow_up_id": follow_up["id"], "shipment_id": shipment["id"]})
    return record


async def of_shipment(conn: AsyncConnection, shipment_id: str) -> dict[str, Any] | None:
    """The shipment's follow-up with its rating's level (at most one: one rating per shipment)."""
    row = (
        await conn.execute(
            select(table, ratings.c.level)
            .join(ratings, ratings.c.id == table.c.rating_id)
            .where(table.c.shipment_id == shipment_id)
        )
    ).first()
    return dict(row._mapping) if row is not None else None


def summary_json(f: Any) -> dict[str, Any]:
    """What a rating's answer says of the follow-up it opened."""
    get = f.get if isinstance(f, dict) else lambda k: getattr(f, k, None)
    due = get("due_by")
    return {"id": get("id"), "due_by": due.isoformat() if due else None}


def follow_up_json(f: Any, now: datetime) -> dict[str, Any]:
    get = f.get if isinstance(f, dict) else lambda k: getattr(f, k, None)
    closed_at = get("closed_at")
    return {
        "id": get("id"),
        "rating_id": get("rating_id"),
        "shipment_id": get("shipment_id"),
        "status": "open" if closed_at is None else "closed",
        "opened_at": iso(get("opened_at")),
        "due_by": get("due_by").isoformat(),
        "closed_at": iso(closed_at),
        "closed_by": get("closed_by"),
        "action": get("action"),
        "late": is_late(get("due_by"), closed_at, now),
    }


@routes.get("/v1/follow-ups")
async def list_follow_ups(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    status = q.choice("status", STATUSES)
    q.cursor("fu_")
    closed = {"open": table.c.closed_at.is_(None), "closed": table.c.closed_at.is_not(None)}.get(status or "")
    query = (
        select(table, shipments.c.tracking_code, ratings.c.level)
        .join(shipments, shipments.c.id == table.c.shipment_id)
        .join(ratings, ratings.c.id == table.c.rating_id)
        .where(table.c.client_id == client_id, if_given(closed, closed))  # type: ignore[arg-type]
    )
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, table.c.id)
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
async def close(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    action = await _read_action(request)
    fid = request.match_info["id"][:40]
    now = utcnow()
    async with request.app[DB].write() as conn:
        owner = (
            await conn.execute(select(table.c.shipment_id).where(table.c.id == fid, table.c.client_id == client_id))
        ).scalar()
        shipment = await lock_shipment(conn, owner) if owner is not None else None
        if shipment is None:
            raise not_found("follow-up")
        found = (await conn.execute(select(table).where(table.c.id == fid))).one()
        try:
            record = await close_locked(conn, shipment, dict(found._mapping), Closing(action, client_id, now))
        except AlreadyClosed as exc:
            return _already_closed(request, exc.record)
    request.app[SIGNAL].poke()
    return json_response(follow_up_json(record, now))


async def open_dues(conn: AsyncConnection, shipment_ids: list[str]) -> dict[str, date]:
    """The due date of each of these shipments' open follow-ups (for the console's queue)."""
    if not shipment_ids:
        return {}
    rows = await conn.execute(
        select(table.c.shipment_id, table.c.due_by).where(
            table.c.shipment_id.in_(shipment_ids), table.c.closed_at.is_(None)
        )
    )
    return {r.shipment_id: r.due_by for r in rows}
