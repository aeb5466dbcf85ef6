"""The streaming PDF writer: same bytes however it is driven, a well-formed file, every page readable back."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from labels_fixtures import make_label
from PIL import Image

from labels import LabelData, iter_pdf, render_pdf, write_pdf
from labels.text import load_face, truetype_subset


def decode(image: Image.Image) -> tuple[str, str]:
    found = {r.format.name: r.text for r in zxingcpp.read_barcodes(image.convert("L"))}
    return found.get("Code128", ""), found.get("QRCode", "")


def _cjk_pool() -> list[str]:
    """Common CJK characters the vendored font has, in a fixed order."""
    glyphs = load_face().charToGlyph
    return [chr(cp) for cp in range(0x4E00, 0x6000) if cp in glyphs]


def many_labels(n: int) -> Iterator[LabelData]:
    """``n`` labels whose departments together use more than 255 distinct characters: several font subsets."""
    pool = _cjk_pool()
    for i in range(n):
        department = "".join(pool[i * 11 : i * 11 + 11]) + "局"
        yield make_label(
            waybill=f"12957806{i:05d}",
            url=f"http://127.0.0.1:8080/t/K7Q2M4X7V{i:04d}",
            kind="intake" if i % 2 else "delivery",
            department=department,
        )


class Recorder:
    """A sink that keeps every write apart, to see what reached it and when."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_write_pdf_and_iter_pdf_give_the_bytes_of_render_pdf(tmp_path: Path) -> None:
    labels = list(many_labels(30))
    expected = render_pdf(labels)
    path = tmp_path / "batch.pdf"
    with path.open("wb") as out:
        assert write_pdf(iter(labels), "100x150", out) == 30  # a one-shot iterator is enough
    assert path.read_bytes() == expected
    chunks = list(iter_pdf(labels, "100x150", chunk_bytes=4096))
    assert b"".join(chunks) == expected
    pages = [c for c in chunks if b"/FontFile2" not in c and b"xref" not in c]
    assert len(pages) >= 10
    # A chunk is handed out as soon as it holds chunk_bytes: it overshoots by less than one page.
    assert max(map(len, pages)) < 4096 + 20_000
    assert render_pdf(labels) == expected  # deterministic


def test_pages_reach_the_sink_before_the_batch_is_finished() -> None:
    sink = Recorder()
    drawn: list[int] = []

    def labels() -> Iterator[LabelData]:
        for label in many_labels(6):
            # When a label is asked for, the page of the one before it is in the sink already.
            drawn.append(b"".join(sink.writes).count(b"/Type /Page "))
            yield label

    write_pdf(labels(), "100x150", sink)
    assert drawn == [0, 1, 2, 3, 4, 5]
    # The fonts come after the last page, the cross-reference table last of all.
    data = b"".join(sink.writes)
    assert data.rindex(b"/Type /Page ") < data.index(b"/FontFile2") < data.index(b"\nxref\n")


def test_streamed_multi_page_pdf_opens_and_every_page_decodes_to_its_own_label(tmp_path: Path) -> None:
    labels = list(many_labels(12))
    path = tmp_path / "batch.pdf"
    with path.open("wb") as out:
        write_pdf(iter(labels), "100x150", out)
    doc = pdfium.PdfDocument(str(path))
    assert len(doc) == len(labels)
    for page, label in zip(doc, labels, strict=True):
        assert decode(page.render(scale=203 / 72).to_pil()) == (label.waybill_no, label.tracking_url)
        text = page.get_textpage().get_text_range().replace(" ", "").replace("\r", "").replace("\n", "")
        # Text of every subset is extractable through its ToUnicode map.
        assert label.department in text and label.waybill_no in text
    doc.close()


def test_text_spanning_several_font_subsets_is_embedded_with_each_subset() -> None:
    data = render_pdf(many_labels(30))
    fonts = re.findall(rb"/BaseFont /([A-Z]{6})\+WenQuanYiMicroHei ", data)
    assert len(fonts) >= 2  # 330+ distinct characters: more than one 256-code subset
    assert len(set(fonts)) == len(fonts)  # each subset has its own tag
    assert data.count(b"/FontFile2") == data.count(b"/ToUnicode") == len(fonts)


def test_cross_reference_table_points_at_every_object() -> None:
    data = render_pdf(many_labels(5))
    start = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))  # type: ignore[union-attr]
    assert data[start:].startswith(b"xref\n0 ")
    count = int(re.match(rb"xref\n0 (\d+)\n", data[start:]).group(1))  # type: ignore[union-attr]
    assert re.search(rb"trailer\n<< /Size %d /Root 1 0 R" % count, data)
    table = data[start:].split(b"\n", 2)[2]
    entries = [table[i * 20 : (i + 1) * 20] for i in range(count)]
    assert entries[0] == b"0000000000 65535 f \n"
    for number, entry in enumerate(entries[1:], 1):
        assert entry.endswith(b" 00000 n \n"), entry
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number), number


def test_nothing_is_written_for_an_empty_batch_or_an_unknown_size() -> None:
    sink = Recorder()
    with pytest.raises(ValueError):
        write_pdf([], "100x150", sink)
    with pytest.raises(ValueError):
        write_pdf([make_label()], "A4", sink)
    with pytest.raises(ValueError):
        next(iter_pdf([]))
    assert sink.writes == []


def test_font_subsets_made_at_once_in_threads_equal_those_made_alone() -> None:
    """The API renders in a thread pool, and reportlab's subsetter reads the font through a shared position."""
    pool = [ord(ch) for ch in _cjk_pool()]
    sets = [[0, *pool[i * 200 : (i + 1) * 200]] for i in range(8)]
    alone = [truetype_subset(codepoints) for codepoints in sets]
    # Switching threads as often as possible makes an unguarded subsetter fail every time, not now and then.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(len(sets)) as threads:
            runs = [threads.submit(truetype_subset, codepoints) for codepoints in sets * 2]
            together = [run.result() for run in runs]  # re-raises what a thread raised
    finally:
        sys.setswitchinterval(interval)
    assert together == alone * 2


def test_render_pdf_output_is_a_self_contained_bytes_object() -> None:
    data = render_pdf([make_label()])
    assert isinstance(data, bytes)
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    assert pdfium.PdfDocument(io.BytesIO(data)).get_page(0) is not None
