"""ZPL's ASCII compression of text bitmaps: what a printer reads back is exactly the bitmap."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from labels_fixtures import make_label
from zpl_graphics import decode_graphic

from labels import SIZES, render_zpl
from labels.zpl import compress_graphic

GFA = re.compile(r"\^GFA,(\d+),(\d+),(\d+),([^\^]+)\^FS")


def test_repeats_are_counted_and_a_blank_rest_is_a_comma() -> None:
    row = bytes([0xFF] * 10 + [0x0F] + [0x00] * 29)  # 40 bytes: 20 F, 0, F, then 58 zeros
    assert compress_graphic(row, 40) == "gF0F,"


def test_a_row_like_the_one_before_is_a_colon_and_a_blank_row_a_comma() -> None:
    rows = bytes([0x18] * 4 + [0x18] * 4 + [0x00] * 4)
    assert compress_graphic(rows, 4) == "18181818:,"
    assert decode_graphic(compress_graphic(rows, 4), 12, 4) == rows


def test_a_byte_begun_with_ink_is_written_to_its_end_before_the_comma() -> None:
    row = bytes([0xA0, 0x00, 0x00])
    assert compress_graphic(row, 3) == "A0,"
    assert decode_graphic("A0,", 3, 3) == row


def test_runs_longer_than_one_count_are_split() -> None:
    row = bytes([0xEE] * 300)  # 600 digits E
    data = compress_graphic(row, 300)
    assert data == "zYEoGE"  # 419 + 181
    assert decode_graphic(data, 300, 300) == row


@given(
    st.integers(1, 160).flatmap(
        lambda per_row: st.tuples(
            st.just(per_row),
            st.lists(
                st.one_of(
                    st.just(bytes(per_row)),
                    st.binary(min_size=per_row, max_size=per_row),
                    st.sampled_from([0x00, 0xFF, 0x0F, 0xF0, 0x80]).map(lambda b: bytes([b]) * per_row),
                ),
                min_size=1,
                max_size=12,
            ),
        )
    )
)
def test_any_bitmap_reads_back_unchanged(case: tuple[int, list[bytes]]) -> None:
    per_row, rows = case
    bitmap = b"".join(rows)
    data = compress_graphic(bitmap, per_row)
    assert not data.startswith(":")  # a leading colon would announce Z64/B64 data to the printer
    assert decode_graphic(data, len(bitmap), per_row) == bitmap


@pytest.mark.parametrize("dpi", [203, 300])
def test_a_label_sends_its_text_in_about_half_the_plain_hex(dpi: int) -> None:
    zpl = render_zpl([make_label()], "100x150", dpi=dpi)
    fields = GFA.findall(zpl)
    assert len(fields) >= 15
    plain = sum(2 * int(total) for total, _, _, _ in fields)
    sent = sum(len(data) for *_, data in fields)
    assert sent < plain * 0.6  # 0.51 at 203 dpi, 0.42 at 300
    for total, _, per_row, data in fields:
        assert len(decode_graphic(data, int(total), int(per_row))) == int(total)


def test_every_size_decodes() -> None:
    for size in SIZES:
        for total, _, per_row, data in GFA.findall(render_zpl([make_label()], size)):
            decode_graphic(data, int(total), int(per_row))
