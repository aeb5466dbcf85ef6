"""The 交接清单 PDF: a department's parcels handed to the EMS courier, on A4, with the manifest's QR code.

Drawn like the 送达回证 (:func:`logistics.proof_document.document`: the labels' own PDF writer and CJK font
subsets, no date written by the writer), from stored facts only (:func:`logistics.domain.manifests.document_facts`),
so a reprint is the same bytes. The QR code is the labels library's matrix, drawn as runs of modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labels import text as fonts
from labels.qr import dark_runs, qr_matrix
from logistics.proof_document import (
    BEIJING,
    BODY,
    LINE,
    MARGIN,
    PAGE_H,
    PAGE_W,
    PT_PER_MM,
    Drawing,
    Raw,
    Rule,
    Text,
    document,
)
from logistics.proof_document import _n as num

TITLE = "交接清单"
CREATOR = "gov-logistics manifest"
QR_MM = 32.0
QR_QUIET = 4  # modules of white around the code, as scanners expect
# Columns: heading, x offset from the margin (mm), and the item's field.
COLUMNS = (
    ("序号", 0.0, "position"),
    ("运单号", 12.0, "waybill_no"),
    ("办件编号", 50.0, "case_no"),
    ("收件人", 100.0, "name"),
    ("收件人电话", 130.0, "phone"),
)
FOOTER_ROOM = 30.0  # the signature lines and the footer at the bottom of the last page


def qr(x: float, top: float, size: float, data: str) -> Raw:
    """``data`` as a QR code in a ``size`` mm square (quiet zone included) at (x, top), mm from the top left."""
    matrix = qr_matrix(data)
    module = size / (len(matrix) + 2 * QR_QUIET)
    m = module * PT_PER_MM
    left, upper = (x + QR_QUIET * module) * PT_PER_MM, (PAGE_H - top - QR_QUIET * module) * PT_PER_MM
    runs = " ".join(f"{col} {row} {length} 1 re" for row, col, length in dark_runs(matrix))
    # Module space: one unit per module, y downwards from the code's top-left corner.
    return Raw(f"q {num(m)} 0 0 {num(-m)} {num(left)} {num(upper)} cm {runs} f Q")


def _when(value: Any) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _fit(text: str, width: float) -> str:
    """``text`` cut to ``width`` mm (table cells are one line)."""
    while text and fonts.text_width(text, BODY) > width:
        text = text[:-1]
    return text


def layout(facts: Mapping[str, Any]) -> list[list[Drawing]]:
    pages: list[list[Drawing]] = []
    items = facts["items"]
    y = 0.0

    def new_page() -> None:
        nonlocal y
        pages.append([])
        y = MARGIN
        if len(pages) == 1:
            first_page_head()
        else:
            pages[-1].append(Text(MARGIN, y + BODY, BODY, f"{TITLE}（续） {facts['department']}  {facts['id']}"))
            y += LINE * 1.6
        table_head()

    def first_page_head() -> None:
        nonlocal y
        page = pages[-1]
        size = 7.0
        page.append(Text(MARGIN, y + size, size, TITLE))
        page.append(qr(PAGE_W - MARGIN - QR_MM, y - 4, QR_MM, facts["qr_url"]))
        y += size * 2
        for key, value in (
            ("交件部门", facts["department"]),
            ("制单时间", f"{_when(facts['created_at'])}（北京时间）"),
            ("制单人", facts["created_by_name"]),
            ("清单编号", facts["id"]),
            ("件数合计", f"{len(items)} 件"),
        ):
            page.append(Text(MARGIN, y + BODY, BODY, f"{key}："))
            page.append(Text(MARGIN + 20, y + BODY, BODY, _fit(value, PAGE_W - 2 * MARGIN - QR_MM - 24)))
            y += LINE
        hint = "投递员请用“扫描登记”页面扫描右上角二维码，清单内全部邮件一次登记揽收。"
        page.append(Text(MARGIN, y + BODY, BODY * 0.85, hint))
        y = max(y + LINE * 1.4, MARGIN + QR_MM + 2)

    def table_head() -> None:
        nonlocal y
        page = pages[-1]
        page.append(Rule(MARGIN, y, PAGE_W - 2 * MARGIN))
        for heading, dx, _ in COLUMNS:
            page.append(Text(MARGIN + dx, y + BODY + 1, BODY, heading))
        y += LINE + 0.6
        page.append(Rule(MARGIN, y, PAGE_W - 2 * MARGIN))

    new_page()
    for item in items:
        if y + LINE > PAGE_H - MARGIN - 12:
            new_page()
        page = pages[-1]
        for n, (_, dx, key) in enumerate(COLUMNS):
            right = COLUMNS[n + 1][1] if n + 1 < len(COLUMNS) else PAGE_W - 2 * MARGIN
            page.append(Text(MARGIN + dx, y + BODY + 1, BODY, _fit(str(item[key]), right - dx - 2)))
        y += LINE
    pages[-1].append(Rule(MARGIN, y + 0.6, PAGE_W - 2 * MARGIN))
    y += LINE
    if y + FOOTER_ROOM > PAGE_H - MARGIN:
        pages.append([])
        y = MARGIN
    page = pages[-1]
    page.append(Text(MARGIN, y + BODY, BODY, f"合计：{len(items)} 件"))
    y += LINE * 2.5
    for text, dx in (("交件人（窗口）签字：", 0.0), ("揽收人（邮政）签字：", 88.0)):
        page.append(Text(MARGIN + dx, y + BODY, BODY, text))
        page.append(Rule(MARGIN + dx + 38, y + BODY + 1, 46))
    y += LINE * 2
    page.append(Text(MARGIN, y + BODY, BODY, "交接时间：        年    月    日    时    分"))
    small = 2.8
    for n, drawn in enumerate(pages, 1):
        number = f"{facts['id']}  第 {n} 页 / 共 {len(pages)} 页"
        drawn.append(Text(PAGE_W - MARGIN - fonts.text_width(number, small), PAGE_H - MARGIN + 4, small, number))
    return pages


def render(facts: Mapping[str, Any]) -> bytes:
    """The manifest's PDF: the same facts always give the same bytes."""
    return document(layout(facts), f"{TITLE} {facts['department']} {facts['id']}", CREATOR)
