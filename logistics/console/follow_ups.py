"""Closing a bad rating's follow-up from the console: the clerk writes the action taken.

The same rules as the API's close (logistics/api/follow_ups.py close_locked, under the shipment's row lock):
the clerk's departments only (another's is the 404 of an unknown shipment), CSRF, once — a second close is
refused with the first one's text, and ``closed_by`` is the clerk's staff id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from logistics.api import follow_ups
from logistics.console.actions import Refused, act, notice
from logistics.console.sessions import Session
from logistics.console.views import signed_in
from logistics.domain.tables import follow_ups as table
from logistics.domain.tables import utcnow

routes = web.RouteTableDef()


@routes.post("/console/shipments/{id}/follow-up/close")
@signed_in
async def close_follow_up(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        text = follow_ups.clean_action(form.get("action", "")[: follow_ups.ACTION_MAX * 4])
        problem = follow_ups.check_action(text)
        if problem is not None:
            raise Refused(problem, status=422)
        found = (await conn.execute(select(table).where(table.c.shipment_id == row["id"]))).first()
        if found is None:
            raise Refused("这件邮件没有待回访的差评。", status=404)
        closing = follow_ups.Closing(text, session.member.id, utcnow())
        try:
            await follow_ups.close_locked(conn, row, dict(found._mapping), closing)
        except follow_ups.AlreadyClosed as exc:
            raise Refused(f"这条差评已经登记过回访结果：{exc.record['action']}") from None
        return notice("回访结果已登记，并已通知办件系统。", ok=True)

    return await act(request, session, "close_follow_up", action)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
