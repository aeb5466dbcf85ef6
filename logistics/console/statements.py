"""``/console/statements``: a clerk downloads the monthly statement (月结对账单) of one of their departments —
the same CSV as ``GET /v1/statements``, of every client's shipments of that department.

A plain GET form (department, month): downloading changes nothing, so it needs the session but no CSRF
token. A department the clerk does not serve answers like the form with an error, never with its rows.
"""

from __future__ import annotations

import logging
from datetime import date

from aiohttp import web

from logistics import statement
from logistics.api.appkeys import DB
from logistics.console.sessions import Session
from logistics.console.views import render, signed_in
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import utcnow
from logistics.pages.views import esc

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()

MONTH_ERROR = "请选择月份（格式 2026-11）。"
DEPARTMENT_ERROR = "请选择您所属的部门。"


def last_month(today: date) -> date:
    """The month a settlement is usually drawn up for: the one before ``today``'s (Beijing)."""
    return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)


def form(session: Session, department: str, month: str, errors: dict[str, str], status: int = 200) -> web.Response:
    options = "".join(
        f'<option value="{esc(d)}"{" selected" if d == department else ""}>{esc(d)}</option>'
        for d in session.member.departments
    )

    def error(field: str) -> str:
        text = errors.get(field)
        return f'<div class="notice error" id="{field}-error">{esc(text)}</div>' if text else ""

    body = (
        '<section class="card narrow"><h1>月结对账单</h1>'
        '<p class="muted">本部门当月交邮（邮政揽收）的全部邮件，按交寄日期、运单号排列，供与邮政月结对账。'
        "CSV 文件，可直接用 Excel 打开。</p>"
        '<form method="get" action="/console/statements" id="statement-form">'
        f'<label for="department">部门</label><select id="department" name="department">{options}</select>'
        f"{error('department')}"
        f'<label for="month">月份（北京时间）</label><input type="month" id="month" name="month" '
        f'value="{esc(month)}" placeholder="2026-11" required>{error("month")}'
        '<button type="submit" id="download">下载对账单</button></form></section>'
    )
    return render("月结对账单", body, session=session, status=status)


@routes.get("/console/statements")
@signed_in
async def statements_page(request: web.Request, session: Session) -> web.StreamResponse:
    query = request.query
    if "month" not in query and "department" not in query:
        month = f"{last_month(beijing_today(utcnow())):%Y-%m}"
        return form(session, session.member.departments[0], month, {})
    department, month = query.get("department", ""), query.get("month", "")
    errors: dict[str, str] = {}
    if not session.member.serves(department):
        errors["department"] = DEPARTMENT_ERROR
    try:
        first = statement.parse_month(month)
    except ValueError:
        errors["month"] = MONTH_ERROR
    if errors:
        chosen = department if session.member.serves(department) else session.member.departments[0]
        return form(session, chosen, month[:7], errors, status=400)
    db = request.app[DB]
    rows = await statement.month_rows(db, department, first, None)
    log.info("console_statement", extra={"staff_id": session.member.id, "month": month, "rows": len(rows)})
    return await statement.send(request, db, department, first, rows)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
