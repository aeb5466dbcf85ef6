"""好差评 on the console's shipment page: the rating given, its comment (numbers already removed) and its
follow-up — open with the close form, or closed with who and when. Read and render only: the close is an action
(logistics/console/actions.py ``close_follow_up``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from logistics.api import ratings
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import ratings as ratings_table
from logistics.domain.tables import staff
from logistics.pages.views import beijing, esc
from logistics.storage.db import Database


async def card_data(db: Database, shipment_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(rating, follow-up with the closing clerk's name) of a shipment; None where there is none."""
    async with db.read() as conn:
        found = (await conn.execute(select(ratings_table).where(ratings_table.c.shipment_id == shipment_id))).first()
        follow_up = await ratings.follow_up_of(conn, shipment_id)
        if follow_up is not None and follow_up["closed_by"]:
            name = (await conn.execute(select(staff.c.name).where(staff.c.id == follow_up["closed_by"]))).scalar()
            follow_up["closed_by_name"] = name  # None when the client closed it over the API
    return (dict(found._mapping) if found is not None else None), follow_up


def _follow_up_html(f: dict[str, Any], csrf: str, shipment_id: str, now: datetime) -> str:
    due = f["due_by"].isoformat()
    if f["closed_at"] is None:
        overdue = beijing_today(now) > f["due_by"]
        badge = '<span class="badge bad">已超期</span>' if overdue else '<span class="badge warn">待回访</span>'
        return (
            f'<p id="follow-up">差评回访 {badge} 须在 {esc(due)} 前完成</p>'
            f'<form method="post" action="/console/shipments/{esc(shipment_id)}/follow-up/close" class="action"'
            f' id="follow-up-form"><input type="hidden" name="csrf" value="{esc(csrf)}">'
            '<label for="follow-up-action">回访和处理情况</label>'
            f'<textarea id="follow-up-action" name="action" maxlength="{ratings.ACTION_MAX}" required'
            ' placeholder="如：已电话回访申请人，说明延误原因并致歉；已督促揽投部改进。"></textarea>'
            '<button type="submit">登记回访结果</button></form>'
        )
    late = ' <span class="badge bad">超期办结</span>' if ratings.is_late(f["due_by"], f["closed_at"], now) else ""
    who = f.get("closed_by_name") or "办件系统"
    return (
        f'<p id="follow-up">差评回访 <span class="badge">已办结</span>{late}（期限 {esc(due)}）</p>'
        f'<div class="answer" id="follow-up-action">{esc(f["action"])}<br><span class="muted">'
        f"{esc(who)} 登记于 {esc(beijing(f['closed_at']))}</span></div>"
    )


def render(rating: dict[str, Any] | None, follow_up: dict[str, Any] | None, csrf: str, now: datetime) -> str:
    if rating is None:
        return '<section class="card" id="rating"><h2>服务评价</h2><p class="muted">申请人尚未评价。</p></section>'
    level = ratings.LEVELS.get(rating["level"], str(rating["level"]))
    bad = ' class="badge bad"' if rating["level"] in ratings.BAD else ' class="badge"'
    comment = f"<p>{esc(rating['comment'])}</p>" if rating["comment"] else '<p class="muted">（未填写意见）</p>'
    extra = _follow_up_html(follow_up, csrf, rating["shipment_id"], now) if follow_up is not None else ""
    return (
        f'<section class="card" id="rating"><h2>服务评价</h2>'
        f'<p><span{bad} id="rating-level">{esc(level)}</span> {esc(beijing(rating["created_at"]))}</p>'
        f"{comment}{extra}</section>"
    )
