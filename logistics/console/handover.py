"""交接: the hand-over to the EMS courier on the console. Per department, the deliveries waiting for the courier
(ordered, a waybill, not yet picked up), all ticked but those a printed manifest not yet taken over already
lists (marked with it); the clerk unticks what stays behind and makes a 交接清单
(stored: logistics/domain/manifests.py), printed as an A4 PDF with its QR code (logistics/manifest_document.py)
and reprinted at any time, the same bytes. The same form prints the ticked parcels' labels. The courier scans the
manifest's QR on /staff (logistics/api/scans.py) and every parcel on it is picked up in one step.

``/m/{code}`` — what the QR holds — is also a page, for a phone's ordinary camera: it says to use /staff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from logistics.api.appkeys import DB, SETTINGS
from logistics.console import queries
from logistics.console.printing import selected_ids
from logistics.console.sessions import Session
from logistics.console.views import (
    _department_tabs,
    head,
    message,
    not_found,
    posted_form,
    render,
    signed_in,
)
from logistics.domain import manifests
from logistics.domain.tables import manifest_items, shipments, staff, utcnow
from logistics.domain.tables import manifests as manifest_table
from logistics.domain.wording import masked_party, status_text
from logistics.manifest_document import render as render_manifest
from logistics.pages.views import beijing, esc, message_page

log = logging.getLogger("logistics.console")
routes = web.RouteTableDef()
WAITING_LIMIT = 500  # a hall's day; a longer list is handed over in several manifests
RECENT_MANIFESTS = 20


async def waiting(db: Any, department: str) -> list[dict[str, Any]]:
    """The department's deliveries the courier can take now, oldest first, with a masked recipient, and the
    manifest not yet taken over that already lists each (``on_manifest``, or None)."""
    async with db.read() as conn:
        rows = [
            dict(r._mapping)
            for r in await conn.execute(
                select(*queries.LIST_COLUMNS, shipments.c.recipient)
                .where(manifests.waiting_condition(department))
                .order_by(shipments.c.window, shipments.c.created_at)
                .limit(WAITING_LIMIT)
            )
        ]
        await queries.annotate(conn, rows)
        listed = await _on_open_manifests(conn, [r["id"] for r in rows])
    for row in rows:
        row["masked"] = masked_party(row.pop("recipient")) or {"name": "—", "phone": "—"}
        row["on_manifest"] = listed.get(row["id"])
    return rows


async def _on_open_manifests(conn: Any, ids: list[str]) -> dict[str, str]:
    """Shipment id → the manifest not yet taken over that lists it (the latest, where several do)."""
    if not ids:
        return {}
    found = await conn.execute(
        select(manifest_items.c.shipment_id, manifest_table.c.id)
        .join(manifest_table, manifest_table.c.id == manifest_items.c.manifest_id)
        .where(
            queries.ids_in(manifest_items.c.shipment_id, conn.dialect.name),
            manifest_table.c.taken_over_at.is_(None),
        )
        .order_by(manifest_table.c.created_at),
        {"ids": ids},
    )
    return {shipment_id: manifest_id for shipment_id, manifest_id in found}


async def recent(db: Any, department: str) -> list[dict[str, Any]]:
    """The department's latest manifests (by its index on department, created_at), each with its parcel count."""
    creator, taker = staff.alias("creator"), staff.alias("taker")
    query = (
        select(manifest_table, creator.c.name.label("created_by_name"), taker.c.name.label("taken_over_by_name"))
        .join(creator, creator.c.id == manifest_table.c.created_by)
        .outerjoin(taker, taker.c.id == manifest_table.c.taken_over_by)
        .where(manifest_table.c.department == department)
        .order_by(manifest_table.c.created_at.desc())
        .limit(RECENT_MANIFESTS)
    )
    async with db.read() as conn:
        found = [dict(r._mapping) for r in await conn.execute(query)]
        ids = [m["id"] for m in found]
        counts = {
            r[0]: int(r[1])
            for r in await conn.execute(
                select(manifest_items.c.manifest_id, func.count())
                .where(manifest_items.c.manifest_id.in_(ids))
                .group_by(manifest_items.c.manifest_id)
            )
        }
    for m in found:
        m["n"] = counts.get(m["id"], 0)
    return found


def _ticked(row: dict[str, Any]) -> str:
    """Ticked, unless a manifest not yet taken over lists the parcel already (printed, waiting for the courier)."""
    return "" if row["on_manifest"] else " checked"


