"""Where everything sits on a label, for every size, as format-independent drawing primitives.

Zoning follows GB/T 41833-2022 《快递电子运单》 from top to bottom: carrier and product with the service
direction; the waybill barcode with its digits; destination (大头笔) and sorting code, large; recipient;
sender; the contents and the cases they belong to (case number, department, window) beside the QR code of
the tracking URL; print time. The sizes differ only in the row heights below (data, in millimetres), so
the three sizes cannot drift apart.

:func:`compose` turns a :class:`~labels.model.LabelData` into primitives in millimetres with the origin at
the top-left corner; the PDF, PNG and ZPL renderers only translate primitives, they never decide layout.
Text positions are final: every renderer draws text left-aligned at the given baseline, because the widths
were measured here once with the font's own advance widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from labels import text as fonts
from labels.model import LabelData, LabelParty
from labels.privacy import mask_address, mask_name, mask_phone

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_SIZE",
    "SIZES",
    "SUPPORTED_DPI",
    "Barcode",
    "Box",
    "LabelSize",
    "Primitive",
    "QRCode",
    "Text",
    "Zone",
    "compose",
    "dot_grid",
    "dots",
    "label_size",
    "static_primitives",
    "zones",
]


@dataclass(frozen=True, slots=True)
class Zone:
    """A rectangle of the label in mm, ``x``/``y`` its top-left corner; the drawn rectangles below are zones too."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class LabelSize:
    """Row heights from top to bottom; the margins take what is left of ``height``."""

    name: str
    width: float
    height: float
    header: float
    barcode: float
    destination: float
    recipient: float
    sender: float
    details: float
    footer: float


SIZES: Final[dict[str, LabelSize]] = {
    s.name: s
    for s in (
        LabelSize("100x150", 100, 150, header=13, barcode=22, destination=15, recipient=27, sender=20,
                  details=40, footer=9),
        LabelSize("76x130", 76, 130, header=11, barcode=20, destination=13, recipient=23, sender=17,
                  details=33, footer=9),
        LabelSize("100x180", 100, 180, header=14, barcode=24, destination=18, recipient=32, sender=24,
                  details=55, footer=9),
    )
}
DEFAULT_SIZE: Final = "100x150"
# Thermal print heads: 203 dpi (8 dots per mm) is the common one, 300 the fine one. The raster formats (PNG,
# ZPL) render at either; PDF is vector and needs none.
SUPPORTED_DPI: Final = (203, 300)
DEFAULT_DPI: Final = SUPPORTED_DPI[0]

MARGIN: Final = 2.0
RULE: Final = 0.3  # line width of the zone rules
PAD: Final = 1.0
MIN_TEXT: Final = 2.0  # 2 mm ≈ 16 dots at 203 dpi: the smallest CJK size a thermal head prints legibly
ELLIPSIS: Final = "…"
DIRECTION_TEXT: Final = {"intake": "接件", "delivery": "送达"}


@dataclass(frozen=True, slots=True)
class Text:
    """Left-aligned text; ``y`` is the baseline, ``size`` the em height, both in mm."""

    x: float
    y: float
    size: float
    text: str
    white: bool = False


@dataclass(frozen=True, slots=True)
class Box(Zone):
    """A filled rectangle when ``fill``, else its outline stroked ``stroke`` mm wide."""

    fill: bool = False
    stroke: float = RULE


@dataclass(frozen=True, slots=True)
class Barcode(Zone):
    """Code128 of ``value`` centred in the zone; renderers choose a module width that fits their grid."""

    value: str


@dataclass(frozen=True, slots=True)
class QRCode:
    """QR of ``data`` centred in the square zone, quiet zone included in ``size``."""

    x: float
    y: float
    size: float
    data: str


Primitive = Text | Box | Barcode | QRCode


def label_size(size: str) -> LabelSize:
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown label size {size!r}; one of {', '.join(SIZES)}") from None


def dots(mm: float, dpi: int) -> int:
    """``mm`` in whole dots of a print head with ``dpi`` dots per inch: the raster renderers' grid."""
    return round(mm * dpi / 25.4)


def dot_grid(size: str, dpi: int) -> tuple[int, int]:
    """Width and height of a ``size`` label in dots at ``dpi``; ValueError for a resolution not supported."""
    if dpi not in SUPPORTED_DPI:
        raise ValueError(f"dpi must be one of {SUPPORTED_DPI}, got {dpi}")
    s = label_size(size)
    return dots(s.width, dpi), dots(s.height, dpi)


