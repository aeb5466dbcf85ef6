"""Waybill labels (面单) for courier shipments: PDF, PNG and ZPL II, masked per GB/T 41833-2022.

A library: it knows nothing of the app, its database or its queues. The app passes unmasked
:class:`LabelData` in and stores the bytes that come out, keyed by :func:`content_hash`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from labels.layout import DEFAULT_SIZE, SIZES
from labels.model import LabelData, LabelParty
from labels.pdf import render_pdf
from labels.png import render_png
from labels.zpl import render_zpl

__all__ = [
    "DEFAULT_SIZE",
    "FORMATS",
    "RENDER_VERSION",
    "SIZES",
    "LabelData",
    "LabelParty",
    "content_hash",
    "render_pdf",
    "render_png",
    "render_zpl",
]

FORMATS = ("pdf", "png", "zpl")
# Bump when the layout, the font or a renderer changes what a label looks like: every cached label is
# then rendered again instead of being served in its old look.
RENDER_VERSION = 1


def content_hash(label: LabelData, fmt: str, size: str = DEFAULT_SIZE, dpi: int | None = None) -> str:
    """SHA-256 (hex) naming the exact bytes that rendering ``label`` in ``fmt`` at ``size`` produces.

    The print time is *included*: it is printed on the label, and renderers are deterministic, so the hash
    identifies one output and a cache can never serve bytes that differ from a fresh rendering. The app
    keeps a label stable by storing the ``printed_at`` it first rendered with and passing it again; a
    reprint with a new time is, rightly, a new label. ``dpi`` matters for PNG and ZPL only (PDF is vector);
    ``None`` means each format's default, 203.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if size not in SIZES:
        raise ValueError(f"unknown label size {size!r}")
    fields = dataclasses.asdict(label)
    fields["printed_at"] = label.printed_at.isoformat()
    key = {
        "v": RENDER_VERSION,
        "fmt": fmt,
        "size": size,
        "dpi": None if fmt == "pdf" else (dpi or 203),
        "label": fields,
    }
    canonical = json.dumps(key, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
