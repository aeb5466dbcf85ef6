"""PNG label at thermal-printer resolution (203 or 300 dpi), bilevel like the print head itself."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw

from labels.barcode import QUIET_MODULES, code128_bars, code128_width
from labels.layout import DEFAULT_DPI, DEFAULT_SIZE, Barcode, Box, Primitive, QRCode, Text, compose, dot_grid
from labels.layout import dots as _px
from labels.layout import static_primitives as _static
from labels.model import LabelData
from labels.qr import cached_matrix, dark_runs
from labels.text import pillow_font

__all__ = ["render_png", "render_png_image"]

BLACK, WHITE = 0, 1
# A wider bar module reads more reliably but the symbol must still fit the zone; 0.5 mm is where
# common laser and CCD scanners stop gaining anything.
_MAX_MODULE_MM = 0.5


def draw_primitives(draw: ImageDraw.ImageDraw, primitives: list[Primitive] | tuple[Primitive, ...],
                    dpi: int) -> None:
    """Shared with the ZPL renderer, which rasterises text with exactly this code."""
    for p in primitives:
        if isinstance(p, Text):
            font = pillow_font(max(1, _px(p.size, dpi)))
            draw.text((_px(p.x, dpi), _px(p.y, dpi)), p.text, font=font, anchor="ls",
                      fill=WHITE if p.white else BLACK)
        elif isinstance(p, Box):
            box = (_px(p.x, dpi), _px(p.y, dpi), _px(p.x + p.w, dpi) - 1, _px(p.y + p.h, dpi) - 1)
            if p.fill:
                draw.rectangle(box, fill=BLACK)
            else:
                draw.rectangle(box, outline=BLACK, width=max(1, _px(p.stroke, dpi)))
        elif isinstance(p, Barcode):
            draw_barcode(draw, p, dpi)
        elif isinstance(p, QRCode):
            draw_qr(draw, p, dpi)


def barcode_module_px(p: Barcode, dpi: int) -> int:
    modules = code128_width(p.value) + 2 * QUIET_MODULES
    return max(1, min(math.floor(_px(p.w, dpi) / modules), math.floor(_MAX_MODULE_MM * dpi / 25.4)))


def draw_barcode(draw: ImageDraw.ImageDraw, p: Barcode, dpi: int) -> None:
    # Whole dots per module: a bar that is 2.4 dots wide prints as 2 or 3, and the scanner sees noise.
    m = barcode_module_px(p, dpi)
    width = code128_width(p.value) * m
    x0 = _px(p.x, dpi) + (_px(p.w, dpi) - width) // 2
    y0, y1 = _px(p.y, dpi), _px(p.y + p.h, dpi) - 1
    for off, w in code128_bars(p.value):
        draw.rectangle((x0 + off * m, y0, x0 + (off + w) * m - 1, y1), fill=BLACK)


def qr_module_px(n: int, size_mm: float, dpi: int) -> int:
    return max(1, _px(size_mm, dpi) // (n + 8))


def draw_qr(draw: ImageDraw.ImageDraw, p: QRCode, dpi: int) -> None:
    matrix = cached_matrix(p.data)
    n = len(matrix)
    m = qr_module_px(n, p.size, dpi)
    side = _px(p.size, dpi)
    x0 = _px(p.x, dpi) + (side - n * m) // 2
    y0 = _px(p.y, dpi) + (side - n * m) // 2
    for row, col, length in dark_runs(matrix):
        draw.rectangle((x0 + col * m, y0 + row * m, x0 + (col + length) * m - 1, y0 + (row + 1) * m - 1),
                       fill=BLACK)


def render_png_image(label: LabelData, size: str = DEFAULT_SIZE, dpi: int = DEFAULT_DPI) -> Image.Image:
    image = Image.new("1", dot_grid(size, dpi), WHITE)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no grey anti-aliasing in a bilevel image: a thermal head has no grey either
    draw_primitives(draw, _static(size), dpi)
    draw_primitives(draw, compose(label, size), dpi)
    return image


def render_png(label: LabelData, size: str = DEFAULT_SIZE, dpi: int = DEFAULT_DPI) -> bytes:
    """One label as a PNG whose pixel grid is the printer's dot grid at ``dpi``."""
    image = render_png_image(label, size, dpi)
    buf = io.BytesIO()
    # The dpi tag makes viewers and print dialogs show the label at its physical size.
    image.save(buf, format="PNG", dpi=(dpi, dpi), optimize=False)
    return buf.getvalue()
