"""Every format read back with real decoders: zxing-cpp for the symbols, pdfium for the PDF."""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import replace

import pypdfium2 as pdfium
import pytest
import zxingcpp
from labels_fixtures import RECIPIENT, URL, WAYBILL, make_label
from PIL import Image
from zpl_graphics import decode_graphic

from labels import DEFAULT_DPI, SIZES, SUPPORTED_DPI, LabelData, content_hash, render_pdf, render_png, render_zpl
from labels import text as fonts
from labels.layout import Barcode, Box, Text, Zone, compose, dot_grid, static_primitives, zones

SECRETS = ("欧阳娜娜", "13803712345", "501室", "2单元", "娜娜", "0371234")


def decode(image: Image.Image) -> dict[str, str]:
    found = {r.format.name: r.text for r in zxingcpp.read_barcodes(image.convert("L"))}
    return {"barcode": found.get("Code128", ""), "qr": found.get("QRCode", "")}


def pdf_pages(data: bytes, dpi: int = 203) -> list[Image.Image]:
    doc = pdfium.PdfDocument(data)
    return [page.render(scale=dpi / 72).to_pil() for page in doc]


def pdf_texts(data: bytes) -> list[str]:
    doc = pdfium.PdfDocument(data)
    return [page.get_textpage().get_text_range() for page in doc]


def ink(image: Image.Image, zone_name: str, size: str, dpi: int) -> int:
    z = zones(size)[zone_name]
    k = dpi / 25.4
    # One millimetre inside the zone, so that the rules around it do not count as ink.
    box = (round((z.x + 1) * k), round((z.y + 1) * k), round((z.x + z.w - 1) * k), round((z.y + z.h - 1) * k))
    grey = image.convert("L").crop(box)
    return sum(grey.histogram()[:128])


# --- PNG -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("size", list(SIZES))
def test_png_decodes_to_waybill_and_url(size: str, dpi: int) -> None:
    data = render_png(make_label(), size=size, dpi=dpi)
    image = Image.open(io.BytesIO(data))
    s = SIZES[size]
    assert image.size == (round(s.width * dpi / 25.4), round(s.height * dpi / 25.4))
    assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
    assert decode(image) == {"barcode": WAYBILL, "qr": URL}


@pytest.mark.parametrize("size", list(SIZES))
def test_qr_with_fixed_mask_decodes_for_urls_of_any_length(size: str) -> None:
    """The QR version is computed from the URL length and the mask is fixed: check short to long URLs."""
    for length in (8, 13, 24, 40, 64, 90):
        url = f"https://zwfw.example.gov.cn/t/{'K7Q2M4X7V3K9T' * 7}"[: 30 + length]
        image = Image.open(io.BytesIO(render_png(make_label(url=url), size=size, dpi=203)))
        assert decode(image) == {"barcode": WAYBILL, "qr": url}, length


def test_png_has_no_personal_data_in_text_or_metadata() -> None:
    data = render_png(make_label())
    image = Image.open(io.BytesIO(data))
    assert not image.text
    for secret in SECRETS:
        assert secret.encode() not in data


@pytest.mark.parametrize("size", list(SIZES))
def test_text_drawn_on_every_format_is_masked(size: str) -> None:
    """All three formats draw the same primitives, so checking them covers PNG and ZPL pixels too."""
    drawn = " ".join(p.text for p in (*static_primitives(size), *compose(make_label(), size))
                     if isinstance(p, Text))
    for secret in SECRETS:
        assert secret not in drawn
    assert "欧阳**" in drawn and "138******45" in drawn and "*单元***室" in drawn


def test_verification_code_cannot_reach_a_label() -> None:
    assert not any("verification" in f or "code" == f for f in LabelData.__dataclass_fields__)


def test_direction_is_unmistakable() -> None:
    for kind, word in (("intake", "接件"), ("delivery", "送达")):
        texts = [p for p in compose(make_label(kind=kind)) if isinstance(p, Text) and p.white]
        assert [t.text for t in texts] == [word]
        assert texts[0].size >= 8  # millimetres: the largest text on the label


# --- PDF -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch() -> list[LabelData]:
    return [
        make_label(waybill=f"12957805{n:05d}", url=f"http://127.0.0.1:8080/t/K7Q2M4X7V3K{n:02d}",
                   kind="intake" if n % 2 else "delivery")
        for n in range(1, 6)
    ]


@pytest.mark.parametrize("size", list(SIZES))
def test_pdf_decodes_at_203_dpi(size: str) -> None:
    data = render_pdf([make_label()], size=size)
    (page,) = pdf_pages(data)
    assert decode(page) == {"barcode": WAYBILL, "qr": URL}


def test_pdf_page_size_is_the_label_size() -> None:
    for size, s in SIZES.items():
        page = pdfium.PdfDocument(render_pdf([make_label()], size=size))[0]
        assert page.get_size() == pytest.approx((s.width * 72 / 25.4, s.height * 72 / 25.4), abs=0.01)


