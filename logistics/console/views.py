"""``/console``: the hall's desktop console for clerks — sign-in, today's parcels, find, one shipment in full,
and the exceptions to chase. Server-rendered; no script at all, under the people's pages' strict
Content-Security-Policy.

Every form carries its session's CSRF token (the sign-in form a double-submit one, since no session exists yet)
and is also refused when posted from another site. A clerk reaches only the departments their token names:
another department's shipment answers exactly like one that does not exist (404).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.api.appkeys import DB, SETTINGS
from logistics.api.complaints import CATEGORIES
from logistics.api.returns import pickup_failed
from logistics.console import exceptions, queries, ratings, sessions
from logistics.console.sessions import Session
from logistics.domain.deadlines import beijing_today
from logistics.domain.statuses import CANCELLABLE, RETURN_STATUSES
from logistics.domain.tables import utcnow
from logistics.domain.wording import KIND_TEXT, SOURCE_TEXT, status_text
from logistics.pages.views import SECURITY_HEADERS, beijing, esc, limited, refuse_cross_origin
from logistics.redis.ratelimit import client_ip

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()
TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"  # the sign-in form's double-submit CSRF value
SIGN_IN_RATE_PER_MINUTE = 10  # per client IP: tokens are 256-bit, this only keeps the log and database calm
SECTION_TEXT = {"created": "今日新建", "waiting": "等待揽收", "picked_up": "今日已揽收", "delivered": "今日已妥投"}
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(
    title: str, body: str, *, session: Session | None = None, query: str = "", status: int = 200
) -> web.Response:
    nav = ""
    if session is not None:
        member = session.member
        nav = _template("nav.html").substitute(
            query=esc(query),
            name=esc(member.name),
            departments=esc("、".join(member.departments)),
            csrf=esc(session.csrf_token),
        )
    text = _template("console.html").substitute(title=esc(title), nav=nav, body=body)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


def message(session: Session | None, heading: str, text: str, *, status: int) -> web.Response:
    body = f'<section class="card narrow"><h1>{esc(heading)}</h1><p>{esc(text)}</p></section>'
    return render(heading, body, session=session, status=status)


def not_found(session: Session | None) -> web.Response:
    return message(session, "没有找到这件邮件", "请核对编号；只能查看本人所属部门的邮件。", status=404)


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS].base_url.startswith("https://")


def _address(request: web.Request) -> str:
    return client_ip(request, request.app[SETTINGS].trust_forwarded_for)


def _lifetime(request: web.Request) -> timedelta:
    return timedelta(hours=request.app[SETTINGS].console_session_hours)


async def current_session(request: web.Request) -> Session | None:
    return await sessions.current(request.app[DB], request.cookies.get(COOKIE, ""), now=utcnow())


def signed_in(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Pages for a signed-in clerk; anyone else is sent to sign in (and the stale cookie is dropped)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            raise _to_sign_in(request)
        return await handler(request, session)

    return wrapper


def _to_sign_in(request: web.Request) -> web.HTTPSeeOther:
    response = web.HTTPSeeOther("/console/sign-in")
    if COOKIE in request.cookies:
        response.del_cookie(COOKIE, path="/console")
    return response


async def session_on(request: web.Request, conn: AsyncConnection) -> Session:
    """The signed-in clerk, looked up on the connection the page then reads with (each connection taken from the
    pool costs round trips of its own: PostgreSQL's pre-ping, BEGIN, ROLLBACK); anyone else is sent to sign in."""
    session = await sessions.current_on(conn, request.cookies.get(COOKIE, ""), now=utcnow())
    if session is None:
        raise _to_sign_in(request)
    return session


async def posted_form(request: web.Request, expected_csrf: str) -> dict[str, str] | web.Response:
    """The form's fields, or the refusal: posted from another site, or without the right CSRF token."""
    refused = refuse_cross_origin(request)
    if refused is not None:
        return refused
    form = {k: str(v) for k, v in (await request.post()).items()}
    if not sessions.csrf_matches(expected_csrf, form.get("csrf", "")):
        log.info("console_csrf_refused", extra={"route": request.match_info.route.resource.canonical})
        return message(None, "无法提交", "页面已过期或表单不完整，请刷新页面后重试。", status=403)
    return form


# Sign-in and sign-out


def _sign_in_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    value = secrets.token_urlsafe(32)
    body = _template("sign_in.html").substitute(
        csrf=esc(value),
        hours=esc(f"{request.app[SETTINGS].console_session_hours:g}"),
        error=f'<div class="notice error" id="sign-in-error">{esc(error)}</div>' if error else "",
    )
    response = render("登录", body, status=status)
    response.set_cookie(
        SIGN_IN_COOKIE, value, path="/console", httponly=True, samesite="Strict", secure=_secure(request), max_age=3600
    )
    return response


@routes.get("/console")
async def console_root(request: web.Request) -> web.Response:
    target = "/console/today" if await current_session(request) is not None else "/console/sign-in"
    raise web.HTTPSeeOther(target)


@routes.get("/console/sign-in")
async def sign_in_form(request: web.Request) -> web.Response:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther("/console/today")
    return _sign_in_page(request)


@routes.post("/console/sign-in")
async def sign_in(request: web.Request) -> web.Response:
    form = await posted_form(request, request.cookies.get(SIGN_IN_COOKIE, ""))
    if isinstance(form, web.Response):
        return form
    blocked = await limited(request, "console_sign_in", SIGN_IN_RATE_PER_MINUTE, 60)
    if blocked is not None:
        return blocked
    done = await sessions.sign_in(request.app[DB], form.get("token", ""), lifetime=_lifetime(request), now=utcnow())
    if done is None:
        log.info("console_sign_in_refused")
        return _sign_in_page(request, error="令牌无效、已停用，或不是窗口人员的令牌。", status=401)
    log.info("console_signed_in", extra={"staff_id": done.session.member.id})
    response = web.HTTPSeeOther("/console/today")
    response.set_cookie(
        COOKIE,
        done.cookie_value,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        max_age=int(_lifetime(request).total_seconds()),
    )
    response.del_cookie(SIGN_IN_COOKIE, path="/console")
    raise response


@routes.post("/console/sign-out")
@signed_in
async def sign_out(request: web.Request, session: Session) -> web.Response:
    form = await posted_form(request, session.csrf_token)
    if isinstance(form, web.Response):
        return form
    await sessions.sign_out(request.app[DB], session.id, now=utcnow())
    log.info("console_signed_out", extra={"staff_id": session.member.id})
    response = web.HTTPSeeOther("/console/sign-in")
    response.del_cookie(COOKIE, path="/console")
    raise response


# Lists


def _status_badge(row: Mapping[str, Any]) -> str:
    return _badge(row["status"], row["kind"])


@cache
def _badge(status: str, kind: str) -> str:
    """A status's badge, written once per status and kind (a list page shows hundreds)."""
    cls = "bad" if status in ("delivery_failed", "failed") else ""
    return f'<span class="badge {cls}">{esc(status_text(status, kind))}</span>'


def _due(row: Mapping[str, Any]) -> str:
    return _due_text(row.get("due_by"), row.get("overdue_at"))


def _due_text(due_by: date | None, overdue_at: datetime | None) -> str:
    if due_by is None:
        return "—"
    # A date's or a time's digits (as isoformat and beijing write them) have nothing to escape: list rows skip it.
    if overdue_at is not None:
        return f'{_day(due_by)} <span class="badge bad">已超期</span>'
    return _day(due_by)


@lru_cache(maxsize=1024)
def _day(day: date) -> str:
    """A deadline as text: a list page writes hundreds, of a few days (``isoformat`` goes through sprintf)."""
    return day.isoformat()


@cache
def head(*columns: str) -> str:
    """A table's header row (fixed wording: written once per set of columns)."""
    return "<tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>"


def shipment_table(rows: list[dict[str, Any]], *, table_id: str, select_form: str = "", window: bool = True) -> str:
    """A list of shipments; ``window=False`` leaves out the window's column, for rows shown under its heading."""
    if not rows:
        return f'<p class="muted" id="{esc(table_id)}">暂无</p>'
    columns = head(
        *(("选择",) if select_form else ()),
        *("办件编号", "事项"),
        *(("窗口",) if window else ()),
        *("状态", "运单号", "跟踪码", "创建时间", "交寄时间", "送达期限"),
    )
    body = "".join(_list_row(select_form, window, *[r[f] for f in LIST_ROW_FIELDS]) for r in rows)
    return f'<table id="{esc(table_id)}">{columns}{body}</table>'


# What a list row shows: its HTML is a function of these values alone, so it is written once and kept (rows are
# shown again and again while they do not change, and writing one costs as much as the rest of its page's work).
LIST_ROW_FIELDS = (
    "id", "case_no", "item_name", "window", "status", "kind", "waybill_no", "tracking_code", "created_at",
    "handed_at", "due_by", "overdue_at",
)  # fmt: skip


@lru_cache(maxsize=8192)
def _list_row(
    select_form: str,
    window: bool,
    shipment_id: str,
    case_no: str,
    item_name: str,
    window_name: str,
    status: str,
    kind: str,
    waybill_no: str | None,
    tracking_code: str,
    created_at: datetime,
    handed_at: datetime | None,
    due_by: date | None,
    overdue_at: datetime | None,
) -> str:
    # Only the free text is escaped: shipment ids and tracking codes are ours (letters and digits), dates and
    # times digits, badges and the form's name fixed.
    case = esc(case_no)
    select = ""
    if select_form:
        select = (
            f'<td><input type="checkbox" name="id" value="{shipment_id}" form="{select_form}" aria-label="选择 {case}">'
            "</td>"
            if waybill_no
            else '<td><span class="badge warn" title="尚无运单号，暂不能打印面单">未出单</span></td>'
        )
    window_cell = f"<td>{esc(window_name)}</td>" if window else ""
    return (
        f'<tr>{select}<td><a href="/console/shipments/{shipment_id}">{case}</a></td><td>{esc(item_name)}</td>'
        f"{window_cell}<td>{_badge(status, kind)}</td><td>{esc(waybill_no) if waybill_no else '—'}</td>"
        f"<td>{tracking_code}</td><td>{beijing(created_at)}</td><td>{beijing(handed_at)}</td>"
        f"<td>{_due_text(due_by, overdue_at)}</td></tr>"
    )


def _department_tabs(session: Session, chosen: str, path: str) -> str:
    links = "".join(
        f'<a href="{path}?department={esc(d)}" class="{"on" if d == chosen else ""}">{esc(d)}</a>'
        for d in session.member.departments
    )
    return f'<div class="tabs" id="departments">{links}</div>'


@routes.get("/console/today")
async def today_page(request: web.Request) -> web.Response:
    async with request.app[DB].read() as conn:
        session = await session_on(request, conn)
        department = request.query.get("department") or session.member.departments[0]
        if not session.member.serves(department):
            return not_found(session)
        day = beijing_today(utcnow())
        windows = await queries.today_on(conn, department, day)
    totals = {s: sum(len(w.sections[s]) for w in windows.values()) for s in queries.TODAY_SECTIONS}
    counts = "".join(
        f'<div class="count" id="count-{s}">{esc(SECTION_TEXT[s])}<b>{totals[s]}</b></div>'
        for s in queries.TODAY_SECTIONS
    )
    parts = []
    for n, (window, wd) in enumerate(windows.items()):
        summary = " · ".join(f"{SECTION_TEXT[s]} {len(wd.sections[s])}" for s in queries.TODAY_SECTIONS)
        tables = "".join(
            f"<h2>{esc(SECTION_TEXT[s])}（{len(wd.sections[s])}）</h2>"
            + shipment_table(
                wd.sections[s],
                table_id=f"w{n}-{s}",
                select_form="print-form" if s == "waiting" else "",
                window=False,  # the window's heading is above
            )
            for s in queries.TODAY_SECTIONS
            if wd.sections[s]
        )
        parts.append(
            f'<section class="card window"><h2>{esc(window)}</h2><p class="muted">{esc(summary)}</p>{tables}</section>'
        )
    body = (
        f'<h1>今日 · {esc(department)} <small class="muted">{esc(day.isoformat())}（北京时间）</small></h1>'
        + _department_tabs(session, department, "/console/today")
        + f'<div class="counts">{counts}</div>'
        + (_template("print_form.html").substitute(csrf=esc(session.csrf_token)) if totals["waiting"] else "")
        + ("".join(parts) or '<p class="card muted" id="nothing-today">今天还没有邮件。</p>')
    )
    return render("今日", body, session=session)


@routes.get("/console/find")
async def find_page(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:100]
    async with request.app[DB].read() as conn:
        session = await session_on(request, conn)
        rows, personal = await queries.find_on(conn, session.member.departments, query, annotated=False)
        if len(rows) > 1:  # a single hit goes straight to its own page: its list row is never shown
            await queries.annotate(conn, rows)
        if personal and rows:
            # Matching by a phone or name tells the clerk whose parcels these are: a view of personal data.
            await queries.record_views(
                request.app[DB],
                session.member.id,
                [r["id"] for r in rows],
                address=_address(request),
                view="find",
                now=utcnow(),
                conn=conn,
            )
    if len(rows) == 1 and query:
        raise web.HTTPSeeOther(f"/console/shipments/{rows[0]['id']}")
    result = shipment_table(rows, table_id="find-results") if query else ""
    hint = f"找到 {len(rows)} 件" if query else "输入办件编号、运单号、跟踪码，或申请人的手机号码、姓名。"
    body = f'<h1>查找</h1><p class="muted" id="find-summary">{esc(hint)}</p>{result}'
    return render("查找", body, session=session, query=query)


# One shipment


def _party(party: Mapping[str, Any] | None) -> str:
    if not party:
        return '<p class="muted">—</p>'
    address = "".join(str(party.get(k) or "") for k in ("province", "city", "district", "address"))
    postcode = f"（{esc(party['postcode'])}）" if party.get("postcode") else ""
    return (
        f'<dl class="facts"><dt>姓名/单位</dt><dd>{esc(party.get("name"))}</dd>'
        f'<dt>电话</dt><dd class="phone">{esc(party.get("phone"))}</dd>'
        f"<dt>地址</dt><dd>{esc(address)}{postcode}</dd></dl>"
    )


def _handed_to_post(events: list[dict[str, Any]]) -> datetime | None:
    times = [e["occurred_at"] for e in events if e["status"] == "picked_up" and not e["refused"]]
    return min(times) if times else None


def _issue17_facts(row: Mapping[str, Any]) -> str:
    """HOOK (issue 17 merge): attempts, the last failure and the proof of service, when those columns exist."""
    out = []
    if row.get("attempts"):
        out.append(f"<dt>投递次数</dt><dd>{esc(row['attempts'])}</dd>")
    failure = row.get("last_failure")
    if isinstance(failure, Mapping) and failure.get("reason"):
        out.append(f"<dt>最近失败原因</dt><dd>{esc(failure['reason'])}</dd>")
    return "".join(out)


def _source(e: Mapping[str, Any]) -> str:
    text = SOURCE_TEXT.get(e["source"], e["source"])
    return f"{text}（{e['staff_name']}）" if e.get("staff_name") else text


def _complaint_rows(complaints: list[dict[str, Any]], csrf: str, shipment_id: str) -> str:
    rows = []
    for c in complaints:
        if c["answered_at"] is not None:
            reply = (
                f'<div class="answer" id="answer-{esc(c["id"])}">{esc(c["answer"])}<br><span class="muted">'
                f"{esc(c['answered_by_name'] or c['answered_by'])} 答复于 {esc(beijing(c['answered_at']))}</span></div>"
            )
        else:
            reply = (
                f'<form method="post" action="/console/shipments/{esc(shipment_id)}/complaints/{esc(c["id"])}/answer"'
                f' class="action" id="answer-form-{esc(c["id"])}"><input type="hidden" name="csrf" value="{esc(csrf)}">'
                '<textarea name="answer" maxlength="1000" required aria-label="答复"'
                ' placeholder="答复会显示在公开的邮件跟踪页面上，请勿写入申请人的姓名、电话、证件号码。"></textarea>'
                '<button type="submit">发送答复</button></form>'
            )
        rows.append(
            f"<tr><td>{esc(beijing(c['created_at']))}</td><td>{esc(CATEGORIES.get(c['category'], c['category']))}</td>"
            f"<td>{esc(c['text'])}</td><td>{reply}</td></tr>"
        )
    return "".join(rows)


RESEND_FIELDS = (
    ("name", "姓名", 50),
    ("phone", "电话", 20),
    ("province", "省", 20),
    ("city", "市", 30),
    ("district", "区县", 30),
    ("address", "详细地址", 200),
    ("postcode", "邮编", 6),
)


def _resend_form(base: str, hidden: str, party: Mapping[str, Any], *, intake: bool = False) -> str:
    """Resend to a corrected address, filled in with the address the parcel came back from; an intake whose
    door pickup failed is resent with a new pickup window (and the applicant's address, correctable)."""
    inputs = "".join(
        f'<label for="resend-{k}">{esc(text)}</label>'
        f'<input id="resend-{k}" name="{k}" maxlength="{size}" value="{esc(party.get(k) or "")}">'
        for k, text, size in RESEND_FIELDS
    )
    window = ""
    if intake:
        window = (
            '<p class="muted">新的上门取件时间（北京时间）：</p>'
            '<label for="resend-pickup_start">开始</label><input type="datetime-local" id="resend-pickup_start"'
            ' name="pickup_start"><label for="resend-pickup_end">结束</label>'
            '<input type="datetime-local" id="resend-pickup_end" name="pickup_end">'
        )
    if intake:
        what = "或重新预约上门取件（可更正申请人地址；生成新邮件，重新下单）"
    else:
        what = "或更正收件信息后重新寄递（生成新邮件，重新下单）"
    return (
        f'<form method="post" action="{base}/resend" class="action" id="resend-form">{hidden}'
        f'<p class="muted">{what}：</p>{inputs}{window}'
        f'<button type="submit">{"重新预约取件" if intake else "重新寄递"}</button></form>'
    )


def _label_link(row: Mapping[str, Any]) -> str:
    """The label to print, once the carrier order gave a waybill (logistics/console/create.py serves it)."""
    if not row.get("waybill_no"):
        return ""
    return f' <a href="/console/shipments/{esc(row["id"])}/label" target="_blank" id="label-print">打印面单</a>'


def _action_forms(row: Mapping[str, Any], csrf: str) -> str:
    """The actions that apply to the shipment now (the server checks again when one is posted)."""
    base = f"/console/shipments/{esc(row['id'])}"
    hidden = f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
    forms = []
    if row["status"] in CANCELLABLE:
        forms.append(
            f'<form method="post" action="{base}/cancel" class="action" id="cancel-form">{hidden}'
            '<label for="cancel-reason">取消原因</label>'
            '<input id="cancel-reason" name="reason" maxlength="200" placeholder="申请人改为窗口领取">'
            '<button type="submit" class="danger">取消寄递</button></form>'
        )
    if row["status"] == "awaiting_applicant":
        forms.append(
            f'<form method="post" action="{base}/applicant-link" class="action" id="link-form">{hidden}'
            '<p class="muted">新链接生成后，此前发给申请人的链接立即失效。</p>'
            '<button type="submit">重新生成申请人链接</button></form>'
        )
    undecided = not row.get("resent_as") and not row.get("resolution") and row["purged_at"] is None
    if undecided and (row["status"] in RETURN_STATUSES or pickup_failed(dict(row))):
        forms.append(
            f'<form method="post" action="{base}/resolve" class="action" id="resolve-form">{hidden}'
            '<label for="resolve-action">处理方式</label><select id="resolve-action" name="action">'
            '<option value="window_pickup">申请人到窗口领取</option>'
            '<option value="closed">结案（如已公告送达）</option>'
            '</select><label for="resolve-note">备注（仅内部可见）</label>'
            '<input id="resolve-note" name="note" maxlength="500">'
            '<button type="submit">登记处理</button></form>'
        )
        intake = row["kind"] == "intake"
        forms.append(_resend_form(base, hidden, row["sender" if intake else "recipient"] or {}, intake=intake))
    if not forms:
        return ""
    return f'<section class="card" id="actions"><h2>操作</h2>{"".join(forms)}</section>'


async def shipment_response(
    request: web.Request, session: Session, *, notice: str = "", status: int = 200
) -> web.Response:
    """The shipment page (a view of personal data: recorded), with a notice after an action."""
    db = request.app[DB]
    async with db.read() as conn:
        row = await queries.shipment_on(conn, session.member.departments, request.match_info["id"])
        if row is None:
            return not_found(session)
        await queries.record_views(
            db, session.member.id, [row["id"]], address=_address(request), view="shipment", now=utcnow(), conn=conn
        )
    kind = row["kind"]
    events = "".join(
        f"<tr><td>{esc(beijing(e['occurred_at']))}</td><td>{esc(status_text(e['status'], kind))}"
        + (' <span class="badge warn">未采用</span>' if e["refused"] else "")
        + f"</td><td>{esc(_source(e))}</td><td>{esc(e['carrier_text'] or '')}</td>"
        f"<td>{esc(e['location'] or '')}</td></tr>"
        for e in row["events"]
    )
    complaints = _complaint_rows(row["complaints"], session.csrf_token, row["id"])
    complaint_table = (
        f'<table id="complaints">{head("时间", "类别", "内容", "答复")}{complaints}</table>'
        if complaints
        else '<p class="muted">没有投诉。</p>'
    )
    cases = "".join(f"<li>{esc(c['case_no'])} {esc(c['item_name'])}</li>" for c in row["cases"])
    purged = '<div class="notice warn">个人信息已按保存期限删除。</div>' if row["purged_at"] else ""
    handed = _handed_to_post(row["events"])
    rating = ratings.render(*await ratings.card_data(request.app[DB], row["id"]), session.csrf_token, utcnow())
    body = f"""
<h1>{esc(row["cases"][0]["case_no"] if row["cases"] else row["tracking_code"])} {_status_badge(row)}</h1>
{notice}{purged}
<div class="grid2">
<section class="card"><h2>邮件</h2><dl class="facts" id="facts">
<dt>类型</dt><dd>{esc(KIND_TEXT.get(kind, kind))}</dd>
<dt>部门 / 窗口</dt><dd>{esc(row["department"])} · {esc(row["window"])}</dd>
<dt>跟踪码</dt><dd>{esc(row["tracking_code"])}</dd>
<dt>运单号</dt><dd>{esc(row["waybill_no"] or "尚未生成")}</dd>
<dt>创建时间</dt><dd>{esc(beijing(row["created_at"]))}</dd>
<dt>交寄时间</dt><dd id="handed-to-post">{esc(beijing(handed))}</dd>
<dt>送达期限</dt><dd id="due-by">{_due(row)}</dd>
<dt>面单打印</dt><dd>{esc(beijing(row["label_printed_at"]) if row["label_printed_at"] else "从未打印")}
{_label_link(row)}</dd>
{_issue17_facts(row)}
<dt>办件</dt><dd><ul>{cases}</ul></dd>
</dl></section>
<section class="card"><h2>寄件人</h2><div id="sender">{_party(row["sender"])}</div>
<h2>收件人</h2><div id="recipient">{_party(row["recipient"])}</div></section>
</div>
{_action_forms(row, session.csrf_token)}
<section class="card"><h2>寄递记录</h2>
<table id="events">{head("时间", "状态", "来源", "说明", "地点")}{events}</table></section>
<section class="card"><h2>投诉（{len(row["complaints"])}）</h2>{complaint_table}</section>
{rating}
"""
    return render("邮件详情", body, session=session, status=status)


@routes.get("/console/shipments/{id}")
@signed_in
async def shipment_page(request: web.Request, session: Session) -> web.Response:
    return await shipment_response(request, session)


# Exceptions


@routes.get("/console/exceptions")
async def exceptions_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limits = exceptions.Limits(
        settings.console_awaiting_days, settings.console_pickup_hours, settings.console_deadline_warn_days
    )
    async with request.app[DB].read() as conn:
        session = await session_on(request, conn)
        chases = await exceptions.chase_on(conn, session.member.departments, utcnow(), limits)
    rows = "".join(
        _chase_row(c.rule, c.why, tuple(c.also), *[c.shipment[f] for f in CHASE_ROW_FIELDS]) for c in chases
    )
    table = (
        f'<table id="chases">{head("办件", "状态", "原因", "下一步", "交寄时间", "送达期限")}{rows}</table>'
        if rows
        else '<p class="card muted" id="nothing-to-chase">没有需要跟进的邮件。</p>'
    )
    body = f'<h1>待跟进（{len(chases)}）</h1><p class="muted">最紧急的在最前。</p>{table}'
    return render("待跟进", body, session=session)


# What a queue row shows besides its rule and reasons: like a list row, written once per content and kept.
CHASE_ROW_FIELDS = ("id", "case_no", "department", "window", "status", "kind", "handed_at", "due_by", "overdue_at")


@lru_cache(maxsize=4096)
def _chase_row(
    rule: exceptions.Rule,
    why: str,
    also: tuple[str, ...],
    shipment_id: str,
    case_no: str,
    department: str,
    window: str,
    status: str,
    kind: str,
    handed_at: datetime | None,
    due_by: date | None,
    overdue_at: datetime | None,
) -> str:
    urgency = "urgent" if rule.urgency <= 30 else "soon" if rule.urgency <= 50 else ""
    others = "".join(f'<br><span class="muted">另：{esc(a)}</span>' for a in also)
    return (
        f'<tr class="{urgency}"><td><a href="/console/shipments/{shipment_id}">{esc(case_no)}</a><br>'
        f'<span class="muted">{esc(department)} · {esc(window)}</span></td><td>{_badge(status, kind)}</td>'
        f"<td>{esc(why)}{others}</td><td>{esc(rule.next_step)}</td><td>{beijing(handed_at)}</td>"
        f"<td>{_due_text(due_by, overdue_at)}</td></tr>"
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
