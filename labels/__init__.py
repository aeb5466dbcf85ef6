"""Waybill labels (面单) for courier shipments: PDF, PNG and ZPL II, masked per GB/T 41833-2022.

A library: it knows nothing of the app, its database or its queues. The app passes unmasked
:class:`LabelData` in and stores the bytes that come out, keyed by :func:`content_hash`. Batches of PDF labels
are streamed (:func:`write_pdf` to a file, :func:`iter_pdf` in chunks), so their memory does not grow with
the number of labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from labels.layout import DEFAULT_DPI, DEFAULT_SIZE, SIZES, SUPPORTED_DPI
from labels.model import LabelData, LabelParty
from labels.pdf import iter_pdf, render_pdf, write_pdf
from labels.png import render_png
from labels.zpl import render_zpl

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_SIZE",
    "FORMATS",
    "RENDER_VERSIONS",
    "SIZES",
    "SUPPORTED_DPI",
    "LabelData",
    "LabelParty",
    "content_hash",
    "iter_pdf",
    "render_pdf",
    "render_png",
    "render_zpl",
    "write_pdf",
]

FORMATS = ("pdf", "png", "zpl")
# Bump a format's version when the layout, the font or its renderer changes what a label looks like or
# which bytes it is: its cached labels are then rendered again instead of being served as they were. Per
# format, so that a new PDF writer does not throw away every stored PNG and ZPL label. PDF 2: the streaming
# writer of labels.pdfwriter (same look, different bytes).
RENDER_VERSIONS = {"pdf": 2, "png": 1, "zpl": 1}


def content_hash(label: LabelData, fmt: str, size: str = DEFAULT_SIZE, dpi: int | None = None) -> str:
    """SHA-256 (hex) naming the exact bytes that rendering ``label`` in ``fmt`` at ``size`` produces.

    The print time is *included*: it is printed on the label, and renderers are deterministic, so the hash
    identifies one output and a cache can never serve bytes that differ from a fresh rendering. The app
    keeps a label stable by storing the ``printed_at`` it first rendered with and passing it again; a
    reprint with a new time is, rightly, a new label. ``dpi`` matters for PNG and ZPL only (PDF is vector);
    ``None`` means each format's default, :data:`DEFAULT_DPI`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if size not in SIZES:
        raise ValueError(f"unknown label size {size!r}")
    fields = dataclasses.asdict(label)
    fields["printed_at"] = label.printed_at.isoformat()
    key = {
        "v": RENDER_VERSIONS[fmt],
        "fmt": fmt,
        "size": size,
        "dpi": None if fmt == "pdf" else (dpi or DEFAULT_DPI),
        "label": fields,
    }
    canonical = json.dumps(key, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
