"""Code128 of the waybill number as bar/space widths, shared by every format.

reportlab's Code128 encoder picks the code sets (C for digit pairs) and the check digit; the formats only
need its module pattern, so PDF, PNG and ZPL previews show exactly the same symbol.
"""

from __future__ import annotations

from functools import lru_cache

from reportlab.graphics.barcode.code128 import Code128

__all__ = ["QUIET_MODULES", "code128_bars", "code128_width"]

# ISO/IEC 15417 asks for a quiet zone of at least 10 modules on each side.
QUIET_MODULES = 10


# Small on purpose: a batch never repeats a waybill; the cache only spares the second call per label.
@lru_cache(maxsize=64)
def code128_bars(value: str) -> tuple[tuple[int, int], ...]:
    """Bars as (offset, width) in modules from the symbol's left edge."""
    symbol = Code128(value)
    symbol.validate()
    symbol.encode()
    symbol.decompose()
    bars: list[tuple[int, int]] = []
    x = 0
    # reportlab's pattern spells a bar of n modules as the n-th capital letter, a space as the n-th small.
    for c in symbol.decomposed:
        if c.isupper():
            w = ord(c) - 64
            bars.append((x, w))
        else:
            w = ord(c) - 96
        x += w
    return tuple(bars)


def code128_width(value: str) -> int:
    """Symbol width in modules, quiet zones excluded."""
    x, w = code128_bars(value)[-1]
    return x + w
