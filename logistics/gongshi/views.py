"""/gongshi, /gongshi.json, /gongshi.csv: the stored figures, suppressed, for anyone. No personal data exists in
the cells (counts, shares and times per department); department names are public.

Served from memory: a background task of each process asks the state row once a second whether the figures
were refreshed (or the Beijing month turned); when so it loads the cells and encodes every answer once (HTML,
JSON and CSV for each month shown, each with its ETag). A request is a dictionary lookup, never a query, and
answers ``If-None-Match`` with a 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiohttp import web

from logistics.api.appkeys import DB
from logistics.api.errors import Problem
from logistics.api.schemas import BEIJING
from logistics.gongshi import figures, store, suppress
from logistics.gongshi.figures import TOTAL
from logistics.pages.views import SECURITY_HEADERS, esc, fill

log = logging.getLogger("logistics.gongshi")
routes = web.RouteTableDef()
CURRENT = ' aria-current="page"'
CHECK_SECONDS = 1.0  # how often each process asks whether the figures were refreshed (in the background)
MAX_AGE_SECONDS = 15  # the figures are refreshed every ≤ 30 s, so what a cache holds is under 60 s old
HEADERS = {**SECURITY_HEADERS, "Cache-Control": f"public, max-age={MAX_AGE_SECONDS}", "X-Robots-Tag": "noindex"}

LABELS = {
    "created_intake": "接件新建",
    "delivered_intake": "接件送达",
    "created_delivery": "送件新建",
    "delivered_delivery": "送件送达",
    "transit_median_h": "寄递用时中位数（小时）",
    "transit_p90_h": "90% 件用时不超过（小时）",
    "on_time_share": "按期送达率",
    "failed_share": "失败或退回率",
    "complaints": "投诉",
    "complaints_in_time": "5 个工作日内答复",
    "ratings": "评价数",
    "satisfied_share": "满意率",
    "follow_ups_late": "差评整改超期",
}
TABLES = (
    ("寄递件数", ("created_intake", "delivered_intake", "created_delivery", "delivered_delivery")),
    ("寄递时效", ("transit_median_h", "transit_p90_h", "on_time_share", "failed_share")),
    ("投诉与评价", ("complaints", "complaints_in_time", "ratings", "satisfied_share", "follow_ups_late")),
)
SHARES = frozenset(suppress.SHARE_COLUMNS)
DEFINITIONS = (
    ("统计口径", "按部门、按北京时间自然月统计；本月数据实时更新，另列前 24 个月。"),
    ("新建", "当月创建的寄递件数：接件（申请人寄往大厅）与送件（大厅寄给申请人）分列。"),
    ("送达", "当月送达的件数（以首个送达记录的时间计月）。"),
    (
        "寄递用时",
        "送达时间减去交寄时间（首次揽收记录）。中位数与 90% 分位数用“最近秩”法：n 个用时从小到大排列，"
        "第 p 百分位数取第 ⌈p×n÷100⌉ 个。",
    ),
    ("按期送达率", "当月送达且设有办结期限（due_by）的件中，送达日（北京时间）不晚于期限的比例。"),
    ("失败或退回率", "当月结束的件（首次送达、下单失败或退回）中，下单失败或退回的比例。"),
    ("投诉、按期答复", "当月收到的投诉数；其中在收到之日后第 5 个工作日（含调休与法定节假日）结束前答复的件数。"),
    ("满意率", "满意率 = （非常满意＋满意＋基本满意）÷ 评价数。不满意、非常不满意为差评。未评价的不计入。"),
    ("差评整改超期", "当月因差评开启的整改中，晚于期限（5 个工作日）完成或逾期仍未完成的件数。"),
    (
        "小数保护",
        "少于 5 件的数字显示为“<5”，分母少于 5 件的比例、用时也显示为“<5”，以免识别到个人；"
        "若由合计减去其他部门可推算出被隐藏的数字，则合计显示为“*”。无案件显示“—”。",
    ),
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One answer, encoded once per refresh."""

    body: bytes
    headers: dict[str, str]  # with its ETag and Content-Type
    etag: str


@dataclass
class Published:
    refreshed_at: datetime | None = None
    shown: list[str] = field(default_factory=list)
    answers: dict[tuple[str, str], Encoded] = field(default_factory=dict)  # (format, month) → answer
    loaded: bool = False


