"""GB/T 41833 masking: the hidden part never shows, at least the minimum is hidden, lengths are kept."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labels.privacy import COMPOUND_SURNAMES, mask_address, mask_name, mask_phone

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
DIGIT = st.sampled_from(string.digits)


def digits(n: int, first: str = string.digits) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(first), st.text(string.digits, min_size=n - 1, max_size=n - 1)).map(
        "".join
    )


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张伟", "张*"), ("张小伟", "张**"), ("欧阳娜娜", "欧阳**"), ("司马光", "司马*"), ("欧阳", "欧*"),
     ("张", "*"), ("  李四 ", "李*"), ("", "")],
)
def test_names(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@given(st.text(CJK, min_size=1, max_size=4))
def test_any_name_hides_at_least_one_character_and_keeps_length(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    assert masked.count("*") >= 1
    if len(name) == 1:
        assert masked == "*"
    else:
        assert masked[0] == name[0]
        assert name not in masked
        keep = len(masked) - masked.count("*")
        assert masked[keep:] == "*" * (len(name) - keep)


@given(st.sampled_from(sorted(COMPOUND_SURNAMES)), st.text(CJK, min_size=1, max_size=2))
def test_compound_surnames_stay_given_names_go(surname: str, given_name: str) -> None:
    masked = mask_name(surname + given_name)
    assert masked == surname + "*" * len(given_name)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13803712345", "138******45"),
        ("+86 138-0371-2345", "+86 138-****-**45"),
        ("0371-68123456", "0371-******56"),
        ("0371-68123456-8001", "0371-******56-****"),
        ("(0371)68123456", "(0371)******56"),
        ("010-6812345", "010-******5"),
        ("037168123456", "0371******56"),
        ("12345", "*****"),
    ],
)
def test_phones(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def hidden_digits(original: str, masked: str) -> int:
    return sum(1 for a, b in zip(original, masked, strict=True) if a.isdigit() and b == "*")


@given(digits(11, "1"), st.sampled_from(["", "+86 ", "+86", "0086 "]), st.sampled_from(["", "-", " "]))
def test_mobiles(number: str, prefix: str, sep: str) -> None:
    phone = prefix + number[:3] + sep + number[3:7] + sep + number[7:]
    masked = mask_phone(phone)
    assert len(masked) == len(phone)
    assert hidden_digits(phone, masked) >= 6
    assert number not in masked.replace("-", "").replace(" ", "")
    assert masked.replace(sep, "").replace(" ", "").endswith(number[-2:])
    assert masked[len(prefix) : len(prefix) + 3] == number[:3]


AREA = st.one_of(
    st.just("010"),
    digits(1).map(lambda d: "02" + d),
    st.tuples(st.sampled_from("3456789"), digits(2)).map(lambda t: "0" + t[0] + t[1]),
)


@given(AREA, st.one_of(digits(7, "23456789"), digits(8, "23456789")),
       st.one_of(st.just(""), st.text(string.digits, min_size=1, max_size=5)),
       st.sampled_from(["-", " ", "()"]))
def test_landlines_keep_area_code_and_hide_the_rest(area: str, subscriber: str, ext: str, style: str) -> None:
    if style == "()":
        phone = f"({area}){subscriber}" + (f"-{ext}" if ext else "")
    else:
        phone = f"{area}{style}{subscriber}" + (f"{style}{ext}" if ext else "")
    masked = mask_phone(phone)
    assert len(masked) == len(phone)
    assert area in masked[: len(area) + 1]
    assert hidden_digits(phone, masked) >= 6
    assert subscriber not in masked
    if ext:
        assert masked.endswith("*" * len(ext))


@given(st.text(string.digits + "-", max_size=16))
def test_any_phone_hides_six_digits_or_all(phone: str) -> None:
    masked = mask_phone(phone)
    n = sum(c.isdigit() for c in phone)
    assert len(masked) == len(phone)
    assert hidden_digits(phone, masked) >= min(6, n)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("新安路街道济源路8号院3号楼2单元501室", "新安路街道济源路8号院3号楼*单元***室"),
        ("中心路132号", "中心路132号"),
        ("济源路8号2单元501室", "济源路8号*单元***室"),
        ("济源路8号院3-2-501", "济源路8号院3-*-***"),
        ("金水路99号A座1201室", "金水路99号A座****室"),
        ("中原路1号12楼1203号", "中原路1号12楼****号"),
        ("峡窝镇马固村3组17号", "峡窝镇马固村3组**号"),
        ("东赵村128号", "东赵村***号"),
        ("柿园村二组5号", "柿园村二组*号"),
    ],
)
def test_addresses(address: str, masked: str) -> None:
    assert mask_address(address) == masked


ROADS = st.sampled_from(["济源路", "新安路街道济源路", "中心路", "工业路", "金华路街道登封路"])


@given(ROADS, st.integers(1, 999), st.booleans(), st.integers(1, 40), st.integers(1, 12),
       st.integers(101, 3208), st.sampled_from(["号楼", "栋", "幢"]))
def test_unit_and_room_are_hidden(road: str, number: int, compound: bool, building: int, unit: int, room: int,
                                  building_word: str) -> None:
    street = f"{road}{number}号{'院' if compound else ''}"
    kept = f"{street}{building}{building_word}"
    address = f"{kept}{unit}单元{room}室"
    masked = mask_address(address)
    assert masked == f"{kept}{'*' * len(str(unit))}单元{'*' * len(str(room))}室"
    assert f"{unit}单元" not in masked and f"{room}室" not in masked


@given(ROADS, st.integers(1, 999), st.integers(1, 12), st.integers(101, 3208))
def test_room_hidden_without_building(road: str, number: int, unit: int, room: int) -> None:
    address = f"{road}{number}号{unit}单元{room}室"
    masked = mask_address(address)
    assert masked.startswith(f"{road}{number}号")
    assert str(room) not in masked[len(road) + len(str(number)) + 1 :]
    assert len(masked) == len(address)
