"""打印所选面单: the labels of the shipments a clerk ticked in a console list, as one multi-page PDF or one ZPL
stream — the label API's own batch (``label_store.prepare_batch``, ``api.labels.send_batch``), so the same
labels, the same first print time (``label_printed_at``) and the same streaming.

A POST with the session's CSRF token. Any id that is not one of the clerk's departments' shipments makes the
whole request the console's 404 (as for one that does not exist). Shipments without a waybill have no label
yet: they are listed as not printable, with a button to print the others — a page, not an error.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import select

from logistics.api.appkeys import DB, SETTINGS
from logistics.api.labels import send_batch
from logistics.console import queries
from logistics.console.sessions import Session
from logistics.console.views import _address, message, not_found, posted_form, render, shipment_table, signed_in
from logistics.domain.tables import shipments, utcnow
from logistics.label_store import BATCH_FORMATS, prepare_batch
from logistics.pages.views import esc

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()
FORMAT_TEXT = {"pdf": "PDF", "zpl": "ZPL"}


async def selected_ids(request: web.Request) -> list[str]:
    """The ticked ids (``id`` repeated), in page order, each once; bounded like any id."""
    posted = await request.post()  # read once by posted_form already: aiohttp hands back the same parsed form
    return list(dict.fromkeys(str(v).strip()[:40] for v in posted.getall("id", []) if str(v).strip()))


def _reprint_form(csrf: str, ready: list[dict[str, Any]], fmt: str) -> str:
    if not ready:
        return '<p class="muted">所选邮件都还没有运单号，暂无可打印的面单。</p>'
    hidden = "".join(f'<input type="hidden" name="id" value="{esc(r["id"])}">' for r in ready)
    return (
        f'<form method="post" action="/console/labels" class="action" id="print-rest">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}"><input type="hidden" name="format" value="{esc(fmt)}">'
        f'{hidden}<button type="submit" id="print-rest-button">打印其余 {len(ready)} 件（{FORMAT_TEXT[fmt]}）</button>'
        "</form>"
    )


@routes.post("/console/labels")
@signed_in
async def print_selected(request: web.Request, session: Session) -> web.StreamResponse:
    form = await posted_form(request, session.csrf_token)
    if isinstance(form, web.Response):
        return form
    settings = request.app[SETTINGS]
    ids = await selected_ids(request)
    fmt = form.get("format", "pdf")
    if fmt not in BATCH_FORMATS:
        return message(session, "无法打印", "请选择面单格式：PDF 或 ZPL。", status=422)
    if not ids:
        return message(session, "没有选择邮件", "请先在列表中勾选要打印面单的邮件。", status=422)
    if len(ids) > settings.label_batch_max:
        text = f"一次最多打印 {settings.label_batch_max} 件，请分批勾选。"
        return message(session, "所选邮件太多", text, status=422)
    db = request.app[DB]
    async with db.read() as conn:
        found = {
            r.id: dict(r._mapping)
            for r in await conn.execute(
                select(shipments).where(
                    shipments.c.id.in_(ids), shipments.c.department.in_(list(session.member.departments))
                )
            )
        }
        if len(found) != len(ids):
            log.info("console_labels_refused", extra={"staff_id": session.member.id, "count": len(ids)})
            return not_found(session)
        rows = await queries.annotate(conn, [found[sid] for sid in ids])
    ready = [r for r in rows if r["waybill_no"]]
    not_ready = [r for r in rows if not r["waybill_no"]]
    if not_ready:
        body = (
            f'<section class="card"><h1>{len(not_ready)} 件邮件还不能打印面单</h1>'
            '<p class="muted">这些邮件还没有运单号（尚未向EMS下单成功），面单要等下单后才有。</p>'
            f"{shipment_table(not_ready, table_id='not-printable')}"
            f"{_reprint_form(session.csrf_token, ready, fmt)}</section>"
        )
        return render("打印面单", body, session=session)
    batch = await prepare_batch(db, settings, ready, fmt)
    # A label shows the recipient's address: printing one is a view of personal data.
    await queries.record_views(
        db, session.member.id, [r["id"] for r in ready], address=_address(request), view="labels", now=utcnow()
    )
    log.info("console_labels_printed", extra={"staff_id": session.member.id, "count": len(ready), "format": fmt})
    return await send_batch(request, batch)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