PUBLISHED = web.AppKey("gongshi_published", Published)


def encode(fmt: str, month: str, body: bytes) -> Encoded:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {**HEADERS, "ETag": etag, "Content-Type": f"{CONTENT_TYPES[fmt]}; charset=utf-8"}
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="gongshi-{month}.csv"'
    return Encoded(body, headers, etag)


async def build(stored: store.Stored, shown: list[str]) -> dict[tuple[str, str], Encoded]:
    answers = {}
    for month in shown:
        answers[("html", month)] = encode("html", month, render_html(stored, month, shown))
        answers[("json", month)] = encode("json", month, render_json(stored, month, shown))
        answers[("csv", month)] = encode("csv", month, render_csv(stored, month))
        await asyncio.sleep(0)  # one month at a time: requests are answered in between
    return answers


async def reload(app: web.Application) -> None:
    """Re-encode every answer when the figures were refreshed or the month turned; otherwise one small query."""
    published = app[PUBLISHED]
    shown = figures.months_shown(datetime.now(UTC))
    at = await store.refreshed_at(app[DB])
    if published.loaded and at == published.refreshed_at and shown == published.shown:
        return
    stored = await store.load(app[DB])
    answers = await build(stored, shown)
    # Swapped together, between two requests: an answer never mixes two refreshes.
    published.refreshed_at, published.shown, published.answers = stored.refreshed_at, shown, answers
    published.loaded = True