@lru_cache(maxsize=len(SIZES))
def zones(size: str) -> dict[str, Zone]:
    """Named zones of a size, in mm from the top-left corner; tests use them to look for ink."""
    s = label_size(size)
    inner_w = s.width - 2 * MARGIN
    z: dict[str, Zone] = {}
    y = MARGIN
    head_split = inner_w * 0.62
    z["carrier"] = Zone(MARGIN + PAD, y + PAD, head_split - 2 * PAD, s.header - 2 * PAD)
    z["direction"] = Zone(MARGIN + head_split, y + PAD, inner_w - head_split - PAD, s.header - 2 * PAD)
    y += s.header
    digits_h = s.barcode * 0.2
    z["barcode"] = Zone(MARGIN + PAD, y + PAD, inner_w - 2 * PAD, s.barcode - digits_h - 2 * PAD)
    z["waybill"] = Zone(MARGIN + PAD, y + s.barcode - digits_h - PAD, inner_w - 2 * PAD, digits_h)
    y += s.barcode
    dest_split = inner_w * 0.64
    z["destination"] = Zone(MARGIN + PAD, y + PAD, dest_split - 2 * PAD, s.destination - 2 * PAD)
    z["route"] = Zone(MARGIN + dest_split + 2 * PAD, y + PAD, inner_w - dest_split - 3 * PAD,
                      s.destination - 2 * PAD)
    y += s.destination
    tag_w = max(6.0, inner_w * 0.08)
    z["recipient_tag"] = Zone(MARGIN, y, tag_w, s.recipient)
    z["recipient"] = Zone(MARGIN + tag_w + PAD, y + PAD, inner_w - tag_w - 2 * PAD, s.recipient - 2 * PAD)
    y += s.recipient
    z["sender_tag"] = Zone(MARGIN, y, tag_w, s.sender)
    z["sender"] = Zone(MARGIN + tag_w + PAD, y + PAD, inner_w - tag_w - 2 * PAD, s.sender - 2 * PAD)
    y += s.sender
    qr = min(s.details - 6.0, inner_w * 0.32)
    z["details"] = Zone(MARGIN + PAD, y + PAD, inner_w - qr - 3 * PAD, s.details - 2 * PAD)
    z["qr"] = Zone(MARGIN + inner_w - qr - PAD, y + PAD, qr, qr)
    z["qr_caption"] = Zone(MARGIN + inner_w - qr - PAD, y + PAD + qr, qr, s.details - qr - 2 * PAD)
    y += s.details
    z["footer"] = Zone(MARGIN + PAD, y + PAD * 0.5, inner_w - 2 * PAD, s.footer - PAD)
    return z


def _row_rules(size: str) -> list[float]:
    s = label_size(size)
    ys = []
    y = MARGIN
    for h in (s.header, s.barcode, s.destination, s.recipient, s.sender, s.details):
        y += h
        ys.append(y)
    return ys


# --- text fitting ---------------------------------------------------------------------------------------


def _baseline(zone_y: float, line_h: float, size: float) -> float:
    # Centre the glyph box (ascent + |descent|) in the line box.
    asc, desc = fonts.ascent(), -fonts.descent()
    return zone_y + (line_h - (asc + desc) * size) / 2 + asc * size


def _fit(text: str, width: float, size: float, min_size: float = MIN_TEXT) -> tuple[str, float]:
    """Largest size ≤ ``size`` at which ``text`` fits ``width``; below ``min_size`` cut it with an ellipsis."""
    w = fonts.text_width(text, size)
    if w <= width:
        return text, size
    fitted = size * width / w
    if fitted >= min_size:
        return text, fitted
    while text and fonts.text_width(text + ELLIPSIS, min_size) > width:
        text = text[:-1]
    return text + ELLIPSIS, min_size


def _line(zone: Zone, text: str, size: float | None = None, align: str = "left", white: bool = False,
          y: float | None = None, line_h: float | None = None) -> Text:
    line_h = zone.h if line_h is None else line_h
    top = zone.y if y is None else y
    body, fitted = _fit(text, zone.w, size if size is not None else line_h * 0.82)
    x = zone.x
    if align != "left":
        spare = zone.w - fonts.text_width(body, fitted)
        x += spare / 2 if align == "center" else spare
    return Text(x, _baseline(top, line_h, fitted), fitted, body, white)


