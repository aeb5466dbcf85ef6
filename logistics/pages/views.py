"""The people's pages: public tracking ``/t/{code}`` (+ complaints), the applicant's choice ``/a/{token}`` and the
staff scanning page ``/staff``. Plain HTML from small templates in logistics/pages, no build step.

Everything a page shows is masked (labels.privacy through logistics.domain.wording); the 取件验证码 is never read
into a page. Pages send a strict Content-Security-Policy (scripts only from /static) and no Referer, since
the applicant's URL is a credential.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from yarl import URL

from logistics.accounts import applicant
from logistics.accounts.staff import staff_cache
from logistics.api import applicant_links, complaints, ratings, scans
from logistics.api.appkeys import DB, RATE_LIMITER, REDIS, REQUEST_ID, SETTINGS, SIGNAL, STAFF_CACHE
from logistics.api.errors import Problem
from logistics.api.present import iso
from logistics.api.schemas import BEIJING, PartyForm, PickupWindow
from logistics.api.shipments import json_response
from logistics.domain.tables import complaints as complaints_table
from logistics.domain.tables import ratings as ratings_table
from logistics.domain.tables import shipment_cases, shipment_events, shipments, utcnow
from logistics.domain.wording import (
    KIND_TEXT,
    SOURCE_TEXT,
    applicant_side,
    hall_party,
    masked_party,
    public_detail,
    public_masked,
    status_text,
)
from logistics.redis.ratelimit import RateLimiter, client_ip
from logistics.storage.background import stop_task

log = logging.getLogger("logistics.pages")
routes = web.RouteTableDef()
PAGES = Path(__file__).resolve().parent.parent / "pages"
# A stand-in id for unknown codes: the same queries run for a code that exists and for one that does not.
NO_SHIPMENT = "shp_00000000000000000000000000"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # Never to another site (the applicant's URL is a credential), but to our own: a browser then sends the
    # page's origin with its form posts, which the cross-origin check reads.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


@cache
def template(name: str) -> Template:
    return Template((PAGES / "templates" / name).read_text(encoding="utf-8"))


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fill(name: str, **values: str) -> str:
    """Fill a template with values that are already HTML (escape data with ``esc`` before passing it)."""
    return template(name).substitute(values)


def page(
    title: str, body: str, *, status: int = 200, subtitle: str = "", scripts: tuple[str, ...] = ()
) -> web.Response:
    text = fill(
        "base.html",
        title=esc(title),
        subtitle=esc(subtitle),
        body=body,
        scripts="".join(f'<script src="/static/{esc(s)}" defer></script>' for s in scripts),
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


def message_page(heading: str, text: str, *, status: int, extra: str = "", subtitle: str = "") -> web.Response:
    return page(heading, fill("message.html", heading=esc(heading), text=esc(text), extra=extra), status=status)


# The people's pages, as opposed to the API and the carriers' endpoints: a browser gets HTML from these.
PAGE_PREFIXES = ("/t/", "/a/", "/staff")
UNAVAILABLE_TEXT = "暂时无法服务，请稍后再试"


def is_page_request(request: web.Request) -> bool:
    """Is this a person's browser asking for one of the pages (so an error is a page, not problem+json)?"""
    return request.path.startswith(PAGE_PREFIXES) and not wants_json(request)


def unavailable_page(headers: Mapping[str, str]) -> web.Response:
    """What a person sees while the database is down: a plain notice and the wait, never a stack trace."""
    response = message_page(UNAVAILABLE_TEXT, "系统正在恢复，数据不会丢失。请过几分钟后刷新本页面。", status=503)
    response.headers.update(headers)
    return response


SAME_SITE_FETCHES = frozenset({"same-origin", "none"})  # "none": the person typed the URL or used a bookmark


def origin_of(url: str) -> str:
    parsed = URL(url)
    return str(parsed.origin()) if parsed.absolute else ""


