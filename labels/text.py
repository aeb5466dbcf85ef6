"""The vendored CJK font: where it is, how wide text is, and its faces for reportlab and Pillow.

Every format measures text with the same advance widths (read once from the font's hmtx table through
reportlab), so line breaks and fitted sizes are identical in PDF, PNG and ZPL.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

__all__ = [
    "FONT_NAME",
    "FONT_PATH",
    "ascent",
    "descent",
    "pillow_font",
    "register_reportlab_font",
    "text_width",
]

FONT_PATH = Path(__file__).parent / "fonts" / "wqy-microhei.ttc"
# Face 0 of the collection is the proportional "WenQuanYi Micro Hei"; face 1 is its monospaced sibling.
_FACE_INDEX = 0
FONT_NAME = "WenQuanYiMicroHei"

_lock = threading.Lock()
_font: TTFont | None = None


def register_reportlab_font() -> TTFont:
    """Parse the 5 MB collection once per process and register it with reportlab.

    reportlab keeps per-document subset state inside the TTFont object, so one registered font is safe
    for any number of documents; TrueType outlines are embedded as subsets (FontFile2) automatically.
    """
    global _font
    if _font is None:
        with _lock:
            if _font is None:
                font = TTFont(FONT_NAME, str(FONT_PATH), subfontIndex=_FACE_INDEX)
                pdfmetrics.registerFont(font)
                _font = font
    return _font


@lru_cache(maxsize=1)
def _metrics() -> tuple[dict[int, float], float, float, float]:
    face = register_reportlab_font().face
    return dict(face.charWidths), float(face.defaultWidth), face.ascent / 1000.0, face.descent / 1000.0


def text_width(text: str, size: float) -> float:
    """Advance width of ``text`` at font size ``size``, in the unit of ``size``."""
    widths, default, _, _ = _metrics()
    get = widths.get
    return sum(get(ord(c), default) for c in text) * size / 1000.0


def ascent() -> float:
    """Ascender height as a fraction of the font size."""
    return _metrics()[2]


def descent() -> float:
    """Descender depth as a (negative) fraction of the font size."""
    return _metrics()[3]


@lru_cache(maxsize=64)
def pillow_font(size_px: int) -> ImageFont.FreeTypeFont:
    """Pillow face at an integer pixel size; cached because loading re-reads the collection header."""
    return ImageFont.truetype(str(FONT_PATH), size=size_px, index=_FACE_INDEX)
