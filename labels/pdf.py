"""Multi-page PDF labels: vector barcode and QR, the CJK font embedded as a TrueType subset.

Speed and memory matter here because the hall prints whole batches (``POST /v1/labels``):

* the frame, rules and captions shared by all labels of a size are one Form XObject, drawn once per
  document and referenced by every page;
* the QR code and the barcode are written as raw path operators in module units (a ``cm`` transform
  scales them), so each module run costs a few bytes and no Python object;
* each page's content stream is deflated as soon as the page is finished, so a batch holds compressed
  pages only: memory grows with the output size, never with intermediate per-page objects.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable

from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream
from reportlab.pdfgen.canvas import Canvas

from labels.barcode import QUIET_MODULES, code128_bars, code128_width
from labels.layout import DEFAULT_SIZE, Barcode, Box, Primitive, QRCode, Text, compose, label_size
from labels.layout import static_primitives as _static
from labels.model import LabelData
from labels.qr import dark_runs, qr_matrix
from labels.text import FONT_NAME, register_reportlab_font

__all__ = ["render_pdf"]

PT_PER_MM = 72 / 25.4
# Module widths are whole dots of a 203-dpi head, the most common thermal printer: a vector module of
# 2.4 dots would print as 2 or 3 and widen or narrow bars unevenly.
DOT_MM = 25.4 / 203
_MAX_BAR_MODULE_DOTS = 3
_QR_QUIET = 4


def _n(v: float) -> str:
    # Two decimals of a point is 0.007 mm, far below a printer dot; shorter operators, smaller files.
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


class _Page:
    """Writes primitives of one page size onto a reportlab canvas."""

    def __init__(self, canvas: Canvas, height_mm: float) -> None:
        self.c = canvas
        self.h = height_mm
        self.font_size: float | None = None

    def draw(self, primitives: Iterable[Primitive]) -> None:
        for p in primitives:
            if isinstance(p, Text):
                self.text(p)
            elif isinstance(p, Box):
                self.box(p)
            elif isinstance(p, Barcode):
                self.barcode(p)
            elif isinstance(p, QRCode):
                self.qr(p)

    def text(self, p: Text) -> None:
        c = self.c
        size = p.size * PT_PER_MM
        if size != self.font_size:
            c.setFont(FONT_NAME, size)
            self.font_size = size
        if p.white:
            c.setFillGray(1)
        c.drawString(p.x * PT_PER_MM, (self.h - p.y) * PT_PER_MM, p.text)
        if p.white:
            c.setFillGray(0)

    def box(self, p: Box) -> None:
        x, y, w, h = p.x * PT_PER_MM, (self.h - p.y - p.h) * PT_PER_MM, p.w * PT_PER_MM, p.h * PT_PER_MM
        if p.fill:
            self.c.addLiteral(f"{_n(x)} {_n(y)} {_n(w)} {_n(h)} re f")
        else:
            inset = p.stroke * PT_PER_MM / 2
            self.c.addLiteral(
                f"{_n(p.stroke * PT_PER_MM)} w {_n(x + inset)} {_n(y + inset)} "
                f"{_n(w - 2 * inset)} {_n(h - 2 * inset)} re S"
            )

    def _modules(self, x_mm: float, top_mm: float, module_mm: float, ops: list[str]) -> None:
        # Module space: x to the right, y downwards, one unit per module.
        m = module_mm * PT_PER_MM
        self.c.addLiteral(
            f"q {_n(m)} 0 0 {_n(-m)} {_n(x_mm * PT_PER_MM)} {_n((self.h - top_mm) * PT_PER_MM)} cm\n"
            + "\n".join(ops)
            + "\nf Q"
        )

    def barcode(self, p: Barcode) -> None:
        modules = code128_width(p.value)
        dots = min(_MAX_BAR_MODULE_DOTS, int(p.w / DOT_MM) // (modules + 2 * QUIET_MODULES))
        module = max(dots, 1) * DOT_MM
        x = p.x + (p.w - modules * module) / 2
        x = round(x / DOT_MM) * DOT_MM
        rows = p.h / module
        bar_h = _n(rows)
        self._modules(x, p.y, module, [f"{off} 0 {w} {bar_h} re" for off, w in code128_bars(p.value)])

    def qr(self, p: QRCode) -> None:
        matrix = qr_matrix(p.data)
        n = len(matrix)
        dots = max(1, int(p.size / DOT_MM) // (n + 2 * _QR_QUIET))
        module = dots * DOT_MM
        offset = (p.size - n * module) / 2
        self._modules(p.x + offset, p.y + offset, module, [f"{col} {row} {ln} 1 re" for row, col, ln in
                                                           dark_runs(matrix)])


def _deflate_last_page(canvas: Canvas, page_number: int) -> None:
    """Replace the finished page's text stream by its deflated bytes right away.

    reportlab keeps every page's uncompressed content until ``save()``; compressing at the end would make a
    5,000-label batch hold ~60 MB of operator text. The stream already carries its Filter, so reportlab
    writes the bytes unchanged.
    """
    page = canvas._doc.Pages.pages[-1]
    stream = page.stream
    if not stream:
        return
    raw = stream.encode("utf-8") if isinstance(stream, str) else stream
    contents = PDFStream(PDFDictionary({"Filter": PDFArray([PDFName("FlateDecode")])}), zlib.compress(raw, 6))
    contents.__Comment__ = "page stream"
    page.Contents = contents
    page.stream = None


def render_pdf(labels: Iterable[LabelData], size: str = DEFAULT_SIZE) -> bytes:
    """All ``labels`` in one PDF, one page each, in the given order.

    The output is deterministic (no creation date or random document id), so equal input gives equal
    bytes and :func:`labels.content_hash` can key a cache.
    """
    s = label_size(size)
    register_reportlab_font()
    buf = io.BytesIO()
    canvas = Canvas(
        buf,
        pagesize=(s.width * PT_PER_MM, s.height * PT_PER_MM),
        pageCompression=0,  # pages are deflated one by one in _deflate_last_page
        invariant=1,
        initialFontName=FONT_NAME,
        initialFontSize=10,
    )
    canvas.setTitle("面单")
    canvas.setCreator("gov-logistics labels")
    form = f"static-{size}"
    canvas.beginForm(form)
    _Page(canvas, s.height).draw(_static(size))
    canvas.endForm()
    canvas.setPageCallBack(lambda number: _deflate_last_page(canvas, number))
    pages = 0
    for label in labels:
        canvas.doForm(form)
        _Page(canvas, s.height).draw(compose(label, size))
        canvas.showPage()
        pages += 1
    if pages == 0:
        raise ValueError("render_pdf needs at least one label")
    canvas.save()
    return buf.getvalue()
