"""The PDF file layer: numbered objects written to a sink as soon as they exist, the cross-reference table last.

A label batch can run to thousands of pages, so an object is forgotten once written: all that is kept of it is its
byte offset (eight bytes in an array) for the cross-reference table. Numbers can be reserved before their object
is written, because what every page points to (the page tree, the fonts) can only be written once all pages are
known. The output is deterministic: no dates, and the file identifier is a digest of the bytes written.

Methods that write much at once (the cross-reference table, the page tree) are generators that pause every few
hundred lines, so that a caller streaming the output can take the bytes written so far and keep its buffer small.
"""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections.abc import Iterator
from typing import Protocol

__all__ = ["PdfWriter", "Sink", "text_string"]

# A comment of non-ASCII bytes on the second line tells transfer programs the file is binary (PDF 32000-1, 7.5.2).
_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
_LINES_PER_PAUSE = 512
# Level 6 is zlib's default; higher levels cost twice the time for 1-2 % on label streams.
_DEFLATE_LEVEL = 6


class Sink(Protocol):
    """Where the PDF goes: a binary file, a buffer, or anything with ``write(bytes)``."""

    def write(self, data: bytes, /) -> object: ...


def text_string(value: str) -> bytes:
    """A PDF text string (document title and the like): UTF-16BE with its byte-order mark, as hex."""
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode("ascii") + b">"


class PdfWriter:
    """Writes one PDF file to ``sink``: the header at once, objects as they are given, the trailer in :meth:`finish`."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        # Index = object number. Object 0 is the head of the free list; 0 elsewhere means "reserved, not written".
        self._offsets = array("Q", [0])
        self._position = 0
        self._digest = hashlib.md5(usedforsecurity=False)
        self._emit(_HEADER)

    def _emit(self, data: bytes) -> None:
        self._sink.write(data)
        self._digest.update(data)
        self._position += len(data)

    def reserve(self) -> int:
        """A new object number, to refer to before the object is written with :meth:`write_object`."""
        self._offsets.append(0)
        return len(self._offsets) - 1

    def _begin(self, number: int) -> None:
        if not 0 < number < len(self._offsets):
            raise ValueError(f"object {number} was not reserved")
        if self._offsets[number]:
            raise ValueError(f"object {number} is written already")
        self._offsets[number] = self._position

    def write_object(self, number: int, body: bytes) -> None:
        """Write object ``number`` (reserved earlier) with ``body``, e.g. ``b"<< /Type /Catalog ... >>"``."""
        self._begin(number)
        self._emit(b"%d 0 obj\n%b\nendobj\n" % (number, body))

    def write_stream(self, number: int, entries: bytes, data: bytes) -> None:
        """Write stream object ``number`` deflated; ``entries`` are its dictionary's entries but Length and Filter."""
        data = zlib.compress(data, _DEFLATE_LEVEL)
        entries = (entries + b" /Filter /FlateDecode").strip()
        self.write_object(number, b"<< %b /Length %d >>\nstream\n%b\nendstream" % (entries, len(data), data))

    def add_object(self, body: bytes) -> int:
        number = self.reserve()
        self.write_object(number, body)
        return number

    def add_stream(self, entries: bytes, data: bytes) -> int:
        number = self.reserve()
        self.write_stream(number, entries, data)
        return number

    def write_page_tree(self, number: int, kids: array[int]) -> Iterator[None]:
        """The root Pages object ``number`` listing ``kids`` (page object numbers) in reading order.

        One flat node: every page was already written pointing at ``number`` as its parent, and a flat Kids array
        is valid at any length (PDF 32000-1, 7.7.3.2).
        """
        self._begin(number)
        self._emit(b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (number, len(kids)))
        for start in range(0, len(kids), _LINES_PER_PAUSE):
            self._emit(b"".join(b"\n%d 0 R" % kid for kid in kids[start : start + _LINES_PER_PAUSE]))
            yield
        self._emit(b"\n] >>\nendobj\n")

    def finish(self, root: int, info: int) -> Iterator[None]:
        """The cross-reference table and the trailer naming the catalog ``root`` and the ``info`` dictionary."""
        missing = [n for n in range(1, len(self._offsets)) if not self._offsets[n]]
        if missing:
            raise ValueError(f"objects reserved but never written: {missing[:10]}")
        # Taken before the table is written: the identifier names the document's content.
        file_id = self._digest.hexdigest().encode("ascii")
        table_at = self._position
        count = len(self._offsets)
        # Every entry is exactly 20 bytes, end of line included (7.5.4).
        self._emit(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        for start in range(1, count, _LINES_PER_PAUSE):
            lines = self._offsets[start : start + _LINES_PER_PAUSE]
            self._emit(b"".join(b"%010d 00000 n \n" % offset for offset in lines))
            yield
        self._emit(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%b> <%b>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (count, root, info, file_id, file_id, table_at)
        )