def test_multi_page_pdf_keeps_the_given_order(batch: list[LabelData]) -> None:
    data = render_pdf(reversed(batch))  # any iterable, consumed once
    pages = pdf_pages(data)
    assert len(pages) == len(batch)
    expected = [(label.waybill_no, label.tracking_url) for label in reversed(batch)]
    assert [(d["barcode"], d["qr"]) for d in map(decode, pages)] == expected


def test_pdf_embeds_a_truetype_subset() -> None:
    data = render_pdf([make_label()])
    assert b"/FontFile2" in data
    assert re.search(rb"/BaseFont\s*/[A-Z]{6}\+WenQuanYiMicroHei", data)
    assert b"STSong" not in data
    # Subset: far smaller than the 5 MB collection it comes from.
    assert len(data) < 200_000


def test_pdf_text_shows_without_system_fonts() -> None:
    """pdfium here has no CJK font: ink in the CJK-only zones can only come from the embedded subset."""
    data = render_pdf([make_label()])
    (page,) = pdf_pages(data)
    for zone in ("destination", "recipient", "sender", "details", "carrier", "recipient_tag", "sender_tag"):
        assert ink(page, zone, "100x150", 203) > 150, zone
    # The direction is white on black: white glyph pixels inside the inverted box.
    d = zones("100x150")["direction"]
    k = 203 / 25.4
    box = page.convert("L").crop((round((d.x + 1) * k), round((d.y + 1) * k),
                                  round((d.x + d.w - 1) * k), round((d.y + d.h - 1) * k)))
    assert sum(box.histogram()[129:]) > 150


def test_pdf_text_is_masked_and_searchable() -> None:
    (text,) = pdf_texts(render_pdf([make_label()]))
    for secret in SECRETS:
        assert secret not in text
    compact = text.replace(" ", "").replace("\r", "").replace("\n", "")
    for shown in ("欧阳**", "138******45", "郑州上街", "451-A07", "410106-2018-00095", "综合受理3号窗口",
                  "上街区市场监督管理局", "送达", "2025-11-2614:30", WAYBILL):
        assert shown in compact


def test_pdf_streams_are_compressed_and_output_deterministic(batch: list[LabelData]) -> None:
    first = render_pdf(batch)
    assert first == render_pdf(batch)
    streams = re.findall(rb"<<([^\n]*)>>\nstream\n(.*?)\nendstream", first, re.S)
    assert streams
    for entries, raw in streams:
        assert b"/Filter /FlateDecode" in entries
        assert int(re.search(rb"/Length (\d+)", entries).group(1)) == len(raw)  # type: ignore[union-attr]
        zlib.decompress(raw)


def test_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError):
        render_pdf([])
    with pytest.raises(ValueError):
        render_zpl([])


# --- ZPL -------------------------------------------------------------------------------------------------

GFA = re.compile(r"\^FO(\d+),(\d+)(\^FR)?\^GFA,(\d+),(\d+),(\d+),([^\^]+)\^FS")


def gfa_images(block: str) -> list[tuple[int, int, Image.Image]]:
    out = []
    for x, y, _rev, total, _, row, hexdata in GFA.findall(block):
        raw = decode_graphic(hexdata, int(total), int(row))
        width, height = int(row) * 8, int(total) // int(row)
        out.append((int(x), int(y), Image.frombytes("1", (width, height), raw)))
    return out


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dpi", [203, 300])
def test_zpl_commands_carry_the_waybill_and_url(batch: list[LabelData], size: str, dpi: int) -> None:
    zpl = render_zpl(batch, size, dpi=dpi)
    blocks = re.findall(r"\^XA(.*?)\^XZ", zpl, re.S)
    assert len(blocks) == len(batch)
    for block, label in zip(blocks, batch, strict=True):
        assert re.findall(r"\^BC[^\^]*\^FD(\d+)\^FS", block) == [label.waybill_no]
        assert re.findall(r"\^BQN,2,\d+\^FDMA,([^\^]+)\^FS", block) == [label.tracking_url]
        images = gfa_images(block)
        assert len(images) >= 15
        # Every text bitmap has ink (1 bits are printed dots in ZPL).
        for _, _, image in images:
            assert image.getbbox() is not None
        assert f"^PW{round(SIZES[size].width * dpi / 25.4)}" in block


def test_zpl_text_bitmaps_render_the_label_text() -> None:
    """Paint the ^GFA fields onto a page: the CJK zones get ink, and nothing personal is in the stream."""
    zpl = render_zpl([make_label()], "100x150")
    page = Image.new("1", (799, 1199), 1)
    for x, y, image in gfa_images(zpl):
        page.paste(0, (x, y), image)
    for zone in ("destination", "recipient", "sender", "details", "carrier"):
        assert ink(page, zone, "100x150", 203) > 150, zone
    for secret in SECRETS:
        assert secret not in zpl
    assert "STSong" not in zpl and "^A" not in zpl.replace("^XA", "")