def _wrap(text: str, width: float, size: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for ch in text:
        if fonts.text_width(current + ch, size) > width and current:
            lines.append(current)
            current = ch.lstrip()
        else:
            current += ch
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        kept = lines[: max_lines - 1]
        last = "".join(lines[max_lines - 1 :])
        while last and fonts.text_width(last + ELLIPSIS, size) > width:
            last = last[:-1]
        lines = [*kept, last + ELLIPSIS]
    return lines


def _block(zone: Zone, first: str, rest: str, first_ratio: float) -> list[Text]:
    """A party: name and phone on the first line, larger; the address wrapped below, shrunk until it fits."""
    first_h = zone.h * first_ratio
    out = [_line(zone, first, y=zone.y, line_h=first_h)]
    area = Zone(zone.x, zone.y + first_h, zone.w, zone.h - first_h)
    size = min(area.h / 2 * 0.8, first_h * 0.7)
    while True:
        lines_fit = max(1, int(area.h // (size * 1.2)))
        lines = _wrap(rest, area.w, size, lines_fit)
        if not lines[-1].endswith(ELLIPSIS) or size <= MIN_TEXT:
            break
        size = max(MIN_TEXT, size * 0.9)
    line_h = size * 1.2
    for i, line in enumerate(lines):
        out.append(Text(area.x, _baseline(area.y + i * line_h, line_h, size), size, line))
    return out


def _party_lines(party: LabelParty) -> tuple[str, str]:
    if party.is_organisation:
        name, phone, address = party.name, party.phone, party.address
    else:
        name, phone, address = mask_name(party.name), mask_phone(party.phone), mask_address(party.address)
    return f"{name}  {phone}", f"{party.province}{party.city}{party.district}{address}"


def _detail_lines(label: LabelData) -> list[str]:
    contents = "；".join(f"{name}×{count}" for name, count in label.contents) or "—"
    lines = [f"内件：{contents}"]
    # Case number and item on lines of their own: together they are too long for a legible size.
    for i, (case_no, item) in enumerate(label.cases):
        lines.append(f"{'办件：' if i == 0 else '　　　'}{case_no}")
        lines.append(f"　　　{item}")
    lines.append(f"部门：{label.department}")
    lines.append(f"窗口：{label.window}")
    return lines


def _details(zone: Zone, label: LabelData) -> list[Text]:
    lines = _detail_lines(label)
    # Lines never get smaller than the legible minimum; what does not fit is summarised, not squeezed.
    line_h = max(min(zone.h / max(len(lines), 5), 5.0), MIN_TEXT / 0.78)
    capacity = max(4, int(zone.h // line_h))
    if len(lines) > capacity:
        # Contents, department and window always show; cases that do not fit are counted.
        case_room = capacity - 3 - 1
        shown = lines[1 : 1 + max(case_room, 0) // 2 * 2]
        lines = [lines[0], *shown, f"　　　…共{len(label.cases)}件办件", lines[-2], lines[-1]]
    # One size for the whole block: lines in different sizes read as different kinds of information.
    size = line_h * 0.78
    widest = max(fonts.text_width(line, size) for line in lines)
    if widest > zone.w:
        size = max(MIN_TEXT, size * zone.w / widest)
    return [_line(zone, line, size=size, y=zone.y + i * line_h, line_h=line_h) for i, line in enumerate(lines)]


@lru_cache(maxsize=len(SIZES))
def static_primitives(size: str) -> tuple[Primitive, ...]:
    """What every label of a size shares: frame, rules and captions. Renderers draw it once per document."""
    s = label_size(size)
    z = zones(size)
    inner_w = s.width - 2 * MARGIN
    out: list[Primitive] = [Box(MARGIN, MARGIN, inner_w, s.height - 2 * MARGIN)]
    for y in _row_rules(size):
        out.append(Box(MARGIN, y - RULE / 2, inner_w, RULE, fill=True))
    dest = z["destination"]
    out.append(Box(dest.x + dest.w + PAD - RULE / 2, dest.y - PAD, RULE, dest.h + 2 * PAD, fill=True))
    for key, caption in (("recipient_tag", "收件"), ("sender_tag", "寄件")):
        tag = z[key]
        out.append(Box(tag.x + tag.w - RULE / 2, tag.y, RULE, tag.h, fill=True))
        # Captions run vertically, one character per line, like the carriers' own labels.
        size_mm = min(tag.w * 0.7, tag.h / (len(caption) + 1))
        top = tag.y + (tag.h - size_mm * 1.15 * len(caption)) / 2
        for i, ch in enumerate(caption):
            cell = Zone(tag.x, top + i * size_mm * 1.15, tag.w, size_mm * 1.15)
            out.append(_line(cell, ch, size=size_mm, align="center"))
    out.append(_line(z["qr_caption"], "扫码查询物流", size=min(z["qr_caption"].h * 0.6, 3.0), align="center"))
    return tuple(out)


def compose(label: LabelData, size: str = DEFAULT_SIZE) -> list[Primitive]:
    """The label-specific primitives; draw :func:`static_primitives` of the same size under them."""
    z = zones(size)
    out: list[Primitive] = [_line(z["carrier"], f"{label.carrier_name}  {label.product_name}")]
    d = z["direction"]
    out.append(Box(d.x, d.y, d.w, d.h, fill=True))
    out.append(_line(Zone(d.x + PAD, d.y, d.w - 2 * PAD, d.h), DIRECTION_TEXT[label.kind],
                     size=d.h * 0.8, align="center", white=True))
    b = z["barcode"]
    out.append(Barcode(b.x, b.y, b.w, b.h, label.waybill_no))
    out.append(_line(z["waybill"], " ".join((label.waybill_no[:4], label.waybill_no[4:8], label.waybill_no[8:])),
                     align="center"))
    out.append(_line(z["destination"], label.destination_name, align="center"))
    out.append(_line(z["route"], label.route_code or label.destination_code, align="center"))
    first, rest = _party_lines(label.recipient)
    out.extend(_block(z["recipient"], first, rest, 0.36))
    first, rest = _party_lines(label.sender)
    out.extend(_block(z["sender"], first, rest, 0.36))
    out.extend(_details(z["details"], label))
    q = z["qr"]
    out.append(QRCode(q.x, q.y, q.w, label.tracking_url))
    printed = label.printed_at.strftime("%Y-%m-%d %H:%M")
    out.append(_line(z["footer"], f"打印时间 {printed}    {label.carrier_name} {label.waybill_no}    "
                                  f"{label.destination_code}"))
    return out
