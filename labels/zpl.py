"""ZPL II for Zebra-compatible thermal printers.

Barcode and QR code are the printer's own (``^BC``, ``^BQ``), so they print at the head's native dot
grid. Text is sent as bitmaps (``^GFA``) rasterised from the vendored font, because a stock printer has
no CJK font in memory and would print nothing, or boxes, for ``^A`` fields. White-on-black text (the
service direction) is printed with ``^FR`` over a solid ``^GB`` box.

The bitmaps use ZPL II's ASCII compression (repeat counts, ``,`` for a row's blank rest, ``:`` for a row
like the one before), which every ZPL II firmware reads: text is mostly white space, and a label's stream
is a fraction of its plain hex, for printers that often sit on a slow serial or Wi-Fi link.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from itertools import groupby

from PIL import Image, ImageDraw

from labels import text as fonts
from labels.barcode import QUIET_MODULES, code128_width
from labels.layout import DEFAULT_DPI, DEFAULT_SIZE, Barcode, Box, Primitive, QRCode, Text, compose, dot_grid
from labels.layout import dots as _d
from labels.layout import static_primitives as _static
from labels.model import LabelData
from labels.qr import qr_version
from labels.text import pillow_font

__all__ = ["compress_graphic", "render_zpl"]

_MAX_BAR_MODULE_MM = 0.5


# Repeat counts of the compression: G–Y are 1–19, g–z are 20–400 in steps of 20; a count is the sum of one of
# each, written before the hex digit it repeats.
_ONES = "GHIJKLMNOPQRSTUVWXY"
_TWENTIES = "ghijklmnopqrstuvwxyz"
_MAX_RUN = 419  # z + Y: a longer run is written as several


def compress_graphic(data: bytes, bytes_per_row: int) -> str:
    """``data`` (rows of ``bytes_per_row`` bytes) as the data of ``^GFA`` in ZPL's ASCII compression."""
    rows: list[str] = []
    previous = None
    for start in range(0, len(data), bytes_per_row):
        row = data[start : start + bytes_per_row].hex().upper()
        rows.append(":" if row == previous else _compress_row(row))
        previous = row
    return "".join(rows)


def _compress_row(row: str) -> str:
    body = row.rstrip("0")
    if len(body) % 2:  # "," fills whole bytes: a byte begun with ink is written to its end
        body += "0"
    rest = "," if len(body) < len(row) else ""
    return "".join(_run(len(list(group)), digit) for digit, group in groupby(body)) + rest


def _run(count: int, digit: str) -> str:
    out = []
    while count > 0:
        n = min(count, _MAX_RUN)
        count -= n
        if n <= 2:  # a count would be no shorter
            out.append(digit * n)
            continue
        twenties, ones = divmod(n, 20)
        out.append((_TWENTIES[twenties - 1] if twenties else "") + (_ONES[ones - 1] if ones else "") + digit)
    return "".join(out)


@lru_cache(maxsize=2048)
def _text_field(text: str, size_dots: int) -> tuple[str, int]:
    """``^GFA`` command for ``text`` and the glyph box's ascent in dots (to place it by its baseline)."""
    font = pillow_font(size_dots)
    asc = math.ceil(fonts.ascent() * size_dots)
    height = asc + math.ceil(-fonts.descent() * size_dots) + 2
    width = math.ceil(fonts.text_width(text, size_dots)) + 2
    # Ink is 1 in ZPL; a mode "1" image drawn with 1 on 0 packs to exactly those bits, MSB first.
    image = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    draw.text((1, asc + 1), text, font=font, anchor="ls", fill=1)
    row = (width + 7) // 8
    data = image.tobytes()
    return f"^GFA,{len(data)},{len(data)},{row},{compress_graphic(data, row)}", asc + 1


def _primitive(p: Primitive, dpi: int) -> str:
    if isinstance(p, Text):
        size = max(1, _d(p.size, dpi))
        gf, asc = _text_field(p.text, size)
        reverse = "^FR" if p.white else ""
        return f"^FO{_d(p.x, dpi) - 1},{max(0, _d(p.y, dpi) - asc)}{reverse}{gf}^FS"
    if isinstance(p, Box):
        w, h = max(1, _d(p.w, dpi)), max(1, _d(p.h, dpi))
        thickness = min(w, h) if p.fill else max(1, _d(p.stroke, dpi))
        return f"^FO{_d(p.x, dpi)},{_d(p.y, dpi)}^GB{w},{h},{thickness}^FS"
    if isinstance(p, Barcode):
        modules = code128_width(p.value)
        zone = _d(p.w, dpi)
        dots = max(1, min(zone // (modules + 2 * QUIET_MODULES), math.floor(_MAX_BAR_MODULE_MM * dpi / 25.4)))
        x = _d(p.x, dpi) + (zone - modules * dots) // 2
        # Digits are printed by the layout as text, so the printer's interpretation line is off (N);
        # mode A lets the firmware choose subset C for the digit pairs, as our own encoder does.
        return f"^FO{x},{_d(p.y, dpi)}^BY{dots},3,{_d(p.h, dpi)}^BCN,{_d(p.h, dpi)},N,N,N,A^FD{p.value}^FS"
    if isinstance(p, QRCode):
        n = 17 + 4 * qr_version(p.data)
        mag = max(1, min(10, _d(p.size, dpi) // (n + 8)))
        offset = (_d(p.size, dpi) - n * mag) // 2
        # ^FD "MA," = error correction M, automatic data mode; the printer builds the symbol itself.
        return f"^FO{_d(p.x, dpi) + offset},{_d(p.y, dpi) + offset}^BQN,2,{mag}^FDMA,{p.data}^FS"
    raise TypeError(f"unknown primitive {p!r}")


@lru_cache(maxsize=8)
def _static_zpl(size: str, dpi: int) -> str:
    return "\n".join(_primitive(p, dpi) for p in _static(size))


def render_zpl(labels: Iterable[LabelData], size: str = DEFAULT_SIZE, dpi: int = DEFAULT_DPI) -> str:
    """One ``^XA…^XZ`` block per label, in the given order, for a printer of ``dpi`` dots per inch."""
    width, height = dot_grid(size, dpi)
    head = f"^XA\n^PW{width}\n^LL{height}\n^LH0,0\n^CI28"
    out: list[str] = []
    for label in labels:
        out.append(head)
        out.append(_static_zpl(size, dpi))
        out.extend(_primitive(p, dpi) for p in compose(label, size))
        out.append("^XZ")
    if not out:
        raise ValueError("render_zpl needs at least one label")
    return "\n".join(out) + "\n"