def cross_origin(request: web.Request) -> bool:
    """A browser posting one of the people's forms from another site's page (a forged complaint, a forged
    address choice). A browser that sends Sec-Fetch-Site is believed: a page cannot set it. Without it, Origin
    must be our own; ``null`` is a sandboxed frame or a data: page (these pages' same-origin referrer policy
    makes a browser send their own origin). A client that sends neither is not a browser acting for someone
    else."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() not in SAME_SITE_FETCHES
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    own = {origin_of(request.app[SETTINGS].base_url), f"{request.scheme}://{request.host}"}
    return origin not in own


def refuse_cross_origin(request: web.Request) -> web.Response | None:
    if not cross_origin(request):
        return None
    log.info("cross_origin_form_refused", extra={"route": request.match_info.route.resource.canonical})
    if wants_json(request) or request.content_type == "application/json":
        raise Problem(
            403, "cross-origin", "Cross-origin form refused", "This form accepts posts only from its own page."
        )
    return message_page("无法提交", "此表单只能在本站页面上提交，请打开本站页面后重新填写。", status=403)


_BEIJING_OFFSET = timedelta(hours=8)  # China keeps UTC+8 all year
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))


def beijing(value: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM`` in Beijing time. A list page writes hundreds: a stored (UTC) time is moved by the
    fixed offset and its fields looked up as text, a third of what ``astimezone`` and ``isoformat`` cost."""
    if value is None:
        return "—"
    t = value + _BEIJING_OFFSET if value.tzinfo is UTC else value.astimezone(BEIJING)
    two = _TWO_DIGITS
    return f"{t.year}-{two[t.month]}-{two[t.day]} {two[t.hour]}:{two[t.minute]}"


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


async def limited(request: web.Request, name: str, limit: int, window: float) -> web.Response | None:
    """None when the request may go on; otherwise the 429 answer (HTML or problem+json)."""
    settings = request.app[SETTINGS]
    verdict = await request.app[RATE_LIMITER].hit(
        name, client_ip(request, settings.trust_forwarded_for), limit, window
    )
    if verdict.allowed:
        return None
    headers = {"Retry-After": str(verdict.retry_after)}
    if wants_json(request):
        return Problem(
            429, "too-many-requests", "Too many requests", f"Retry after {verdict.retry_after} s.", headers=headers
        ).response(request)
    response = message_page("访问过于频繁", f"请 {verdict.retry_after} 秒后再试。", status=429)
    response.headers.update(headers)
    return response


# Public tracking


async def _tracking_data(request: web.Request, code: str) -> tuple[dict[str, Any] | None, list[Any], list[Any]]:
    """One indexed lookup by code, then the events and cases queries — run for unknown codes too (against an id
    that matches nothing), so a miss costs what a hit costs and timing tells nothing about which codes exist."""
    async with request.app[DB].read() as conn:
        found = (await conn.execute(select(shipments).where(shipments.c.tracking_code == code[:32]))).first()
        row = dict(found._mapping) if found is not None else None
        sid = row["id"] if row is not None else NO_SHIPMENT
        events = list(
            await conn.execute(
                select(
                    shipment_events.c.sequence,
                    shipment_events.c.status,
                    shipment_events.c.occurred_at,
                    shipment_events.c.source,
                    shipment_events.c.carrier_text,
                    shipment_events.c.location,
                )
                # An event the forward-only rule refused stays in the record and the client's API, never here.
                .where(shipment_events.c.shipment_id == sid, shipment_events.c.refused.is_(False))
                .order_by(shipment_events.c.occurred_at.desc(), shipment_events.c.sequence.desc())
            )
        )
        cases = list(
            await conn.execute(
                select(shipment_cases.c.case_no, shipment_cases.c.item_name)
                .where(shipment_cases.c.shipment_id == sid)
                .order_by(shipment_cases.c.position)
            )
        )
        # The hall's answers to complaints (never the complaints themselves: the applicant's typed text).
        answers = list(
            await conn.execute(
                select(complaints_table.c.answer, complaints_table.c.answered_at)
                .where(complaints_table.c.shipment_id == sid, complaints_table.c.answered_at.is_not(None))
                .order_by(complaints_table.c.answered_at)
            )
        )
        # The level given, never the comment (the applicant's typed text).
        level = (await conn.execute(select(ratings_table.c.level).where(ratings_table.c.shipment_id == sid))).scalar()
    if row is not None:
        row["answers"] = answers
        row["rating_level"] = level
    return row, events, cases