def _listed(row: dict[str, Any]) -> str:
    if not row["on_manifest"]:
        return ""
    link = f'<a href="/console/manifests/{esc(row["on_manifest"])}">{esc(row["on_manifest"])}</a>'
    return f' <span class="badge warn" title="该清单尚未交接">已在清单 {link}</span>'


def _taken(m: dict[str, Any]) -> str:
    if m["taken_over_at"] is None:
        return '<span class="badge warn">未交接</span>'
    return f"{esc(m['taken_over_by_name'])} · {esc(beijing(m['taken_over_at']))}"


def _manifest_rows(found: list[dict[str, Any]]) -> str:
    if not found:
        return '<p class="muted" id="manifests">还没有交接清单。</p>'
    rows = "".join(
        f'<tr><td><a href="/console/manifests/{esc(m["id"])}">{esc(m["id"])}</a></td>'
        f"<td>{esc(beijing(m['created_at']))}</td><td>{esc(m['created_by_name'])}</td><td class=num>{m['n']}</td>"
        f"<td>{_taken(m)}</td>"
        f'<td><a href="/console/manifests/{esc(m["id"])}/pdf" target="_blank">打印</a></td></tr>'
        for m in found
    )
    return f'<table id="manifests">{head("清单编号", "制单时间", "制单人", "件数", "交接", "PDF")}{rows}</table>'


@routes.get("/console/handover")
@signed_in
async def handover_page(request: web.Request, session: Session) -> web.Response:
    department = request.query.get("department") or session.member.departments[0]
    if not session.member.serves(department):
        return not_found(session)
    db = request.app[DB]
    rows, made = await asyncio.gather(waiting(db, department), recent(db, department))
    if rows:
        body_rows = "".join(
            f'<tr><td><input type="checkbox" name="id" value="{esc(r["id"])}"{_ticked(r)}'
            f' aria-label="选择 {esc(r["case_no"])}">{_listed(r)}</td>'
            f'<td><a href="/console/shipments/{esc(r["id"])}">{esc(r["case_no"])}</a></td>'
            f"<td>{esc(r['waybill_no'])}</td><td>{esc(r['masked']['name'])}</td>"
            f'<td class="phone">{esc(r["masked"]["phone"])}</td><td>{esc(r["window"])}</td>'
            f"<td>{esc(beijing(r['created_at']))}</td></tr>"
            for r in rows
        )
        columns = head("交接", "办件编号", "运单号", "收件人", "电话", "窗口", "创建时间")
        table = f'<table id="waiting">{columns}{body_rows}</table>'
        form = (
            f'<form method="post" action="/console/manifests" id="handover-form">'
            f'<input type="hidden" name="csrf" value="{esc(session.csrf_token)}">'
            f'<input type="hidden" name="department" value="{esc(department)}">{table}'
            '<div class="action"><button type="submit" id="make-manifest">生成交接清单</button>'
            '<span class="muted">不交给本次揽收的邮件请取消勾选。</span>'
            '<label for="print-format">面单格式</label><select id="print-format" name="format">'
            '<option value="pdf">PDF（普通打印机）</option><option value="zpl">ZPL（热敏面单打印机）</option></select>'
            '<button type="submit" formaction="/console/labels" class="secondary" id="print-selected">'
            "打印所选面单</button></div></form>"
        )
    else:
        form = '<p class="muted" id="nothing-waiting">没有等待揽收的邮件。</p>'
    body = (
        f"<h1>交接 · {esc(department)}</h1>"
        + _department_tabs(session, department, "/console/handover")
        + f'<section class="card"><h2>等待揽收（{len(rows)}）</h2>{form}</section>'
        + f'<section class="card"><h2>交接清单</h2>{_manifest_rows(made)}</section>'
    )
    return render("交接", body, session=session)


@routes.post("/console/manifests")
@signed_in
async def make_manifest(request: web.Request, session: Session) -> web.Response:
    form = await posted_form(request, session.csrf_token)
    if isinstance(form, web.Response):
        return form
    department = form.get("department", "")
    if not session.member.serves(department):
        return not_found(session)
    ids = await selected_ids(request)
    if not ids:
        return message(session, "没有选择邮件", "请至少勾选一件等待揽收的邮件。", status=422)
    if len(ids) > WAITING_LIMIT:
        return message(session, "所选邮件太多", f"一份交接清单最多 {WAITING_LIMIT} 件。", status=422)
    async with request.app[DB].write() as conn:
        mine = {
            r.id: r
            for r in await conn.execute(
                select(shipments.c.id, shipments.c.status, shipments.c.waybill_no, shipments.c.kind).where(
                    shipments.c.id.in_(ids), shipments.c.department == department
                )
            )
        }
        if len(mine) != len(ids):
            return not_found(session)
        moved = [
            sid
            for sid in ids
            if mine[sid].kind != "delivery" or mine[sid].status not in manifests.WAITING or not mine[sid].waybill_no
        ]
        if moved:
            text = f"{len(moved)} 件邮件已不在等待揽收状态（可能刚被揽收或取消），请刷新页面后重新勾选。"
            return message(session, "无法生成交接清单", text, status=409)
        made = await manifests.create(conn, department, ids, session.member.id, utcnow())
    log.info("console_manifest_created", extra={"staff_id": session.member.id, "manifest_id": made.id})
    raise web.HTTPSeeOther(f"/console/manifests/{made.id}")


