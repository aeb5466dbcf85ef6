"""The 送达回证 PDF: a proof of service's facts on A4, with their SHA-256 printed so a printout can be checked
against the API.

Drawn with the labels' own PDF layer (:mod:`labels.pdfwriter`, the vendored CJK font as TrueType subsets from
:mod:`labels.pdffont`), which writes no date and names the file by a digest of its bytes: the same facts give the
same bytes, every time and in every process. Text is measured with the font's advance widths and wrapped here.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from labels import text as fonts
from labels.pdffont import FontSubsets
from labels.pdfwriter import PdfWriter, text_string

# Bump when the layout changes what a proof looks like: stored renders are then drawn again.
RENDER_VERSION = 1
PT_PER_MM = 72 / 25.4
PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 18.0
BODY = 3.6  # em height of body text, mm (about 10 pt)
LINE = BODY * 1.55
KEY_W = 36.0
BEIJING = timezone(timedelta(hours=8), "CST")
_TITLE = "送达回证"
_CREATOR = "gov-logistics proof"

CLASS_TEXT = {
    "addressee": "受送达人本人签收",
    "family": "同住成年家属代收",
    "unit_mailroom": "单位收发室／门卫／物业代收",
    "locker_or_station": "快递柜／驿站／代收点代收",
    "other": "他人代收",
    "unknown": "邮政记录未载明签收人",
}
SOURCE_TEXT = {"carrier_push": "邮政", "carrier_poll": "邮政", "scan": "扫描"}


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float  # baseline, mm from the top
    size: float
    text: str


@dataclass(frozen=True, slots=True)
class Rule:
    x: float
    y: float
    w: float


@dataclass(frozen=True, slots=True)
class Raw:
    """Content-stream operators drawn as given (in points, PDF y upwards): a QR code's modules, say."""

    ops: str


def beijing(value: str | None) -> str:
    """An ISO instant of the facts as Beijing wall-clock time, as the hall and the court read it."""
    if not value:
        return "—"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def wrap(text: str, width: float, size: float = BODY) -> list[str]:
    """``text`` in lines no wider than ``width`` mm, broken anywhere (Chinese has no spaces to break at)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current: list[str] = []
        used = 0.0
        for ch in paragraph:
            w = fonts.text_width(ch, size)
            if current and used + w > width:
                lines.append("".join(current).rstrip())
                current, used = ([], 0.0) if ch.isspace() else ([ch], w)
            else:
                current.append(ch)
                used += w
        lines.append("".join(current))
    return lines


def _signer_text(facts: Mapping[str, Any]) -> str:
    signer = facts["signer"]
    parts = [CLASS_TEXT.get(signer["class"], signer["class"])]
    if signer.get("name"):
        parts.append(f"签收人：{signer['name']}")
    if signer.get("relation"):
        parts.append(f"关系：{signer['relation']}")
    return "；".join(parts)


def _party_text(party: Mapping[str, Any]) -> str:
    place = "".join(str(party.get(k) or "") for k in ("province", "city", "district", "address"))
    if not party.get("name"):  # purged: only the region is left
        return f"{place}（个人信息已按规定清除）"
    return f"{party['name']}  {party.get('phone') or ''}\n{place}"


def _rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    cases = "\n".join(f"{c['case_no']}  {c['item_name']}" for c in facts["cases"]) or "—"
    return [
        ("送达文书", cases),
        ("送达机关", f"{facts['department']}  {facts['window']}"),
        ("受送达人", _party_text(facts["recipient"] or {})),
        ("邮件号", f"{facts['carrier'].upper()}  {facts['waybill_no'] or '—'}"),
        ("交邮时间", beijing(facts["handed_to_post_at"])),
        ("送达时间", beijing(facts["signed_at"])),
        ("签收情况", _signer_text(facts)),
        ("取件验证码", "已核验" if facts["verified_by_code"] else "未核验"),
        ("本人或家属签收", "是" if facts["personal_service_proven"] else "否（不能证明由受送达人本人或同住家属签收）"),
        ("未妥投次数", str(facts["failed_attempts"])),
    ]


def _event_text(event: Mapping[str, Any]) -> str:
    source = SOURCE_TEXT.get(event["source"], event["source"])
    code = f"[{event['carrier_code']}] " if event.get("carrier_code") else ""
    text = event.get("text") or ("（内容已按规定清除）" if "text" not in event else "")
    place = f"（{event['location']}）" if event.get("location") else ""
    return f"{source} {code}{text}{place}"


class _Pages:
    """Lays text out top to bottom, starting a new page when the next line would not fit."""

    def __init__(self) -> None:
        self.pages: list[list[Text | Rule]] = [[]]
        self.y = MARGIN

    def need(self, height: float) -> None:
        if self.y + height > PAGE_H - MARGIN - 14:  # room for the footer
            self.pages.append([])
            self.y = MARGIN

    def line(self, x: float, text: str, size: float = BODY) -> None:
        self.pages[-1].append(Text(x, self.y + size * 0.9, size, text))

    def rule(self) -> None:
        self.pages[-1].append(Rule(MARGIN, self.y, PAGE_W - 2 * MARGIN))


def layout(facts: Mapping[str, Any]) -> list[list[Text | Rule]]:
    """Every page's text and rules, the footer (digest, page number) included."""
    out = _Pages()
    title = 7.0
    out.line((PAGE_W - fonts.text_width(_TITLE, title)) / 2, _TITLE, title)
    out.y += title * 1.6
    subtitle = "邮寄送达记录（依据承运人投递记录生成）"
    out.line((PAGE_W - fonts.text_width(subtitle, BODY)) / 2, subtitle, BODY)
    out.y += LINE * 1.5
    value_x, value_w = MARGIN + KEY_W, PAGE_W - 2 * MARGIN - KEY_W
    for key, value in _rows(facts):
        lines = wrap(value, value_w)
        out.need(LINE * len(lines))
        out.rule()
        out.y += 1.2
        out.line(MARGIN, key)
        for text in lines:
            out.line(value_x, text)
            out.y += LINE
    out.rule()
    out.y += LINE
    out.need(LINE * 2)
    out.line(MARGIN, "投递记录（承运人原文）")
    out.y += LINE * 1.2
    time_w = fonts.text_width("0000-00-00 00:00:00", BODY) + 4
    for event in facts["events"]:
        lines = wrap(_event_text(event), PAGE_W - 2 * MARGIN - time_w)
        out.need(LINE * len(lines))
        out.line(MARGIN, beijing(event["occurred_at"]))
        for text in lines:
            out.line(MARGIN + time_w, text)
            out.y += LINE
    if not facts["events"]:
        out.line(MARGIN, "—")
    pages = out.pages
    small = 2.8
    for n, page in enumerate(pages, 1):
        y = PAGE_H - MARGIN - 8
        page.append(Rule(MARGIN, y - 3, PAGE_W - 2 * MARGIN))
        page.append(Text(MARGIN, y, small, f"数据摘要 SHA-256：{facts['sha256']}"))
        check = f"核对：GET /v1/shipments/{facts['shipment_id']}/proof 的 sha256 与此一致"
        if facts.get("issued_sha256"):
            check = f"个人信息已按规定清除；签发时摘要：{facts['issued_sha256']}"
        page.append(Text(MARGIN, y + small * 1.6, small, check))
        number = f"第 {n} 页 / 共 {len(pages)} 页"
        page.append(Text(PAGE_W - MARGIN - fonts.text_width(number, small), y + small * 3.2, small, number))
    return pages


