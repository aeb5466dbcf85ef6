"""Complaints (投诉): filed from the public tracking page, stored, listed to the shipment's client
by ``GET /v1/complaints`` and sent to it as a ``shipment.complaint`` webhook. The hall answers one on its
console: the answer is stored with the clerk, sent as ``shipment.complaint_answered`` and shown, masked, on
the tracking page (the complaint's own text never is)."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.api.appkeys import DB
from logistics.api.auth import authenticate
from logistics.api.paging import ListQuery, if_given
from logistics.api.present import iso
from logistics.api.shipments import json_response
from logistics.domain import ids
from logistics.domain.events import emit, lock_shipment
from logistics.domain.tables import complaints, shipments, utcnow
from logistics.storage.db import Database

log = logging.getLogger("logistics.complaints")
routes = web.RouteTableDef()
COMPLAINT = "shipment.complaint"
ANSWERED = "shipment.complaint_answered"

CATEGORIES: dict[str, str] = {
    "delay": "寄递太慢 / 超时未到",
    "not_received": "显示签收但没有收到",
    "damaged": "邮件破损或材料缺失",
    "attitude": "服务态度",
    "privacy": "个人信息泄露",
    "other": "其他问题",
}
TEXT_MIN, TEXT_MAX = 5, 1000
ANSWER_MIN, ANSWER_MAX = 5, 1000


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANKS = re.compile(r"[^\S\n]+")


def clean(text: str) -> str:
    # Unlike the API's clean_text, Chinese punctuation (，。) stays full-width: this is prose, not a field.
    return _BLANKS.sub(" ", _CONTROL.sub("", text.replace("\r\n", "\n"))).strip()


def check(category: str, text: str) -> tuple[str, str] | None:
    """(field, Chinese message) of the first problem, or None."""
    if category not in CATEGORIES:
        return "category", "请选择问题类型"
    if len(text) < TEXT_MIN:
        return "text", f"请写清楚遇到的问题（至少{TEXT_MIN}个字）"
    if len(text) > TEXT_MAX:
        return "text", f"内容太长了（最多{TEXT_MAX}个字）"
    return None


async def store(db: Database, shipment_id: str, category: str, text: str) -> str:
    """Store the complaint and owe the client its webhook, in one transaction."""
    cid = "cmp_" + ids.ulid()
    now = utcnow()
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        if row is None:
            raise LookupError(shipment_id)
        record = {
            "id": cid,
            "shipment_id": shipment_id,
            "client_id": row["client_id"],
            "category": category,
            "text": text,
            "created_at": now,
        }
        await conn.execute(insert(complaints).values(**record, department=row["department"]))
        await emit(conn, row, COMPLAINT, None, extra={"complaint": complaint_json(record)})
    # Ids only: the text may hold personal data and goes to the client, not to the logs.
    log.info("complaint", extra={"complaint_id": cid, "shipment_id": shipment_id, "category": category})
    return cid


def check_answer(text: str) -> str | None:
    """The Chinese message for an answer that cannot be sent, or None."""
    if len(text) < ANSWER_MIN:
        return f"请写清楚答复内容（至少{ANSWER_MIN}个字）"
    if len(text) > ANSWER_MAX:
        return f"答复太长了（最多{ANSWER_MAX}个字）"
    return None


class AlreadyAnswered(Exception):
    """A complaint has one answer: a second (two clerks at once, a form posted twice) is refused."""


async def answer(
    conn: AsyncConnection, shipment: dict[str, Any], complaint_id: str, text: str, *, staff_id: str
) -> dict[str, Any]:
    """Store the hall's answer to one of ``shipment``'s complaints (``shipment`` from ``lock_shipment`` in
    ``conn``, which also serialises two answers) and owe the client its webhook. LookupError when the complaint
    is not this shipment's, AlreadyAnswered when it has its answer."""
    found = (
        await conn.execute(
            select(complaints).where(complaints.c.id == complaint_id, complaints.c.shipment_id == shipment["id"])
        )
    ).first()
    if found is None:
        raise LookupError(complaint_id)
    if found.answered_at is not None:
        raise AlreadyAnswered(complaint_id)
    values = {"answer": text, "answered_at": utcnow(), "answered_by": staff_id}
    await conn.execute(update(complaints).where(complaints.c.id == complaint_id).values(**values))
    record = {**found._mapping, **values}
    await emit(conn, shipment, ANSWERED, None, extra={"complaint": complaint_json(record)})
    log.info("complaint_answered", extra={"complaint_id": complaint_id, "shipment_id": shipment["id"]})
    return record


def complaint_json(c: Any) -> dict[str, Any]:
    get = c.get if isinstance(c, dict) else lambda k: getattr(c, k, None)
    answered_at = get("answered_at")
    return {
        "id": get("id"),
        "shipment_id": get("shipment_id"),
        "category": get("category"),
        "category_text": CATEGORIES.get(get("category"), get("category")),
        "text": get("text"),
        "created_at": iso(get("created_at")),
        # The hall's answer (null until answered); who answered stays with the hall.
        "answer": None if answered_at is None else {"text": get("answer"), "answered_at": iso(answered_at)},
    }


@routes.get("/v1/complaints")
async def list_complaints(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = ListQuery.of(request)
    shipment_id = q.text("shipment_id")
    q.cursor("cmp_")
    query = (
        select(complaints, shipments.c.tracking_code)
        .join(shipments, shipments.c.id == complaints.c.shipment_id)
        .where(complaints.c.client_id == client_id, if_given(shipment_id, complaints.c.shipment_id == shipment_id))
    )
    async with request.app[DB].read() as conn:
        page = await q.fetch(conn, query, complaints.c.id)
    return json_response(page.answer([{**complaint_json(r), "tracking_code": r.tracking_code} for r in page.rows]))