async def _load(request: web.Request, session: Session) -> dict[str, Any] | None:
    async with request.app[DB].read() as conn:
        return await manifests.load(conn, request.match_info["id"], session.member.departments)


@routes.get("/console/manifests/{id}")
@signed_in
async def manifest_page(request: web.Request, session: Session) -> web.Response:
    manifest = await _load(request, session)
    if manifest is None:
        return message(session, "没有找到这份交接清单", "只能查看本人所属部门的交接清单。", status=404)
    taken = manifest["taken_over_at"] is not None
    rows = "".join(
        f'<tr><td class="num">{i["position"]}</td>'
        f'<td><a href="/console/shipments/{esc(i["id"])}">{esc(i["case_no"])}</a></td>'
        f"<td>{esc(i['waybill_no'])}</td><td>{esc(i['masked']['name'])}</td>"
        f'<td class="phone">{esc(i["masked"]["phone"])}</td>'
        f"<td>{esc(status_text(i['status'], i['kind']))}</td>" + (f"<td>{_outcome(i)}</td>" if taken else "") + "</tr>"
        for i in manifest["items"]
    )
    columns = ("序号", "办件编号", "运单号", "收件人", "电话", "当前状态", *(("交接结果",) if taken else ()))
    if taken:
        who, when = esc(manifest["taken_over_by_name"]), esc(beijing(manifest["taken_over_at"]))
        state = f'<dd id="taken-over">{who} 于 {when} 扫码接收</dd>'
    else:
        state = (
            '<dd id="taken-over"><span class="badge warn">尚未交接</span>'
            " 投递员在“扫描登记”页面扫描清单二维码即可一次揽收</dd>"
        )
    body = f"""
<h1>交接清单 <small class="muted">{esc(manifest["id"])}</small></h1>
<section class="card"><dl class="facts">
<dt>部门</dt><dd>{esc(manifest["department"])}</dd>
<dt>制单</dt><dd>{esc(manifest["created_by_name"])} · {esc(beijing(manifest["created_at"]))}</dd>
<dt>件数</dt><dd id="manifest-count">{len(manifest["items"])} 件</dd>
<dt>交接</dt>{state}
</dl>
<p><a href="/console/manifests/{esc(manifest["id"])}/pdf" target="_blank" id="manifest-pdf">打印交接清单（PDF）</a>
 · <a href="/console/handover?department={esc(manifest["department"])}">返回交接</a></p></section>
<section class="card"><table id="manifest-items">{head(*columns)}{rows}</table></section>
"""
    return render("交接清单", body, session=session)


def _outcome(item: dict[str, Any]) -> str:
    if item["outcome"] == manifests.TAKEN:
        return '<span class="badge">扫码揽收</span>'
    return f'<span class="badge warn">此前已{esc(status_text(item["outcome"] or "", item["kind"]))}</span>'


@routes.get("/console/manifests/{id}/pdf")
@signed_in
async def manifest_pdf(request: web.Request, session: Session) -> web.Response:
    manifest = await _load(request, session)
    if manifest is None:
        return not_found(session)
    facts = manifests.document_facts(manifest, request.app[SETTINGS].base_url)
    body = await asyncio.to_thread(render_manifest, facts)
    log.info("console_manifest_printed", extra={"staff_id": session.member.id, "manifest_id": manifest["id"]})
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="manifest-{manifest["id"]}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@routes.get("/m/{code}")
async def manifest_qr(_: web.Request) -> web.Response:
    """The manifest's QR opened by an ordinary camera app: nothing is shown or changed here."""
    return message_page(
        "交接清单",
        "这是交接清单的二维码。投递员请在“扫描登记”页面（/staff）扫描它，清单上的邮件会一次登记揽收。",
        status=200,
        extra='<p><a href="/staff">打开扫描登记页面</a></p>',
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
