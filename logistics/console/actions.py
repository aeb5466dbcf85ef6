"""Actions on a shipment from the console: cancel before pickup, re-issue the applicant's link, the hall's
decision on a parcel that came back (collect at the window, close, or resend: a delivery to a corrected
address, an intake whose door pickup failed with a new pickup window), the answer to a complaint, and the
close of a bad rating's follow-up (好差评) with the action taken.

Each is a POST form with the session's CSRF token, reaches only the clerk's departments (another department's
shipment is the same 404 as an unknown one), and runs the same code as the API (shipments.cancel,
applicant.reissue_locked, returns.record_resolution and resend_locked, complaints.answer, ratings.close_locked)
under the shipment's row lock. What the clerk did is written in the shipment's history, or on the complaint or
follow-up, with their staff id.
The answer is the shipment page again with a Chinese notice: 200 when done, 409 when the action does not apply
(any more), 422 when the form is incomplete.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select

from logistics.accounts import applicant
from logistics.api import complaints, ratings
from logistics.api.appkeys import CREATE_CONTEXT, DB, REQUEST_ID, SETTINGS, SIGNAL
from logistics.api.errors import Problem, field_errors
from logistics.api.returns import record_resolution, resend_locked
from logistics.api.schemas import BEIJING, ResendIn, ResolveIn
from logistics.api.shipments import cancel
from logistics.console.create import PARTY as RESEND_PARTY
from logistics.console.create import pickup_window
from logistics.console.sessions import Session
from logistics.console.views import not_found, posted_form, shipment_response, signed_in
from logistics.domain.events import lock_shipment
from logistics.domain.tables import follow_ups, utcnow
from logistics.domain.wording import status_text
from logistics.pages.views import esc

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()

# The API's 409s, as the clerk reads them.
REFUSALS = {
    "not-cancellable": "这件邮件已揽收或已结束（当前：{status}），不能取消。",
    "already-resent": "这件邮件已经重新寄递，不能再登记处理。",
    "already-resolved": "这件邮件已经登记过处理结果。",
    "purged": "这件邮件的个人信息已按保存期限删除，请新建寄递。",
    "not-returned": "只有正在退回、已退回，或上门取件失败的邮件才能登记处理（当前：{status}）。",
}
Action = Callable[[Any, dict[str, Any], dict[str, str]], Awaitable[str]]


class Refused(Exception):
    """The action does not apply to the shipment as it is now; the message says why, in Chinese."""

    def __init__(self, text: str, status: int = 409) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


def notice(text: str, *, ok: bool, extra: str = "") -> str:
    cls = "ok" if ok else "error"
    return f'<div class="notice {cls}" id="action-{cls}">{esc(text)}{extra}</div>'


async def act(request: web.Request, session: Session, name: str, action: Action) -> web.Response:
    """Run ``action(conn, locked_row, form)`` in one transaction on one of the clerk's shipments; its result is the
    notice's text. Refused (and the API's 409 Problems) become the page with the reason."""
    form = await posted_form(request, session.csrf_token)
    if isinstance(form, web.Response):
        return form
    status = 200
    try:
        async with request.app[DB].write() as conn:
            row = await lock_shipment(conn, request.match_info["id"][:40])
            if row is None or not session.member.serves(row["department"]):
                return not_found(session)
            try:
                done = await action(conn, row, form)
            except Problem as exc:
                words = REFUSALS.get(exc.slug, "这项操作不适用于这件邮件。")
                raise Refused(words.format(status=status_text(row["status"], row["kind"]))) from None
    except Refused as exc:
        log.info("console_action_refused", extra={"staff_id": session.member.id, "action": name})
        text, status = notice(exc.text, ok=False), exc.status
    else:
        request.app[SIGNAL].poke()  # a webhook or a carrier task may be waiting
        log.info(
            "console_action",
            extra={"staff_id": session.member.id, "action": name, "shipment_id": request.match_info["id"]},
        )
        text = done
    return await shipment_response(request, session, notice=text, status=status)


@routes.post("/console/shipments/{id}/cancel")
@signed_in
async def cancel_shipment(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        if row["status"] == "cancelled":
            raise Refused("这件邮件已经取消。")
        reason = complaints.clean(form.get("reason", ""))[:200] or "窗口取消"
        await cancel(
            conn, row, reason=reason, source="console", request_id=request[REQUEST_ID], staff_id=session.member.id
        )
        return notice("已取消寄递；已通知EMS撤销揽收订单。", ok=True)

    return await act(request, session, "cancel", action)


@routes.post("/console/shipments/{id}/applicant-link")
@signed_in
async def reissue_link(request: web.Request, session: Session) -> web.Response:
    settings = request.app[SETTINGS]

    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        try:
            token, expires_at = await applicant.reissue_locked(
                conn, row, settings.applicant_link_days, staff_id=session.member.id
            )
        except ValueError:
            raise Refused(
                f"申请人已选择或邮件已不在等待选择状态（当前：{status_text(row['status'], row['kind'])}），"
                "无需重新发放链接。"
            ) from None
        link = applicant.link_url(settings.base_url, token)
        # Shown this once (only its hash is kept), on a no-store page.
        extra = (
            f'<br><input readonly id="applicant-link" value="{esc(link)}" aria-label="申请人链接">'
            f'<br><span class="muted">有效期至 {esc(expires_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))}'
            "（北京时间）。此链接只显示这一次，请现在交给申请人；此前的链接已失效。</span>"
        )
        return notice("已重新生成申请人链接。", ok=True, extra=extra)

    return await act(request, session, "reissue_link", action)


@routes.post("/console/shipments/{id}/resolve")
@signed_in
async def resolve(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        try:
            decision = ResolveIn.model_validate({"action": form.get("action"), "note": form.get("note") or None})
        except ValidationError:
            raise Refused("请选择处理方式；备注最多500字。", status=422) from None
        await record_resolution(conn, row, decision.action, decision.note, staff_id=session.member.id)
        what = "申请人到窗口领取" if decision.action == "window_pickup" else "结案"
        return notice(f"已登记处理：{what}。", ok=True)

    return await act(request, session, "resolve", action)


PARTY_FIELDS = {
    "name": "姓名",
    "phone": "电话",
    "province": "省",
    "city": "市",
    "district": "区县",
    "address": "详细地址",
    "postcode": "邮编",
    "pickup_window": "上门取件时间",
    "start": "上门取件时间",
    "end": "上门取件时间",
}


def _fields_wrong(paths: list[str]) -> str:
    named = [PARTY_FIELDS[part] for path in paths for part in path.split(".") if part in PARTY_FIELDS]
    return "、".join(dict.fromkeys(named)) or "收件人信息"


@routes.post("/console/shipments/{id}/resend")
@signed_in
async def resend(request: web.Request, session: Session) -> web.Response:
    """A returned delivery sent again to the corrected address; an intake whose door pickup failed, with a new
    pickup window (and the applicant's address, correctable) — as the API's POST …/resend."""
    context = {**(request.app[CREATE_CONTEXT] or {}), "now": utcnow()}

    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        intake = row["kind"] == "intake"
        party = {k: v for k in RESEND_PARTY if (v := form.get(k, "").strip())}
        change: dict[str, Any] = {"sender": party} if intake else {"recipient": party}
        window = pickup_window(form)
        if intake and window is not None:
            change["pickup_window"] = window
        try:
            body = await resend_locked(
                conn,
                row,
                ResendIn.model_validate(change),
                context=context,
                settings=request.app[SETTINGS],
                request_id=request[REQUEST_ID],
                staff_id=session.member.id,
            )
        except ValidationError as exc:
            wrong = _fields_wrong([e["field"] for e in field_errors(exc)])
            raise Refused(f"请检查{'申请人的' if intake else '收件人的'}{wrong}。", status=422) from None
        except Problem as exc:
            if exc.slug != "validation":
                raise
            wrong = _fields_wrong([e["field"] for e in exc.errors or []])
            raise Refused(f"请填写{wrong}。", status=422) from None
        link = f'<br><a href="/console/shipments/{esc(body["id"])}" id="resent-as">查看新邮件</a>'
        if intake:
            return notice("已按新的取件时间重新预约上门取件，已通知EMS。", ok=True, extra=link)
        return notice("已按更正后的收件信息重新寄递，已通知EMS揽收。", ok=True, extra=link)

    return await act(request, session, "resend", action)


@routes.post("/console/shipments/{id}/complaints/{complaint}/answer")
@signed_in
async def answer_complaint(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        text = complaints.clean(form.get("answer", ""))
        problem = complaints.check_answer(text)
        if problem is not None:
            raise Refused(problem, status=422)
        try:
            await complaints.answer(conn, row, request.match_info["complaint"], text, staff_id=session.member.id)
        except LookupError:
            raise Refused("没有找到这条投诉。", status=404) from None
        except complaints.AlreadyAnswered:
            raise Refused("这条投诉已经答复过了。") from None
        return notice("答复已发送：已显示在邮件跟踪页面，并已通知办件系统。", ok=True)

    return await act(request, session, "answer_complaint", action)


@routes.post("/console/shipments/{id}/follow-up/close")
@signed_in
async def close_follow_up(request: web.Request, session: Session) -> web.Response:
    async def action(conn: Any, row: dict[str, Any], form: dict[str, str]) -> str:
        text = ratings.clean_action(form.get("action", "")[: ratings.ACTION_MAX * 4])
        problem = ratings.check_action(text)
        if problem is not None:
            raise Refused(problem, status=422)
        found = (await conn.execute(select(follow_ups).where(follow_ups.c.shipment_id == row["id"]))).first()
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
