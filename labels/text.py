"""The vendored CJK font: where it is, how wide text is, its TrueType subsets for PDF, and its face for Pillow.

Every format measures text with the same advance widths (read once from the font's hmtx table through
reportlab), so line breaks and fitted sizes are identical in PDF, PNG and ZPL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont
from reportlab.pdfbase.ttfonts import TTFontFace

__all__ = [
    "FONT_NAME",
    "FONT_PATH",
    "ascent",
    "descent",
    "load_face",
    "pillow_font",
    "text_width",
    "truetype_subset",
]

FONT_PATH = Path(__file__).parent / "fonts" / "wqy-microhei.ttc"
# Face 0 of the collection is the proportional "WenQuanYi Micro Hei"; face 1 is its monospaced sibling.
_FACE_INDEX = 0
FONT_NAME = "WenQuanYiMicroHei"

_lock = threading.Lock()
_subset_lock = threading.Lock()
_face: TTFontFace | None = None


def load_face() -> TTFontFace:
    """The parsed face, read from the 5 MB collection once per process.

    It holds the glyph map (``charToGlyph``), the advance widths (``charWidths``, 1/1000 em) and the values a
    PDF font descriptor needs; PDF documents keep their own subset state (:mod:`labels.pdffont`), so one face
    serves any number of documents at once.
    """
    global _face
    if _face is None:
        with _lock:
            if _face is None:
                _face = TTFontFace(str(FONT_PATH), subfontIndex=_FACE_INDEX)
    return _face


def truetype_subset(codepoints: Sequence[int]) -> bytes:
    """A TrueType font with the glyphs of ``codepoints``; its cmap maps code ``i`` to the glyph of ``codepoints[i]``.

    reportlab's subsetter reads the collection through one shared file position, so two threads subsetting at
    the same time (the API renders in a thread pool) would read each other's glyph data: one at a time.
    """
    source = load_face()
    with _subset_lock:
        return bytes(source.makeSubset(list(codepoints)))


@lru_cache(maxsize=1)
def _metrics() -> tuple[dict[int, float], float, float, float]:
    face = load_face()
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