def window_text(start: datetime, end: datetime) -> str:
    """A booked pickup window as the applicant reads it, in Beijing time: ``12月5日 09:00–12:00``."""
    opens, closes = start.astimezone(BEIJING), end.astimezone(BEIJING)
    until = f"{closes:%H:%M}" if closes.date() == opens.date() else f"{closes.month}月{closes.day}日 {closes:%H:%M}"
    return f"{opens.month}月{opens.day}日 {opens:%H:%M}–{until}"


def public_view(row: Mapping[str, Any], events: list[Any], cases: list[Any]) -> dict[str, Any]:
    """The tracking answer: masked parties, plain-Chinese timeline, newest first. No 取件验证码, no full phone."""
    kind = row["kind"]
    applicant = row[applicant_side(kind)]
    window = None
    if row["pickup_start"] is not None and row["pickup_end"] is not None:
        window = {"start": iso(row["pickup_start"]), "end": iso(row["pickup_end"])}
    return {
        "tracking_code": row["tracking_code"],
        "kind": kind,
        "kind_text": KIND_TEXT.get(kind, kind),
        "status": row["status"],
        "status_text": status_text(row["status"], kind),
        "carrier": row["carrier"],
        "waybill_no": row["waybill_no"],
        "department": row["department"],
        "items": [c.item_name for c in cases],
        "sender": hall_party(row["sender"]) if kind == "delivery" else masked_party(row["sender"]),
        "recipient": hall_party(row["recipient"]) if kind == "intake" else masked_party(row["recipient"]),
        "updated_at": row["updated_at"].isoformat().replace("+00:00", "Z"),
        "pickup_window": window,  # the door pickup the applicant booked (intakes), else None
        "events": [
            {
                "status": e.status,
                "text": status_text(e.status, kind),
                "detail": public_detail(e.carrier_text, e.source, applicant),
                "occurred_at": e.occurred_at.isoformat().replace("+00:00", "Z"),
                "source": SOURCE_TEXT.get(e.source, e.source),
                "location": public_masked(e.location, applicant) if e.location else None,
            }
            for e in events
        ],
        # The hall's own text, public by design (the answer is addressed to the applicant, who may not be the
        # one reading): still masked like a carrier's text, in case it names the applicant or writes a number.
        "answers": [
            {"answered_at": iso(a.answered_at), "text": public_masked(a.answer, applicant)}
            for a in row.get("answers", ())
        ],
        # 好差评: the level given (never the comment), and whether a rating may be given now.
        "rating": _rating_view(row.get("rating_level")),
        "can_rate": row["status"] in ratings.RATABLE and row.get("rating_level") is None,
    }


def _rating_view(level: int | None) -> dict[str, Any] | None:
    return None if level is None else {"level": level, "level_text": ratings.LEVELS[level]}


def _party_text(party: Mapping[str, str] | None) -> str:
    if not party:
        return "—"
    # A phone number is never broken across lines (a half number on each line reads as two numbers).
    phone = f'<span class="phone">{esc(party["phone"])}</span>' if party["phone"] else ""
    return f"{esc(party['name'])}  {phone}<br>{esc(party['address'])}"


def _window_fact(window: Mapping[str, str] | None) -> str:
    if window is None:
        return ""
    start, end = (datetime.fromisoformat(window[k].replace("Z", "+00:00")) for k in ("start", "end"))
    return f'<dt id="pickup-window-label">上门取件</dt><dd id="pickup-window">{esc(window_text(start, end))}</dd>'


