"""The CJK font inside one PDF: text turned into one-byte codes of TrueType subsets, the subsets embedded at the end.

A simple TrueType font addresses at most 256 glyphs, so the characters a document uses are numbered in the order
they first appear, 255 to a subset (code 0 of each is the font's missing-glyph box). Which characters a batch
uses is known only after its last page, so the subsets are written after the pages; what is kept until then is
one small entry per distinct character, bounded by the font (~30,000 glyphs), never by the number of pages.

Each subset is a ``/TrueType`` font with its glyph outlines (``FontFile2``), the advance widths the layout measured
with, and a ``ToUnicode`` map so that text can be searched and copied. Subset tags are a digest of the characters,
so equal documents get equal bytes and two different subsets never share a name, even on a printer that caches
fonts across jobs by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from labels import text as fonts
from labels.pdfwriter import PdfWriter

__all__ = ["FontSubsets"]

_CODES_PER_SUBSET = 256
# PDF font descriptor flag "symbolic" (PDF 32000-1, table 123): glyphs are looked up through the font's own cmap,
# code by code, which is what a subset numbered in order of use needs. "Nonsymbolic" is its opposite.
_SYMBOLIC = 1 << 2
_NONSYMBOLIC = 1 << 5
# A ToUnicode section holds at most 100 mappings (PDF 32000-1, 9.10.3).
_BFCHAR_BLOCK = 100


def _num(v: float) -> bytes:
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return (s if s not in ("", "-0") else "0").encode("ascii")


def _tag(codepoints: list[int]) -> bytes:
    digest = hashlib.sha256(",".join(map(str, codepoints)).encode("ascii")).digest()
    return bytes(65 + b % 26 for b in digest[:6])


def _to_unicode(codepoints: list[int]) -> bytes:
    entries = [(code, cp) for code, cp in enumerate(codepoints) if code]
    lines = [
        b"/CIDInit /ProcSet findresource begin",
        b"12 dict begin",
        b"begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Adobe-Identity-UCS def",
        b"/CMapType 2 def",
        b"1 begincodespacerange",
        b"<00> <FF>",
        b"endcodespacerange",
    ]
    for start in range(0, len(entries), _BFCHAR_BLOCK):
        block = entries[start : start + _BFCHAR_BLOCK]
        lines.append(b"%d beginbfchar" % len(block))
        lines.extend(b"<%02X> <%b>" % (code, chr(cp).encode("utf-16-be").hex().upper().encode()) for code, cp in block)
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines)


class FontSubsets:
    """The subsets of one document. Resource names are ``/F0``, ``/F1``, … in the order the subsets were opened."""

    def __init__(self) -> None:
        face = fonts.load_face()
        self._glyphs = face.charToGlyph
        # Character → subset × 256 + code; the missing-glyph code 0 of subset 0 for characters the font lacks.
        self._codes: dict[str, int] = {}
        # Per subset, code → Unicode code point (code 0 is the missing glyph, written as code point 0).
        self._subsets: list[list[int]] = []

    def _assign(self, ch: str) -> int:
        cp = ord(ch)
        if cp not in self._glyphs:
            if not self._subsets:
                self._subsets.append([0])
            n = 0
        else:
            if not self._subsets or len(self._subsets[-1]) == _CODES_PER_SUBSET:
                self._subsets.append([0])
            subset = self._subsets[-1]
            n = (len(self._subsets) - 1) * _CODES_PER_SUBSET + len(subset)
            subset.append(cp)
        self._codes[ch] = n
        return n

    def encode(self, text: str) -> list[tuple[int, bytes]]:
        """``text`` as runs of (subset, codes); consecutive characters of one subset share a run."""
        codes = self._codes
        numbers = [codes[ch] if ch in codes else self._assign(ch) for ch in text]
        runs: list[tuple[int, bytes]] = []
        start = 0
        for i in range(1, len(numbers) + 1):
            if i == len(numbers) or numbers[i] >> 8 != numbers[start] >> 8:
                runs.append((numbers[start] >> 8, bytes(n & 0xFF for n in numbers[start:i])))
                start = i
        return runs

    def write(self, writer: PdfWriter, font_dict: int) -> Iterator[None]:
        """Every subset's objects, then ``font_dict`` (reserved earlier, named by the pages' resources).

        Pauses after each subset: a subset is a few hundred kilobytes of glyph outlines.
        """
        face = fonts.load_face()
        name = face.name if isinstance(face.name, bytes) else str(face.name).encode("ascii")
        flags = (int(face.flags) & ~_NONSYMBOLIC) | _SYMBOLIC
        bbox = b" ".join(_num(v) for v in face.bbox)
        descriptor_entries = (
            b"/Flags %d /FontBBox [%b] /ItalicAngle %b /Ascent %b /Descent %b /CapHeight %b /StemV %b /MissingWidth %b"
            % (
                flags,
                bbox,
                _num(face.italicAngle),
                _num(face.ascent),
                _num(face.descent),
                _num(face.capHeight),
                _num(face.stemV),
                _num(face.defaultWidth),
            )
        )
        widths_of = face.charWidths
        default = face.defaultWidth
        entries: list[bytes] = []
        for index, codepoints in enumerate(self._subsets):
            base = _tag(codepoints) + b"+" + name
            program = fonts.truetype_subset(codepoints)
            font_file = writer.add_stream(b"/Length1 %d" % len(program), program)
            descriptor = writer.add_object(
                b"<< /Type /FontDescriptor /FontName /%b %b /FontFile2 %d 0 R >>"
                % (base, descriptor_entries, font_file)
            )
            to_unicode = writer.add_stream(b"", _to_unicode(codepoints))
            widths = b" ".join(_num(widths_of.get(cp, default)) for cp in codepoints)
            font = writer.add_object(
                b"<< /Type /Font /Subtype /TrueType /BaseFont /%b /FirstChar 0 /LastChar %d /Widths [%b] "
                b"/FontDescriptor %d 0 R /ToUnicode %d 0 R >>"
                % (base, len(codepoints) - 1, widths, descriptor, to_unicode)
            )
            entries.append(b"/F%d %d 0 R" % (index, font))
            yield
        writer.write_object(font_dict, b"<< %b >>" % b" ".join(entries))
