"""``/console/new``: a clerk creates a shipment by hand for an applicant at the window, and prints its label.

The form is only a way of writing a create's JSON body: it is validated by the API's own model
(``ShipmentCreate`` with the app's create context: the hall's side from the halls file, the departments'
deadlines) and created by the API's own path (``shipments.create_new``: the group commit, the carrier order, the
Idempotency-Key). Each error is shown beside its field in Chinese (wording in create_errors.csv), with the form
filled in again as it was typed. Every form carries a nonce; the create's Idempotency-Key is derived from it and
the session, so a double-submitted form answers with the one shipment it made.

Hand-made shipments belong to one built-in client, ``cli_console`` (窗口手工录入), made on first use. It has no
webhook URL and no API key: nobody is told by webhook and nobody reads them through the API; the console is
where they are followed. The 取件验证码 is shown in the answer to the create only (a replay of the same form
included); the shipment page never shows it. The label page waits for the carrier order with a small script of
our own (``/static/console-create.js``), then offers the PDF.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from labels import DEFAULT_DPI, DEFAULT_SIZE
from logistics.accounts.clients import new_webhook_secret
from logistics.api.appkeys import CREATE_CONTEXT, DB, REQUEST_ID, SETTINGS, SHIPMENT_ID
from logistics.api.errors import field_errors
from logistics.api.schemas import ShipmentCreate
from logistics.api.shipments import CreateRequest, create_new
from logistics.console import queries
from logistics.console.sessions import Session
from logistics.console.views import _address, message, not_found, posted_form, render, signed_in
from logistics.domain.tables import clients, shipment_events, shipments, utcnow
from logistics.domain.wording import KIND_TEXT, status_text
from logistics.label_store import get_rendered
from logistics.pages.views import esc
from logistics.storage.db import Database

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()

CONSOLE_CLIENT_ID = "cli_console"
CONSOLE_CLIENT_NAME = "窗口手工录入"
ERRORS_FILE = Path(__file__).with_name("create_errors.csv")
CASE_ROWS = 3  # rows shown at first; 再加一行 adds one more (up to the API's 50)
MAX_CASES = 50
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
PARTY = ("name", "phone", "province", "city", "district", "address", "postcode")
LABELS = {
    "kind": "寄递类型",
    "department": "办件部门",
    "window": "受理窗口",
    "name": "申请人姓名/单位",
    "phone": "联系电话",
    "province": "省",
    "city": "市",
    "district": "区县",
    "address": "详细地址",
    "postcode": "邮编",
    "pickup_start": "开始时间",
    "pickup_end": "结束时间",
    "decision_date": "审批决定日期",
    "due_by": "送达期限",
    "verification_code": "取件验证码",
}
KINDS = {"delivery": "送达结果（寄给申请人）", "intake": "上门取件（申请材料寄到大厅）"}
GENERAL = "_form"  # errors that belong to no one field


# The built-in client


async def console_client(db: Database) -> str:
    """The id of the built-in client that owns hand-made shipments, inserted if absent (two first creates at
    once both succeed: the loser's insert does nothing)."""
    async with db.read() as conn:
        found = (await conn.execute(select(clients.c.id).where(clients.c.id == CONSOLE_CLIENT_ID))).first()
    if found is not None:
        return CONSOLE_CLIENT_ID
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.write() as conn:
        await conn.execute(
            insert(clients)
            .values(
                id=CONSOLE_CLIENT_ID,
                name=CONSOLE_CLIENT_NAME,
                webhook_url=None,
                webhook_secret=new_webhook_secret(),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        # Only the name can stand in the way: another client named 窗口手工录入 (an operator's choice, not ours).
        made = (await conn.execute(select(clients.c.id).where(clients.c.id == CONSOLE_CLIENT_ID))).first()
    if made is None:
        raise RuntimeError(f"the console's client cannot be made: another client is named {CONSOLE_CLIENT_NAME}")
    log.info("console_client_ready", extra={"client_id": CONSOLE_CLIENT_ID})
    return CONSOLE_CLIENT_ID


# From the form to a create's body, and the create's errors back to the form


@dataclass(frozen=True, slots=True)
class Filled:
    """What the clerk typed, as the create's body, and where each of its cases came from on the form."""

    payload: dict[str, Any]
    case_rows: list[int]  # payload["cases"][n] is the form's row case_rows[n]
    rows: int  # case rows to show again


def applicant_side(kind: str) -> str:
    return "sender" if kind == "intake" else "recipient"


def hall_side(kind: str) -> str:
    return "recipient" if kind == "intake" else "sender"


def case_row_count(form: Mapping[str, str]) -> int:
    """How many case rows the form had (at least CASE_ROWS, at most MAX_CASES)."""
    try:
        rows = int(form.get("rows", CASE_ROWS))
    except ValueError:
        rows = CASE_ROWS
    return max(CASE_ROWS, min(rows, MAX_CASES))


def pickup_window(form: Mapping[str, str], prefix: str = "pickup_") -> dict[str, str] | None:
    """A pickup window from two ``datetime-local`` fields (Beijing time, as the API assumes without an offset);
    a half-filled one is passed on for the API's rules to name the missing end."""
    start, end = form.get(f"{prefix}start", "").strip(), form.get(f"{prefix}end", "").strip()
    if not start and not end:
        return None
    return {k: v for k, v in (("start", start), ("end", end)) if v}


def party(form: Mapping[str, str], prefix: str = "") -> dict[str, str]:
    """The applicant's side: fields left empty are left out, so the API says 必填 rather than 太短."""
    return {k: v for k in PARTY if (v := form.get(prefix + k, "").strip())}


def filled(form: Mapping[str, str]) -> Filled:
    """The create's body the form describes. Fields of the other kind (hidden on the page) are not sent."""
    kind = form.get("kind", "")
    rows = case_row_count(form)
    cases, case_rows = [], []
    for n in range(rows):
        case = {k: v for k in ("case_no", "item_name") if (v := form.get(f"{k}_{n}", "").strip())}
        if case:
            cases.append(case)
            case_rows.append(n)
    payload: dict[str, Any] = {
        "kind": kind,
        "cases": cases,
        "department": form.get("department", ""),
        "window": form.get("window", "").strip(),
        applicant_side(kind): party(form),
    }
    if kind == "intake":
        window = pickup_window(form)
        if window is not None:
            payload["pickup_window"] = window
    else:
        payload["verification_code"] = form.get("verification_code") == "on"
        for name in ("decision_date", "due_by"):
            if value := form.get(name, "").strip():
                payload[name] = value
    return Filled(payload, case_rows, rows)


@cache
def _wording() -> list[tuple[re.Pattern[str], str]]:
    with ERRORS_FILE.open(encoding="utf-8", newline="") as f:
        return [(re.compile(r["pattern"]), r["text"]) for r in csv.DictReader(f)]


def chinese(message_text: str) -> str:
    """The API's English message of a field error, as the clerk reads it (create_errors.csv)."""
    for pattern, text in _wording():
        found = pattern.fullmatch(message_text)
        if found is not None:
            return text.format(message_text, *found.groups())  # {1} is the first group
    return "填写有误，请核对"


def form_field(path: str, kind: str, case_rows: list[int]) -> str:
    """The form field an API error's field path (``recipient.phone``, ``cases.0.case_no``…) belongs to."""
    parts = path.split(".")
    head = parts[0]
    if head == applicant_side(kind) and len(parts) > 1 and parts[1] in PARTY:
        return parts[1]
    if head == hall_side(kind):
        return "department"  # the hall's side comes from the halls file, by department
    if head == "cases":
        n = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
        row = case_rows[n] if n < len(case_rows) else 0
        return f"{parts[2] if len(parts) > 2 else 'case_no'}_{row}"
    if head == "pickup_window":
        return "pickup_end" if parts[-1] == "end" else "pickup_start"
    if head in LABELS:
        return head
    return GENERAL


def form_errors(exc: ValidationError, kind: str, case_rows: list[int]) -> dict[str, str]:
    """Form field → the first Chinese message for it."""
    errors: dict[str, str] = {}
    for e in field_errors(exc):
        errors.setdefault(form_field(e["field"], kind, case_rows), chinese(e["message"]))
    return errors


def idempotency_key(session: Session, nonce: str) -> str:
    """The create's Idempotency-Key: the form's nonce, bound to the session that was given the form."""
    return "console-" + hashlib.sha256(f"{session.id}:{nonce}".encode()).hexdigest()


# The form page


def _error(errors: Mapping[str, str], name: str) -> str:
    text = errors.get(name)
    return f'<span class="field-error" id="error-{name}">{esc(text)}</span>' if text else ""


def _bad(errors: Mapping[str, str], name: str) -> str:
    return " bad" if name in errors else ""


def _input(name: str, values: Mapping[str, str], errors: Mapping[str, str], *, kind: str = "text", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    invalid = ' aria-invalid="true"' if name in errors else ""
    return (
        f'<div class="field{_bad(errors, name)}"><label for="f-{name}">{esc(LABELS[name])}</label>'
        f'<input type="{kind}" id="f-{name}" name="{name}" value="{esc(values.get(name, ""))}"{extra}{invalid}>'
        f"{_error(errors, name)}</div>"
    )


def _case_cell(name: str, label: str, size: int, values: Mapping[str, str], errors: Mapping[str, str]) -> str:
    invalid = ' aria-invalid="true"' if name in errors else ""
    return (
        f'<td><input id="f-{name}" name="{name}" maxlength="{size}" aria-label="{label}"'
        f' value="{esc(values.get(name, ""))}"{invalid}>{_error(errors, name)}</td>'
    )


def _halls_list(request: web.Request, session: Session) -> str:
    halls = (request.app[CREATE_CONTEXT] or {}).get("halls") or {}
    items = []
    for d in session.member.departments:
        hall = halls.get(d)
        where = (
            f"{hall.name} · {hall.province}{hall.city}{hall.district}{hall.address} · {hall.phone}"
            if hall is not None
            else "未配置大厅地址（请联系管理员），暂不能手工录入"
        )
        items.append(f"<dt>{esc(d)}</dt><dd>{esc(where)}</dd>")
    return f'<dl class="facts" id="halls">{"".join(items)}</dl>'


def form_page(
    request: web.Request,
    session: Session,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, str] | None = None,
    rows: int = CASE_ROWS,
    notice: str = "",
    status: int = 200,
) -> web.Response:
    errors = errors or {}
    kind = values.get("kind") or "delivery"
    kinds = "".join(
        f'<label class="choice"><input type="radio" name="kind" id="kind-{k}" value="{k}"'
        f"{' checked' if k == kind else ''}> {esc(text)}</label>"
        for k, text in KINDS.items()
    )
    chosen = values.get("department") or session.member.departments[0]
    departments = "".join(
        f'<option value="{esc(d)}"{" selected" if d == chosen else ""}>{esc(d)}</option>'
        for d in session.member.departments
    )
    cases = "".join(
        f"<tr><td>{n + 1}</td>{_case_cell(f'case_no_{n}', '办件编号', 64, values, errors)}"
        f"{_case_cell(f'item_name_{n}', '事项名称', 200, values, errors)}</tr>"
        for n in range(rows)
    )
    more = (
        '<button type="submit" name="more" value="1" class="secondary" id="more-cases" formnovalidate>再加一行</button>'
        if rows < MAX_CASES
        else ""
    )
    summary = ""
    if errors:
        general = f"<br>{esc(errors[GENERAL])}" if GENERAL in errors else ""
        summary = (
            f'<div class="notice error" id="form-errors">有 {len(errors)} 处需要更正，见标红的栏目。{general}</div>'
        )
    checked = " checked" if values.get("verification_code") == "on" else ""
    body = f"""
<h1>手工录入寄递</h1>
{notice}{summary}
<form method="post" action="/console/new" id="create-form" class="create" novalidate>
<input type="hidden" name="csrf" value="{esc(session.csrf_token)}">
<input type="hidden" name="nonce" value="{esc(values.get("nonce", ""))}">
<input type="hidden" name="rows" value="{rows}">
<div class="grid2">
<section class="card"><h2>办件</h2>
<div class="field{_bad(errors, "kind")}"><span class="label">寄递类型</span>{kinds}{_error(errors, "kind")}</div>
<div class="field{_bad(errors, "department")}"><label for="f-department">办件部门</label>
<select id="f-department" name="department">{departments}</select>{_error(errors, "department")}</div>
{_input("window", values, errors, maxlength=100, placeholder="如：综合受理3号窗口")}
<table class="cases" id="cases"><tr><th>#</th><th>办件编号</th><th>事项名称</th></tr>{cases}</table>
{more}
<h2>大厅一方（按部门自动填入）</h2>{_halls_list(request, session)}
</section>
<section class="card"><h2>申请人</h2>
{_input("name", values, errors, maxlength=50, placeholder="如：张晓明", autocomplete="off")}
{_input("phone", values, errors, maxlength=20, placeholder="如：13812345678", inputmode="tel", autocomplete="off")}
<div class="row3">
{_input("province", values, errors, maxlength=20, placeholder="如：河南省")}
{_input("city", values, errors, maxlength=30, placeholder="如：郑州市")}
{_input("district", values, errors, maxlength=30, placeholder="如：上街区")}
</div>
{_input("address", values, errors, maxlength=200, placeholder="如：济源路12号")}
{_input("postcode", values, errors, maxlength=6, placeholder="如：450041", inputmode="numeric")}
<div class="intake-only"><h2>上门取件时间（北京时间）</h2>
{_input("pickup_start", values, errors, kind="datetime-local")}
{_input("pickup_end", values, errors, kind="datetime-local")}</div>
<div class="delivery-only"><h2>送达期限（选填，二选一）</h2>
{_input("decision_date", values, errors, kind="date")}
{_input("due_by", values, errors, kind="date")}
<div class="field{_bad(errors, "verification_code")}"><label class="choice">
<input type="checkbox" name="verification_code" id="f-verification_code"{checked}>
需要取件验证码（签收时申请人报码）</label>
{_error(errors, "verification_code")}</div></div>
</section>
</div>
<button type="submit" id="create-submit" class="primary">创建寄递</button>
</form>
"""
    return render("手工录入", body, session=session, status=status)


@routes.get("/console/new")
@signed_in
async def new_form(request: web.Request, session: Session) -> web.Response:
    return form_page(request, session, {"kind": "delivery", "nonce": secrets.token_urlsafe(24)})


@routes.post("/console/new")
@signed_in
async def create_by_hand(request: web.Request, session: Session) -> web.Response:
    form = await posted_form(request, session.csrf_token)
    if isinstance(form, web.Response):
        return form
    values = {k: v[:300] for k, v in form.items() if k != "csrf"}
    done = filled(values)
    if form.get("more"):  # one more case row, nothing submitted yet
        return form_page(request, session, values, rows=min(done.rows + 1, MAX_CASES))
    nonce = values.get("nonce", "")
    if not NONCE.fullmatch(nonce):
        values["nonce"] = secrets.token_urlsafe(24)
        return form_page(
            request, session, values, rows=done.rows, errors={GENERAL: "表单已过期，请核对后再提交一次。"}, status=422
        )
    kind = str(done.payload["kind"])
    errors: dict[str, str] = {}
    if not session.member.serves(str(done.payload["department"])):
        errors["department"] = "只能为本人所属的部门录入"
    context = {**(request.app[CREATE_CONTEXT] or {}), "now": utcnow()}
    try:
        spec = ShipmentCreate.model_validate(done.payload, context=context)
    except ValidationError as exc:
        errors = {**form_errors(exc, kind, done.case_rows), **errors}
    if errors:
        log.info("console_create_refused", extra={"staff_id": session.member.id, "fields": sorted(errors)})
        return form_page(request, session, values, errors=errors, rows=done.rows, status=422)
    db = request.app[DB]
    client_id = await console_client(db)
    create = CreateRequest(client_id, idempotency_key(session, nonce), done.payload, spec)
    made = await create_new(request.app, create, request_id=request[REQUEST_ID])
    if made.existing is None:
        request[SHIPMENT_ID] = made.row.id
        await _by_clerk(db, made.row.id, session.member.id)
        log.info("console_created", extra={"staff_id": session.member.id, "shipment_id": made.row.id})
        return await created_page(request, session, orjson.loads(made.body), status=201)
    assert made.claim is not None
    if made.existing.request_hash != made.claim.request_hash:
        # The same form posted again after changes (back button): its shipment exists; a new one needs a new form.
        values["nonce"] = secrets.token_urlsafe(24)
        link = f'<a href="/console/shipments/{esc(made.existing.shipment_id)}" id="made-before">查看已创建的邮件</a>'
        text = "这张表单已经提交过，邮件已创建；如要再寄一件，请核对后再提交一次（将创建新的邮件）。"
        notice = f'<div class="notice warn" id="already-made">{esc(text)} {link}</div>'
        return form_page(request, session, values, rows=done.rows, notice=notice, status=409)
    log.info("console_create_replayed", extra={"staff_id": session.member.id, "shipment_id": made.existing.shipment_id})
    return await created_page(request, session, orjson.loads(made.existing.response_body), status=200)


async def _by_clerk(db: Database, shipment_id: str, staff_id: str) -> None:
    """Name the clerk on the shipment's creation event (the group commit writes it as any create's)."""
    async with db.write() as conn:
        await conn.execute(
            update(shipment_events)
            .where(shipment_events.c.shipment_id == shipment_id, shipment_events.c.sequence == 1)
            .values(source="console", staff_id=staff_id)
        )


# After the create: the code once, and the label


async def created_page(
    request: web.Request, session: Session, answer: Mapping[str, Any], *, status: int
) -> web.Response:
    """The answer to the create: the only page that shows the 取件验证码."""
    sid = str(answer["id"])
    await queries.record_views(
        request.app[DB], session.member.id, [sid], address=_address(request), view="create", now=utcnow()
    )
    code = ""
    if answer.get("verification_code"):
        code = (
            '<section class="card code" id="code-card"><h2>取件验证码</h2>'
            f'<p class="big" id="verification-code">{esc(answer["verification_code"])}</p>'
            '<p class="muted">请现在告诉申请人（签收时向投递员报出此码）。'
            "此码只显示这一次，之后不能再查看。</p></section>"
        )
    recipient = answer.get(applicant_side(str(answer["kind"]))) or {}
    cases = "".join(f"<li>{esc(c['case_no'])} {esc(c['item_name'])}</li>" for c in answer["cases"])
    label = f"/console/shipments/{esc(sid)}/label"
    now = status_text(str(answer["status"]), str(answer["kind"]))
    body = f"""
<h1>已创建寄递 <span class="badge" id="created-status">{esc(now)}</span></h1>
<div class="notice ok" id="created">已创建，已通知EMS下单。跟踪码 {esc(answer["tracking_code"])}。</div>
{code}
<div class="grid2">
<section class="card"><h2>邮件</h2><dl class="facts">
<dt>类型</dt><dd>{esc(KIND_TEXT.get(str(answer["kind"]), answer["kind"]))}</dd>
<dt>部门 / 窗口</dt><dd>{esc(answer["department"])} · {esc(answer["window"])}</dd>
<dt>跟踪码</dt><dd id="tracking-code">{esc(answer["tracking_code"])}</dd>
<dt>申请人</dt><dd>{esc(recipient.get("name"))} <span class="phone">{esc(recipient.get("phone"))}</span></dd>
<dt>送达期限</dt><dd>{esc(answer.get("due_by") or "—")}</dd>
<dt>办件</dt><dd><ul>{cases}</ul></dd></dl>
<p><a href="/console/shipments/{esc(sid)}" id="shipment-link">邮件详情</a> ·
<a href="/console/new" id="create-another">再录入一件</a></p></section>
<section class="card" id="label" data-status="{label}-status" data-label="{label}"><h2>面单</h2>
<p id="label-waiting">正在向EMS下单，运单号生成后即可打印面单……
<a href="/console/shipments/{esc(sid)}" id="label-refresh">刷新</a></p>
<p id="label-failed" class="notice error" hidden></p>
<p id="label-ready" hidden>运单号 <b id="label-waybill"></b>
<a href="{label}" target="_blank" rel="noopener" class="button" id="label-print">打印面单</a></p>
</section>
</div>
<script src="/static/console-create.js" defer></script>
"""
    return render("已创建", body, session=session, status=status)


async def own_shipment(db: Database, session: Session, shipment_id: str) -> dict[str, Any] | None:
    """The shipment row, when it is one of the clerk's departments' (else None, as for an unknown id)."""
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(shipments).where(
                    shipments.c.id == shipment_id[:40], shipments.c.department.in_(list(session.member.departments))
                )
            )
        ).first()
    return dict(found._mapping) if found is not None else None


@routes.get("/console/shipments/{id}/label-status")
@signed_in
async def label_status(request: web.Request, session: Session) -> web.Response:
    """For the created page's script: whether the label can be printed yet (no personal data)."""
    row = await own_shipment(request.app[DB], session, request.match_info["id"])
    if row is None:
        return web.json_response({"found": False}, status=404, headers={"Cache-Control": "no-store"})
    body = {
        "found": True,
        "ready": bool(row["waybill_no"]),
        "waybill_no": row["waybill_no"],
        "failed": row["status"] in ("failed", "cancelled"),
        "status": status_text(row["status"], row["kind"]),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@routes.get("/console/shipments/{id}/label")
@signed_in
async def label_pdf(request: web.Request, session: Session) -> web.StreamResponse:
    """The shipment's label as a PDF to print (the label API's store and cache), for the clerk's departments."""
    db = request.app[DB]
    row = await own_shipment(db, session, request.match_info["id"])
    if row is None:
        return not_found(session)
    if not row["waybill_no"]:
        return message(session, "面单尚未生成", "EMS下单完成、生成运单号后才能打印面单，请稍后刷新。", status=409)
    label = await get_rendered(db, request.app[SETTINGS], row, "pdf", DEFAULT_SIZE, DEFAULT_DPI)
    await queries.record_views(
        db, session.member.id, [row["id"]], address=_address(request), view="label", now=utcnow()
    )
    log.info("console_label", extra={"staff_id": session.member.id, "shipment_id": row["id"]})
    return web.Response(
        body=label.body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="label-{row["waybill_no"]}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
