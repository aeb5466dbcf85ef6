"""好差评 on the console: the shipment page's card (the rating given, its comment — numbers already removed — and
its follow-up: open with the close form, or closed with who and when), and closing a bad rating's follow-up.

The close follows the API's rules (logistics/api/ratings.py close_locked, under the shipment's row lock): the
clerk's departments only (another's is the 404 of an unknown shipment), CSRF, once — a second close is refused
with the first one's text — and ``closed_by`` is the clerk's staff id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from logistics.api import ratings
from logistics.console.actions import Refused, act, notice
from logistics.console.sessions import Session
from logistics.console.views import signed_in
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import follow_ups as follow_ups_table
from logistics.domain.tables import ratings as ratings_table
from logistics.domain.tables import staff, utcnow
from logistics.pages.views import beijing, esc
from logistics.storage.db import Database

routes = web.RouteTableDef()


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


@routes.post("/console/shipments/{id}/follow-up/close")
@signed_in
async def close_follow_up(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        text = ratings.clean_action(form.get("action", "")[: ratings.ACTION_MAX * 4])
        problem = ratings.check_action(text)
        if problem is not None:
            raise Refused(problem, status=422)
        found = (
            await conn.execute(select(follow_ups_table).where(follow_ups_table.c.shipment_id == row["id"]))
        ).first()
        if found is None:
            raise Refused("这件邮件没有待回访的差评。", status=404)
        closing = ratings.Closing(text, session.member.id, utcnow())
        try:
            await ratings.close_locked(conn, row, dict(found._mapping), closing)
        except ratings.AlreadyClosed as exc:
            raise Refused(f"这条差评已经登记过回访结果：{exc.record['action']}") from None
        return notice("回访结果已登记，并已通知办件系统。", ok=True)

    return await act(request, session, "close_follow_up", action)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
