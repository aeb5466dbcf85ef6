"""Multi-page PDF labels: vector barcode and QR, the CJK font embedded as TrueType subsets, streamed page by page.

The hall prints whole batches (``POST /v1/labels``, ``logistics labels print``), so a batch is written to its sink
as it is drawn: each page's content is deflated and written as soon as the page is finished, and memory stays
the same whether the batch has 10 labels or 10,000. What only the last page can tell — which characters were
used, hence the font subsets, and the list of pages — is written after it (see :mod:`labels.pdfwriter` and
:mod:`labels.pdffont`).

* the frame, rules and captions shared by all labels of a size are one Form XObject, written once per document
  and drawn by every page;
* the QR code and the barcode are written as raw path operators in module units (a ``cm`` transform scales
  them), so each module run costs a few bytes and no Python object.

Object numbers are fixed up front for what every page refers to: 1 catalog, 2 page tree, 3 document info,
4 font dictionary, 5 page resources, 6 the shared form; then each page's content stream and page object.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Generator, Iterable, Iterator
from itertools import chain

from labels.barcode import QUIET_MODULES, code128_bars, code128_width
from labels.layout import DEFAULT_DPI, DEFAULT_SIZE, Barcode, Box, Primitive, QRCode, Text, compose, label_size
from labels.layout import static_primitives as _static
from labels.model import LabelData
from labels.pdffont import FontSubsets
from labels.pdfwriter import PdfWriter, Sink, text_string
from labels.qr import dark_runs, qr_matrix

__all__ = ["CHUNK_BYTES", "iter_pdf", "render_pdf", "write_pdf"]

PT_PER_MM = 72 / 25.4
# Module widths are whole dots of a 203-dpi head, the most common thermal printer: a vector module of
# 2.4 dots would print as 2 or 3 and widen or narrow bars unevenly.
DOT_MM = 25.4 / DEFAULT_DPI
_MAX_BAR_MODULE_DOTS = 3
_QR_QUIET = 4
# What iter_pdf hands out at a time: a few pages, large enough that a network write per chunk is cheap.
CHUNK_BYTES = 64 * 1024
_TITLE = "面单"
_CREATOR = "gov-logistics labels"
_FORM = "L"  # the shared form's resource name


def _n(v: float) -> str:
    # Two decimals of a point is 0.007 mm, far below a printer dot; shorter operators, smaller files.
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


class _Page:
    """Turns primitives of one page size into content-stream operators (PDF y axis upwards, points)."""

    def __init__(self, fonts: FontSubsets, height_mm: float) -> None:
        self.fonts = fonts
        self.h = height_mm
        self.ops: list[str] = []
        # The font and size last set with Tf: text state survives BT/ET, so it is set again only on a change.
        self.font: tuple[int, str] | None = None

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

    def content(self) -> bytes:
        return "\n".join(self.ops).encode("ascii")

    def text(self, p: Text) -> None:
        size = _n(p.size * PT_PER_MM)
        ops = [f"BT {_n(p.x * PT_PER_MM)} {_n((self.h - p.y) * PT_PER_MM)} Td"]
        for subset, codes in self.fonts.encode(p.text):
            if (subset, size) != self.font:
                ops.append(f"/F{subset} {size} Tf")
                self.font = (subset, size)
            ops.append(f"<{codes.hex()}> Tj")
        ops.append("ET")
        if p.white:
            ops = ["1 g", *ops, "0 g"]
        self.ops.append(" ".join(ops))

    def box(self, p: Box) -> None:
        x, y, w, h = p.x * PT_PER_MM, (self.h - p.y - p.h) * PT_PER_MM, p.w * PT_PER_MM, p.h * PT_PER_MM
        if p.fill:
            self.ops.append(f"{_n(x)} {_n(y)} {_n(w)} {_n(h)} re f")
        else:
            inset = p.stroke * PT_PER_MM / 2
            self.ops.append(
                f"{_n(p.stroke * PT_PER_MM)} w {_n(x + inset)} {_n(y + inset)} "
                f"{_n(w - 2 * inset)} {_n(h - 2 * inset)} re S"
            )

    def _modules(self, x_mm: float, top_mm: float, module_mm: float, ops: list[str]) -> None:
        # Module space: x to the right, y downwards, one unit per module. q/Q keep the transform to this block.
        m = module_mm * PT_PER_MM
        self.ops.append(f"q {_n(m)} 0 0 {_n(-m)} {_n(x_mm * PT_PER_MM)} {_n((self.h - top_mm) * PT_PER_MM)} cm")
        self.ops.extend(ops)
        self.ops.append("f Q")

    def barcode(self, p: Barcode) -> None:
        modules = code128_width(p.value)
        dots = min(_MAX_BAR_MODULE_DOTS, int(p.w / DOT_MM) // (modules + 2 * QUIET_MODULES))
        module = max(dots, 1) * DOT_MM
        x = p.x + (p.w - modules * module) / 2
        x = round(x / DOT_MM) * DOT_MM
        bar_h = _n(p.h / module)
        self._modules(x, p.y, module, [f"{off} 0 {w} {bar_h} re" for off, w in code128_bars(p.value)])

    def qr(self, p: QRCode) -> None:
        matrix = qr_matrix(p.data)
        n = len(matrix)
        dots = max(1, int(p.size / DOT_MM) // (n + 2 * _QR_QUIET))
        module = dots * DOT_MM
        offset = (p.size - n * module) / 2
        runs = [f"{col} {row} {ln} 1 re" for row, col, ln in dark_runs(matrix)]
        self._modules(p.x + offset, p.y + offset, module, runs)


def _document(labels: Iterable[LabelData], size: str, sink: Sink) -> Generator[None, None, int]:
    """Write the whole document to ``sink``, pausing after each page and each large piece of the end; returns
    the number of pages.

    Nothing reaches the sink before the size is known to be valid and a first label exists, so a caller can
    still answer an error instead of half a file.
    """
    s = label_size(size)
    remaining = iter(labels)
    first = next(remaining, None)
    if first is None:
        raise ValueError("a PDF needs at least one label")
    # The page itself to a ten-thousandth of a point: a printer matches it against its label stock.
    box = f"[0 0 {s.width * PT_PER_MM:.4f} {s.height * PT_PER_MM:.4f}]".encode("ascii")
    fonts = FontSubsets()
    pdf = PdfWriter(sink)
    catalog, tree, info, font_dict, resources, form = (pdf.reserve() for _ in range(6))
    pdf.write_object(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % tree)
    pdf.write_object(info, b"<< /Title %b /Creator %b >>" % (text_string(_TITLE), text_string(_CREATOR)))
    pdf.write_object(resources, b"<< /Font %d 0 R /XObject << /%b %d 0 R >> >>" % (font_dict, _FORM.encode(), form))
    static = _Page(fonts, s.height)
    static.draw(_static(size))
    form_entries = b"/Type /XObject /Subtype /Form /BBox %b /Resources << /Font %d 0 R >>" % (box, font_dict)
    pdf.write_stream(form, form_entries, static.content())
    page_entries = b"/Type /Page /Parent %d 0 R /MediaBox %b /Resources %d 0 R" % (tree, box, resources)
    # Page object numbers, for the page tree: eight bytes a page is all a batch keeps of its pages.
    kids: array[int] = array("Q")
    for label in chain((first,), remaining):
        page = _Page(fonts, s.height)
        page.ops.append(f"/{_FORM} Do")
        page.draw(compose(label, size))
        contents = pdf.add_stream(b"", page.content())
        kids.append(pdf.add_object(b"<< %b /Contents %d 0 R >>" % (page_entries, contents)))
        yield
    yield from fonts.write(pdf, font_dict)
    yield from pdf.write_page_tree(tree, kids)
    yield from pdf.finish(root=catalog, info=info)
    return len(kids)


def write_pdf(labels: Iterable[LabelData], size: str, sink: Sink) -> int:
    """Write all ``labels`` as one PDF to ``sink`` (a binary file or anything with ``write``); returns the pages.

    ``labels`` may be any iterable and is consumed once, one label at a time, so a generator keeps the input
    out of memory too. Each page reaches the sink when it is drawn; the fonts and page tree follow the last.
    If drawing fails midway the sink holds a truncated file: write to a temporary file, or stream to a
    receiver that can tell an aborted transfer. The bytes are deterministic (no dates, no random identifier),
    so equal input gives equal output and :func:`labels.content_hash` can key a cache.
    """
    document = _document(labels, size, sink)
    while True:
        try:
            next(document)
        except StopIteration as done:
            return int(done.value)


class _Chunks:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def iter_pdf(labels: Iterable[LabelData], size: str = DEFAULT_SIZE, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The PDF of :func:`write_pdf` as consecutive chunks of about ``chunk_bytes`` (the last may be shorter).

    For a caller that pulls: an HTTP response writes a chunk, waits for the client, and only then asks for the
    next one, so drawing never runs ahead of the network by more than a chunk. Errors before the first chunk
    (no label, unknown size) are raised by the first ``next()``.
    """
    buffer = _Chunks()
    for _ in _document(labels, size, buffer):
        if buffer.size >= chunk_bytes:
            yield buffer.take()
    if buffer.size:
        yield buffer.take()


def render_pdf(labels: Iterable[LabelData], size: str = DEFAULT_SIZE) -> bytes:
    """All ``labels`` in one PDF held in memory, one page each, in the given order: for single labels and small
    documents. Batches should use :func:`write_pdf` or :func:`iter_pdf`, which produce the same bytes."""
    buffer = io.BytesIO()
    write_pdf(labels, size, buffer)
    return buffer.getvalue()