def _timeline(view: Mapping[str, Any]) -> str:
    items = []
    for e in view["events"]:
        when = beijing(datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")))
        extra = "".join(
            f"<span>{esc(part)}</span>" for part in (e["detail"], e["location"]) if part and part != e["text"]
        )
        items.append(f"<li><time>{esc(when)}</time><b>{esc(e['text'])}</b>{extra}</li>")
    return "".join(items) or "<li><b>暂无记录</b></li>"


def _answers(view: Mapping[str, Any]) -> str:
    if not view["answers"]:
        return ""
    items = "".join(
        f"<li><time>{esc(beijing(datetime.fromisoformat(a['answered_at'].replace('Z', '+00:00'))))}</time>"
        f"<p>{esc(a['text'])}</p></li>"
        for a in view["answers"]
    )
    return f'<h3>办件部门的答复</h3><ul class="answers" id="answers">{items}</ul>'


def _rating_section(view: Mapping[str, Any], notice: str, level: int | None, comment: str) -> str:
    """The 好差评 card: the form while the shipment may be rated, the level given once it was; nothing before
    it is delivered."""
    if view["rating"] is not None:
        given = f'<p class="rated" id="rating-given">您已评价：{esc(view["rating"]["level_text"])}</p>'
        return f'<section class="card" id="rating"><h2>服务评价</h2>{notice}{given}</section>'
    if not view["can_rate"]:
        return f'<section class="card" id="rating"><h2>服务评价</h2>{notice}</section>' if notice else ""
    choices = "".join(
        f'<label><input type="radio" name="level" value="{n}" id="level-{n}"{" checked" if n == level else ""}>'
        f'{esc(text)}<span class="stars" aria-hidden="true">{"★" * n}{"☆" * (5 - n)}</span></label>'
        for n, text in ratings.LEVELS.items()
    )
    return f"""<section class="card" id="rating">
  <h2>服务评价</h2>
  {notice}
  <form method="post" action="/t/{esc(view["tracking_code"])}/rating" id="rating-form">
    <fieldset class="levels"><legend>您对这次寄递服务满意吗？</legend>{choices}</fieldset>
    <label for="rating-comment">意见或建议（选填）</label>
    <textarea id="rating-comment" name="comment" maxlength="{ratings.COMMENT_MAX}"
      placeholder="最多{ratings.COMMENT_MAX}字。电话号码、身份证号会被自动隐去。">{esc(comment)}</textarea>
    <button type="submit">提交评价</button>
  </form>
  <p class="muted">每件邮件可评价一次。评价内容只转交办件部门，不会公开。</p>
</section>"""


def tracking_page(
    view: Mapping[str, Any],
    *,
    notice: str = "",
    category: str = "",
    text: str = "",
    status: int = 200,
    rating_notice: str = "",
    level: int | None = None,
    comment: str = "",
) -> web.Response:
    options = "".join(
        f'<option value="{esc(k)}"{" selected" if k == category else ""}>{esc(v)}</option>'
        for k, v in complaints.CATEGORIES.items()
    )
    body = fill(
        "track.html",
        kind_text=esc(view["kind_text"]),
        status_text=esc(view["status_text"]),
        updated=esc(beijing(datetime.fromisoformat(view["updated_at"].replace("Z", "+00:00")))),
        tracking_code=esc(view["tracking_code"]),
        waybill=esc(view["waybill_no"] or "尚未生成"),
        department=esc(view["department"]),
        items=esc("、".join(view["items"]) or "—"),
        sender=_party_text(view["sender"]),
        recipient=_party_text(view["recipient"]),
        pickup_window=_window_fact(view["pickup_window"]),
        timeline=_timeline(view),
        answers=_answers(view),
        rating=_rating_section(view, rating_notice, level, comment),
        complaint_notice=notice,
        categories=options,
        complaint_text=esc(text),
    )
    return page(f"邮件跟踪 {view['tracking_code']}", body, status=status, subtitle="邮件跟踪")


def _not_found(request: web.Request) -> web.Response:
    if wants_json(request):
        return Problem(404, "not-found", "Not found", "No such tracking code.").response(request)
    return message_page("没有找到这件邮件", "请核对面单上的跟踪码或二维码后再试。", status=404)


@routes.get("/t/{code}")
async def track(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    blocked = await limited(request, "track", settings.tracking_rate_per_minute, 60)
    if blocked is not None:
        return blocked
    code = request.match_info["code"].strip().upper()
    row, events, cases = await _tracking_data(request, code)
    if row is None:
        return _not_found(request)
    view = public_view(row, events, cases)
    if wants_json(request):
        return json_response(view, headers={"Cache-Control": "no-store"})
    notice = ""
    if request.query.get("complaint") == "sent":
        notice = '<div class="notice ok" id="complaint-sent">投诉已收到，办件部门会尽快处理。</div>'
    rating_notice = ""
    if request.query.get("rating") == "sent" and view["rating"] is not None:
        rating_notice = '<div class="notice ok" id="rating-sent">感谢您的评价，已转交办件部门。</div>'
    return tracking_page(view, notice=notice, rating_notice=rating_notice)


@routes.post("/t/{code}/complaints")
async def complain(request: web.Request) -> web.Response:
    refused = refuse_cross_origin(request)
    if refused is not None:
        return refused
    settings = request.app[SETTINGS]
    blocked = await limited(request, "complaint", settings.complaint_rate_per_hour, 3600)
    if blocked is not None:
        return blocked
    code = request.match_info["code"].strip().upper()
    as_json = request.content_type == "application/json"
    if as_json:
        try:
            data = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise Problem(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.") from None
        if not isinstance(data, dict):
            data = {}
    else:
        data = dict(await request.post())
    category, text = str(data.get("category") or ""), complaints.clean(str(data.get("text") or ""))
    error = complaints.check(category, text)
    row, events, cases = await _tracking_data(request, code)
    if row is None:
        return _not_found(request)
    if error is not None:
        if as_json:
            raise Problem(
                422, "validation", "Invalid request", error[1], errors=[{"field": error[0], "message": error[1]}]
            )
        notice = f'<div class="notice error" id="complaint-error">{esc(error[1])}</div>'
        return tracking_page(public_view(row, events, cases), notice=notice, category=category, text=text, status=422)
    complaint_id = await complaints.store(request.app[DB], row["id"], category, text)
    request.app[SIGNAL].poke()
    if as_json:
        return json_response({"id": complaint_id, "status": "received"}, status=201)
    raise web.HTTPSeeOther(f"/t/{row['tracking_code']}?complaint=sent#complaint")


async def _posted(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The posted fields (a form, or a JSON object) and whether JSON was posted."""
    if request.content_type != "application/json":
        return dict(await request.post()), False
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Problem(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.") from None
    return (data if isinstance(data, dict) else {}), True


@routes.post("/t/{code}/rating")
async def rate(request: web.Request) -> web.Response:
    """好差评 from the tracking page: who may rate is who may complain (whoever holds the tracking code, from
    this site, within the per-IP limit); once, and only once the shipment was delivered."""
    refused = refuse_cross_origin(request)
    if refused is not None:
        return refused
    blocked = await limited(request, "rating", request.app[SETTINGS].complaint_rate_per_hour, 3600)
    if blocked is not None:
        return blocked
    code = request.match_info["code"].strip().upper()
    data, as_json = await _posted(request)
    level = ratings.parse_level(data.get("level"))
    comment = ratings.clean_comment(str(data.get("comment") or "")[: ratings.COMMENT_MAX * 4])
    error = ratings.check(level, comment)
    row, events, cases = await _tracking_data(request, code)
    if row is None:
        return _not_found(request)

    def refuse(status: int, slug: str, message: str) -> web.Response:
        if as_json:
            raise Problem(status, slug, "Rating refused", message, errors=[{"field": "level", "message": message}])
        notice = f'<div class="notice error" id="rating-error">{esc(message)}</div>'
        view = public_view(row, events, cases)
        return tracking_page(view, rating_notice=notice, level=level, comment=comment, status=status)

    if error is not None:
        return refuse(422, "validation", error[1])
    try:
        done = await ratings.rate(request.app[DB], row["id"], level or 0, comment)
    except ratings.NotRatable:
        return refuse(409, "not-delivered", "邮件送达后才能评价，请在签收后再来。")
    except ratings.AlreadyRated as exc:
        row["rating_level"] = exc.level
        given = ratings.LEVELS[exc.level]
        return refuse(409, "already-rated", f"这件邮件已经评价过了（{given}），每件邮件只能评价一次。")
    request.app[SIGNAL].poke()
    if as_json:
        answer = {"id": done.id, "level": done.level, "follow_up_opened": done.follow_up_id is not None}
        return json_response(answer, status=201)
    raise web.HTTPSeeOther(f"/t/{row['tracking_code']}?rating=sent#rating")


# Applicant choice

FIELD_LABELS = {
    "name": "姓名",
    "phone": "手机号码",
    "province": "省",
    "city": "市",
    "district": "区/县",
    "address": "详细地址",
    "postcode": "邮编",
    "slot": "上门取件时间",
}
PARTY_FIELDS = ("name", "phone", "province", "city", "district", "address", "postcode")
SLOTS = ((9, 12), (14, 17))  # EMS door pickup: morning and afternoon, Beijing time


def pickup_slots(now: datetime, days: int = 7) -> list[tuple[datetime, datetime]]:
    """Door-pickup slots from two hours from now on, for a week: what the hall offers the applicant."""
    first = now.astimezone(BEIJING)
    out = []
    for d in range(days + 1):
        day = (first + timedelta(days=d)).date()
        for start_h, end_h in SLOTS:
            start = datetime(day.year, day.month, day.day, start_h, tzinfo=BEIJING)
            if start >= now + timedelta(hours=2):
                out.append((start.astimezone(UTC), datetime(day.year, day.month, day.day, end_h, tzinfo=BEIJING)))
    return out[: days * len(SLOTS)]


def _slot_value(start: datetime, end: datetime) -> str:
    return f"{start.astimezone(BEIJING).isoformat()}/{end.astimezone(BEIJING).isoformat()}"


def _slot_label(start: datetime, end: datetime) -> str:
    s, e = start.astimezone(BEIJING), end.astimezone(BEIJING)
    weekday = "一二三四五六日"[s.weekday()]
    return f"{s.month}月{s.day}日（周{weekday}）{s:%H:%M}–{e:%H:%M}"


def _chinese_errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        field = str(err["loc"][0]) if err["loc"] else "name"
        label = FIELD_LABELS.get(field, field)
        if field == "phone" and err["type"] not in ("missing", "string_too_short"):
            message = "请填写正确的手机号码（11位），或带区号的固定电话，如 0371-68123456"
        elif field == "postcode":
            message = "邮编应为6位数字"
        elif err["type"] == "string_too_long":
            message = f"{label}太长了"
        else:
            message = f"请填写{label}"
        out.setdefault(field, message)
    return out


def applicant_page(
    row: Mapping[str, Any],
    cases: list[Any],
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    intake = row["kind"] == "intake"
    hall = row["recipient"] if intake else row["sender"]
    prefill = {k: "" for k in PARTY_FIELDS}
    # Only the region is suggested (the hall's own, public): the applicant types their personal data themselves.
    for k in ("province", "city", "district"):
        prefill[k] = str((hall or {}).get(k) or "")
    prefill |= dict(values or {})
    errors = dict(errors or {})

    def err(field: str) -> str:
        return f'<div class="field-error" id="error-{field}">{esc(errors[field])}</div>' if field in errors else ""

    slot_field = ""
    if intake:
        chosen = (values or {}).get("slot", "")
        options = "".join(
            f'<option value="{esc(_slot_value(s, e))}"{" selected" if _slot_value(s, e) == chosen else ""}>'
            f"{esc(_slot_label(s, e))}</option>"
            for s, e in pickup_slots(utcnow())
        )
        slot_field = (
            f'<label for="slot">上门取件时间</label><select id="slot" name="slot">{options}</select>{err("slot")}'
        )
    notice = ""
    if errors:
        notice = '<div class="notice error" id="form-error">请按提示修改后再提交。</div>'
    body = fill(
        "applicant.html",
        kind_text=esc(KIND_TEXT.get(row["kind"], row["kind"])),
        heading=esc("请选择申请材料的递交方式" if intake else "请选择办理结果的领取方式"),
        department=esc(row["department"]),
        window=esc(row["window"]),
        items=esc("、".join(c.item_name for c in cases) or "—"),
        expires=esc(beijing(row["applicant_expires_at"])),
        notice=notice,
        mail_title=esc("邮政上门取件" if intake else "邮寄到家"),
        mail_hint=esc(
            "邮政快递员在您选定的时间上门收取申请材料，送到政务服务中心。"
            if intake
            else "办理结果由中国邮政EMS寄到您填写的地址，签收时可能需要出示取件验证码。"
        ),
        mail_button=esc("确认预约上门取件" if intake else "确认邮寄"),
        window_title=esc("到窗口递交" if intake else "到窗口领取"),
        window_hint=esc(f"请携带身份证件到{row['department']}{row['window']}办理。"),
        window_button=esc("我到窗口递交" if intake else "我到窗口领取"),
        slot_field=slot_field,
        **{f"v_{k}": esc(prefill.get(k, "")) for k in PARTY_FIELDS},
        **{f"e_{k}": err(k) for k in PARTY_FIELDS},
    )
    return page("选择寄递方式", body, status=status, subtitle="申请人选择")


def _link_gone(state: str) -> web.Response:
    if state == "unknown":
        return message_page("链接无效", "请核对短信中的链接是否完整，或联系办件窗口。", status=404)
    if state == "expired":
        return message_page("链接已过期", "此链接已超过有效期。请联系办件窗口重新发送，或直接到窗口办理。", status=410)
    if state == "used":
        return message_page("链接已使用", "您已经做过选择，此链接不能再次使用。如需更改，请联系办件窗口。", status=410)
    return message_page(
        "此办件已处理", "此办件的寄递方式已由办件窗口处理，无需再选择。如有疑问请联系办件窗口。", status=410
    )


async def _link(request: web.Request) -> tuple[str, dict[str, Any] | None, list[Any]]:
    token = request.match_info["token"]
    async with request.app[DB].read() as conn:
        row = await applicant.find(conn, token[:100])
        cases = list(
            await conn.execute(
                select(shipment_cases.c.item_name)
                .where(shipment_cases.c.shipment_id == (row["id"] if row else NO_SHIPMENT))
                .order_by(shipment_cases.c.position)
            )
        )
    return token, row, cases


async def _expired(request: web.Request, row: dict[str, Any]) -> None:
    # Seeing an expired link is as good a moment as the periodic check to tell the client about it.
    from logistics.domain.events import lock_shipment

    async with request.app[DB].write() as conn:
        locked = await lock_shipment(conn, row["id"])
        if locked is not None:
            await applicant.notify_expired(conn, locked, utcnow())
    request.app[SIGNAL].poke()


@routes.get("/a/{token}")
async def applicant_form(request: web.Request) -> web.Response:
    _, row, cases = await _link(request)
    state = applicant.state_of(row, utcnow())
    if state != "open" or row is None:
        if state == "expired" and row is not None:
            await _expired(request, row)
        return _link_gone(state)
    return applicant_page(row, cases)


@routes.post("/a/{token}")
async def applicant_choose(request: web.Request) -> web.Response:
    refused = refuse_cross_origin(request)
    if refused is not None:
        return refused
    token, row, cases = await _link(request)
    state = applicant.state_of(row, utcnow())
    if state != "open" or row is None:
        if state == "expired" and row is not None:
            await _expired(request, row)
        return _link_gone(state)
    form = {k: str(v) for k, v in (await request.post()).items()}
    if form.get("choice") == "window":
        outcome = await applicant.choose_window(request.app[DB], token)
    else:
        values = {k: form.get(k, "").strip() for k in (*PARTY_FIELDS, "slot")}
        errors: dict[str, str] = {}
        party = window = None
        try:
            party = PartyForm.model_validate({k: values[k] for k in PARTY_FIELDS if values[k] or k != "postcode"})
        except ValidationError as exc:
            errors |= _chinese_errors(exc)
        if row["kind"] == "intake":
            start, _, end = values["slot"].partition("/")
            try:
                window = PickupWindow.model_validate({"start": start, "end": end})
                if window.start <= utcnow():
                    errors["slot"] = "请选择一个还没过去的上门取件时间"
            except ValidationError:
                errors["slot"] = "请选择上门取件时间"
        if errors or party is None:
            return applicant_page(row, cases, values=values, errors=errors, status=422)
        outcome = await applicant.choose_mail(
            request.app[DB], token, party, window, request_id=request.get(REQUEST_ID)
        )
        request.app[SIGNAL].poke()
    if outcome.state != "open" or outcome.shipment is None:
        return _link_gone(outcome.state)
    done = outcome.shipment
    link = f'<a class="button" href="/t/{esc(done["tracking_code"])}" id="tracking-link">查看寄递进度</a>'
    if done["status"] == "declined":
        verb = "递交材料" if done["kind"] == "intake" else "领取办理结果"
        return message_page(
            "已选择到窗口办理", f"请携带身份证件到{done['department']}{done['window']}{verb}。", status=200
        )
    if done["kind"] == "intake":
        when = f"{beijing(done['pickup_start'])} 至 {beijing(done['pickup_end'])[-5:]}"
        text = f"邮政快递员将在 {when} 上门收取申请材料，请保持电话畅通。"
    else:
        text = "办理结果将由中国邮政EMS寄到您填写的地址，请保持电话畅通。"
    return message_page("已选择邮寄", text, status=200, extra=link)


# Staff scanning page


@routes.get("/staff")
async def staff_page(_: web.Request) -> web.Response:
    body = (PAGES / "templates" / "staff.html").read_text(encoding="utf-8")
    return page("扫描登记", body, subtitle="邮政投递员 · 窗口人员 扫描登记", scripts=("staff.js",))


@routes.get("/staff-sw.js")
async def staff_service_worker(_: web.Request) -> web.Response:
    # Served from the root, not /static, so that its scope may cover /staff.
    return web.Response(
        body=(PAGES / "static" / "staff-sw.js").read_bytes(),
        content_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/staff"},
    )


routes.static("/static", PAGES / "static")


# Wiring


async def _expiry_loop(app: web.Application) -> None:
    interval = app[SETTINGS].applicant_expiry_check_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            if await applicant.notify_expired_links(app[DB]):
                app[SIGNAL].poke()
        except Exception:  # the database may be down for a while; the next round tries again
            log.warning("applicant_expiry_check_failed", exc_info=True)


def setup(app: web.Application) -> None:
    """Routes and resources of the people's side: call once from create_app."""

    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[STAFF_CACHE] = staff_cache(app[DB], settings.api_key_cache_seconds)
        app[RATE_LIMITER] = RateLimiter(app[REDIS], f"{settings.queue_name}:ratelimit")
        task = None
        if settings.applicant_expiry_check_seconds > 0:
            # Expired applicant links are reported from the API processes (the worker's cron belongs to the jobs
            # package); notify_expired_links is idempotent, so several API processes may all run it.
            task = asyncio.create_task(_expiry_loop(app), name="applicant-expiry")
        yield
        await stop_task(task)

    app.cleanup_ctx.append(resources)
    app.router.add_routes(scans.routes)
    app.router.add_routes(complaints.routes)
    app.router.add_routes(ratings.routes)  # 好差评: /v1/ratings, /v1/follow-ups
    app.router.add_routes(applicant_links.routes)
    app.router.add_routes(routes)