async def keep_fresh(app: web.Application) -> None:
    failing = False
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        try:
            await reload(app)
        except Exception as exc:  # the database away: keep serving what was loaded, try again
            if not failing:  # once per outage, not once a second for as long as it lasts
                log.warning("gongshi_reload_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
            failing = True
        else:
            if failing:
                log.info("gongshi_reload_recovered")
            failing = False


async def published_context(app: web.Application) -> AsyncIterator[None]:
    try:
        await reload(app)  # before the first request
    except Exception as exc:
        log.warning("gongshi_reload_failed", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
        app[PUBLISHED].shown = figures.months_shown(datetime.now(UTC))
        app[PUBLISHED].answers = await build(store.Stored(None, {}), app[PUBLISHED].shown)
    task = asyncio.create_task(keep_fresh(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def chosen_month(request: web.Request, shown: list[str]) -> str:
    """The month asked for (``?month=YYYY-MM``, one of the months shown); anything else is a 400."""
    month = request.query.get("month", shown[0])
    if not figures.is_month(month) or month not in shown:
        raise Problem(400, "bad-month", "Bad month", f"month must be one of {shown[-1]} … {shown[0]} (YYYY-MM).")
    return month


def month_rows(stored: store.Stored, month: str) -> tuple[list[str], dict[str, dict[str, suppress.Shown]]]:
    cells = stored.months.get(month, {})
    return figures.departments_of(cells), suppress.protect_month(cells) if cells else {}


def text_of(column: str, value: suppress.Shown) -> str:
    if value is None:
        return "未统计"
    if isinstance(value, str):
        return value
    if column in SHARES:
        return f"{value:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def beijing_text(moment: datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if moment else "尚未计算"


def month_label(month: str) -> str:
    return f"{int(month[:4])}年{int(month[5:])}月"


def render_html(stored: store.Stored, month: str, shown: list[str]) -> bytes:
    departments, rows = month_rows(stored, month)
    links = "".join(
        f'<li><a href="/gongshi?month={m}"{CURRENT if m == month else ""}>'
        f"{month_label(m)}{'（本月）' if i == 0 else ''}</a></li>"
        for i, m in enumerate(shown)
    )
    parts = [
        f'<section class="card"><h1>{month_label(month)}各部门寄递办件情况</h1>'
        f'<p class="muted">数据更新于 {beijing_text(stored.refreshed_at)}（北京时间），每 30 秒更新。'
        f'<a href="/gongshi.csv?month={month}">下载 CSV</a> · <a href="/gongshi.json?month={month}">JSON</a></p>'
    ]
    if not departments:
        parts.append('<p class="empty">本月无案件：—</p></section>')
    else:
        parts.append("</section>")
        for title, columns in TABLES:
            head = "".join(f'<th scope="col">{esc(LABELS[c])}</th>' for c in columns)
            body = []
            for d in [*departments, TOTAL]:
                name = "全区合计" if d == TOTAL else d
                cells = "".join(f"<td>{esc(text_of(c, rows[d][c]))}</td>" for c in columns)
                css = ' class="total"' if d == TOTAL else ""
                body.append(f'<tr{css}><th scope="row">{esc(name)}</th>{cells}</tr>')
            parts.append(
                f'<section class="card"><h2>{title}</h2><div class="scroll"><table>'
                f'<thead><tr><th scope="col">部门</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                "</table></div></section>"
            )
    terms = "".join(f"<dt>{esc(t)}</dt><dd>{esc(d)}</dd>" for t, d in DEFINITIONS)
    parts.append(f'<section class="card"><h2>指标说明</h2><dl class="terms">{terms}</dl></section>')
    parts.append(f'<nav class="card months" aria-label="选择月份"><h2>选择月份</h2><ul>{links}</ul></nav>')
    html = fill(
        "base.html",
        title="政务寄递公示",
        subtitle="各部门办件情况公示（不含任何个人信息）",
        body="".join(parts),
        scripts='<link rel="stylesheet" href="/static/gongshi.css">',
    )
    return html.encode()


def render_json(stored: store.Stored, month: str, shown: list[str]) -> bytes:
    departments, rows = month_rows(stored, month)
    columns = list(suppress.COLUMNS)
    body = {
        "month": month,
        "months": shown,
        "computed_at": stored.refreshed_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if stored.refreshed_at
        else None,
        "columns": {c: LABELS[c] for c in columns},
        "departments": [{"department": d, **{c: rows[d][c] for c in columns}} for d in departments],
        "total": {c: rows[TOTAL][c] for c in columns} if departments else None,
        "legend": {suppress.SMALL: "fewer than 5", suppress.HIDDEN: "hidden (secondary)", suppress.NONE: "no cases"},
        "definitions": dict(DEFINITIONS),
    }
    return orjson.dumps(body)


def safe_csv(value: str) -> str:
    """A spreadsheet must not read a cell as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render_csv(stored: store.Stored, month: str) -> bytes:
    departments, rows = month_rows(stored, month)
    columns = list(suppress.COLUMNS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["月份", "部门", *(LABELS[c] for c in columns), "数据更新于"])
    updated = beijing_text(stored.refreshed_at)
    for d in [*departments, TOTAL] if departments else []:
        name = "全区合计" if d == TOTAL else d
        writer.writerow([month, safe_csv(name), *(safe_csv(text_of(c, rows[d][c])) for c in columns), updated])
    return ("\ufeff" + out.getvalue()).encode()  # the BOM: spreadsheet programs then read the file as UTF-8


CONTENT_TYPES = {"html": "text/html", "json": "application/json", "csv": "text/csv"}


def not_modified(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match[:2000].split(",")]
    return etag in tags or "*" in tags


async def answer(request: web.Request, fmt: str) -> web.Response:
    published = request.app[PUBLISHED]
    found = published.answers.get((fmt, request.query.get("month", published.shown[0])))
    if found is None:
        return bad_month(request, fmt, published.shown)
    if not_modified(request.headers.get("If-None-Match"), found.etag):
        return web.Response(status=304, headers=found.headers)
    return web.Response(body=found.body, headers=found.headers)


def bad_month(request: web.Request, fmt: str, shown: list[str]) -> web.Response:
    try:
        chosen_month(request, shown)
    except Problem as problem:
        if fmt != "html":
            return problem.response(request)
    body = fill(
        "base.html",
        title="月份无效",
        subtitle="",
        body='<section class="card"><h1>月份无效</h1>'
        '<p>请从<a href="/gongshi">本页</a>的月份列表中选择。</p></section>',
        scripts="",
    )
    return web.Response(text=body, status=400, content_type="text/html", charset="utf-8", headers=HEADERS)


@routes.get("/gongshi")
async def gongshi_page(request: web.Request) -> web.Response:
    return await answer(request, "html")


@routes.get("/gongshi.json")
async def gongshi_json(request: web.Request) -> web.Response:
    return await answer(request, "json")


@routes.get("/gongshi.csv")
async def gongshi_csv(request: web.Request) -> web.Response:
    return await answer(request, "csv")


def setup(app: web.Application) -> None:
    app[PUBLISHED] = Published()
    app.cleanup_ctx.append(published_context)
    app.router.add_routes(routes)