def _n(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


Drawing = Text | Rule | Raw


def _content(items: Sequence[Drawing], subsets: FontSubsets) -> bytes:
    ops: list[str] = []
    font: tuple[int, str] | None = None
    for item in items:
        if isinstance(item, Raw):
            ops.append(item.ops)
            continue
        if isinstance(item, Rule):
            y = _n((PAGE_H - item.y) * PT_PER_MM)
            ops.append(f"0.4 w {_n(item.x * PT_PER_MM)} {y} m {_n((item.x + item.w) * PT_PER_MM)} {y} l S")
            continue
        size = _n(item.size * PT_PER_MM)
        parts = [f"BT {_n(item.x * PT_PER_MM)} {_n((PAGE_H - item.y) * PT_PER_MM)} Td"]
        for subset, codes in subsets.encode(item.text):
            if (subset, size) != font:
                parts.append(f"/F{subset} {size} Tf")
                font = (subset, size)
            parts.append(f"<{codes.hex()}> Tj")
        parts.append("ET")
        ops.append(" ".join(parts))
    return "\n".join(ops).encode("ascii")


def _drain(steps: Iterator[None]) -> None:
    for _ in steps:
        pass


def render(facts: Mapping[str, Any]) -> bytes:
    """The document's bytes: deterministic, the same facts always give the same bytes."""
    return document(layout(facts), f"{_TITLE} {facts['waybill_no'] or facts['shipment_id']}", _CREATOR)


def document(pages: Sequence[Sequence[Drawing]], title: str, creator: str) -> bytes:
    """A4 pages of drawings as one PDF, with the CJK font subset: the same pages always give the same bytes
    (no date is written). The hand-over manifest (:mod:`logistics.manifest_document`) is drawn with it too."""
    sink = io.BytesIO()
    pdf = PdfWriter(sink)
    subsets = FontSubsets()
    catalog, tree, info, font_dict, resources = (pdf.reserve() for _ in range(5))
    pdf.write_object(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % tree)
    pdf.write_object(info, b"<< /Title %b /Creator %b >>" % (text_string(title), text_string(creator)))
    pdf.write_object(resources, b"<< /Font %d 0 R >>" % font_dict)
    box = f"[0 0 {PAGE_W * PT_PER_MM:.4f} {PAGE_H * PT_PER_MM:.4f}]".encode("ascii")
    kids: array[int] = array("Q")
    for items in pages:
        contents = pdf.add_stream(b"", _content(items, subsets))
        kids.append(
            pdf.add_object(
                b"<< /Type /Page /Parent %d 0 R /MediaBox %b /Resources %d 0 R /Contents %d 0 R >>"
                % (tree, box, resources, contents)
            )
        )
    _drain(subsets.write(pdf, font_dict))
    _drain(pdf.write_page_tree(tree, kids))
    _drain(pdf.finish(root=catalog, info=info))
    return sink.getvalue()