# --- caching ---------------------------------------------------------------------------------------------


def test_content_hash_names_the_output() -> None:
    label = make_label()
    h = content_hash(label, "pdf")
    assert h == content_hash(make_label(), "pdf")
    assert len(h) == 64
    assert h != content_hash(label, "png")
    assert h != content_hash(label, "pdf", "76x130")
    assert content_hash(label, "png", dpi=203) != content_hash(label, "png", dpi=300)
    later = replace(label, printed_at=label.printed_at.replace(hour=15))
    assert content_hash(later, "pdf") != h  # the print time is printed, so it is part of the content
    moved = replace(label, recipient=replace(RECIPIENT, address="济源路9号"))
    assert content_hash(moved, "pdf") != h
    with pytest.raises(ValueError):
        content_hash(label, "svg")


def test_rendering_is_deterministic_for_the_cache() -> None:
    assert render_png(make_label()) == render_png(make_label())
    assert render_zpl([make_label()]) == render_zpl([make_label()])


def test_invalid_label_data_is_rejected() -> None:
    with pytest.raises(ValueError):
        make_label(waybill="12345")
    with pytest.raises(ValueError):
        make_label(kind="return")
    with pytest.raises(ValueError):
        make_label(printed_at=make_label().printed_at.replace(tzinfo=None))
    with pytest.raises(ValueError):
        render_png(make_label(), dpi=150)
    with pytest.raises(ValueError):
        render_pdf([make_label()], size="A4")


@pytest.mark.parametrize("size", list(SIZES))
def test_crowded_label_stays_inside_its_zones_and_scans(size: str) -> None:
    """Many cases and a long address: text shrinks or is cut with …, never runs over the codes."""
    cases = tuple((f"410106-2018-{n:05d}", "食品经营许可证核发（含网络经营）") for n in range(95, 103))
    long_address = "新安路街道济源路8号院3号楼2单元501室（东门进，物业中心对面，工作日白天有人代收）" * 2
    label = make_label(cases=cases, recipient=replace(RECIPIENT, address=long_address),
                       contents=(("食品经营许可证正本", 1), ("食品经营许可证副本", 1), ("告知承诺书", 2)))
    s = SIZES[size]
    for p in compose(label, size):
        if isinstance(p, Text):
            assert p.size >= 2.0
            assert 0 <= p.x and p.x + fonts.text_width(p.text, p.size) <= s.width - 2 + 0.01, p.text
            assert 0 < p.y <= s.height - 2, p.text
    drawn = "".join(p.text for p in compose(label, size) if isinstance(p, Text))
    # Every case is either listed or counted.
    assert "共8件办件" in drawn or all(case_no in drawn for case_no, _ in cases)
    assert "501室" not in drawn and "2单元" not in drawn
    image = Image.open(io.BytesIO(render_png(label, size=size, dpi=203)))
    assert decode(image) == {"barcode": WAYBILL, "qr": URL}
    (page,) = pdf_pages(render_pdf([label], size=size))
    assert decode(page) == {"barcode": WAYBILL, "qr": URL}


def test_a_label_rendered_without_a_dpi_is_the_one_at_the_default_dpi() -> None:
    label = make_label()
    assert render_png(label) == render_png(label, dpi=DEFAULT_DPI)
    assert render_zpl([label]) == render_zpl([label], dpi=DEFAULT_DPI)
    assert content_hash(label, "zpl") == content_hash(label, "zpl", dpi=DEFAULT_DPI)


@pytest.mark.parametrize("dpi", [150, 600])
def test_the_raster_formats_refuse_a_dpi_outside_the_supported_ones(dpi: int) -> None:
    assert dpi not in SUPPORTED_DPI
    for render in (lambda: render_png(make_label(), dpi=dpi), lambda: render_zpl([make_label()], dpi=dpi)):
        with pytest.raises(ValueError, match="dpi must be one of"):
            render()


@pytest.mark.parametrize(("dpi", "grid"), [(203, (799, 1199)), (300, (1181, 1772))])
def test_png_and_zpl_draw_on_the_same_dot_grid_of_the_print_head(dpi: int, grid: tuple[int, int]) -> None:
    assert dot_grid("100x150", dpi) == grid
    assert Image.open(io.BytesIO(render_png(make_label(), size="100x150", dpi=dpi))).size == grid
    zpl = render_zpl([make_label()], size="100x150", dpi=dpi)
    assert f"^PW{grid[0]}\n^LL{grid[1]}\n" in zpl


@pytest.mark.parametrize("size", list(SIZES))
def test_every_box_and_barcode_is_a_zone_inside_the_label(size: str) -> None:
    s = SIZES[size]
    drawn = [p for p in [*static_primitives(size), *compose(make_label(), size)] if isinstance(p, Box | Barcode)]
    assert drawn and all(isinstance(p, Zone) for p in drawn)
    for p in drawn:
        assert 0 <= p.x and p.x + p.w <= s.width and 0 <= p.y and p.y + p.h <= s.height, p
