"""Masking of personal data as GB/T 41833-2022 《快递电子运单》 asks for on waybills.

This is the one implementation: labels, the tracking pages and the log formatter all import it, so a
name masked on a label looks the same on a page and in a log line.

Rules (every masked output has exactly the length of its input: one ``*`` per hidden character, so a
label layout never depends on whether a field was masked):

* **Names** hide at least one character. The surname stays and every later character becomes ``*``:
  张伟 → 张*, 张小伟 → 张**, 欧阳娜娜 → 欧阳** (compound surnames from :data:`COMPOUND_SURNAMES`).
  A compound surname is kept only if at least one character follows it (欧阳 alone → 欧*). A one-character
  name becomes ``*``. Spaces and the middle dot of transliterated names (·) stay, they say nothing.
* **Phones** hide at least six digits. Separators (``-``, spaces, brackets, ``+``) stay where they were.

  - Mobile (11 digits starting with 1, optionally after +86/0086/86): first 3 and last 2 digits stay,
    the middle 6 are hidden: 13803712345 → 138******45.
  - Landline: the area code (0 + 2 or 3 digits: 010 and 02x are three digits long, the rest four) stays;
    of the subscriber number only the last 2 digits stay when it is 8 digits or longer, the last 1 when it
    is 7 digits, none when shorter; an extension is hidden completely:
    0371-68123456 → 0371-******56, 0371-68123456-8001 → 0371-******56-****.
  - Anything else (service numbers, unknown shapes): only the last 2 digits stay, and only when at least
    6 digits are hidden that way; otherwise every digit is hidden.
* **Addresses** keep province, city, district, street, road, street number, compound (院/小区) and
  building (楼/栋/幢/座); the *private tail* — unit (单元), floor (层), room (室/户/房) and a 号 after the
  building — has every digit, Latin letter and Chinese numeral replaced by ``*`` while its marker words
  stay: 济源路8号院3号楼2单元501室 → 济源路8号院3号楼*单元***室. The tail starts at the earliest of: right
  after the first building marker that has a number after it, the first unit/floor/room number, the first
  dashed form; everything after that point is hidden, so remarks with numbers in them are hidden too.
  The common short form ``8号院3-2-501`` (building-unit-room) keeps the building and hides the rest: 8号院3-*-***.
  A number right after a street number with no marker of its own is a room too: 农业路72号501 → 农业路72号***.
  In the countryside the house number after a village or its group (村/组/队/屯/社) is the household:
  马固村3组17号 → 马固村3组**号, 东赵村128号 → 东赵村***号.
  A phone or resident-ID number written anywhere in an address is hidden as in free text (below).
* **Free text** (:func:`mask_text`, for a carrier's event descriptions on public pages): the given names and
  private address tails of the shipment's own parties are hidden wherever they occur, any household written
  out is masked as an address, every resident-ID number (18 characters with X, or 15 digits) is hidden
  completely and every phone-like number is masked as a phone.
"""

from __future__ import annotations

import re

__all__ = [
    "COMPOUND_SURNAMES",
    "mask_address",
    "mask_name",
    "mask_numbers_in",
    "mask_phone",
    "mask_text",
    "remove_numbers_in",
]

MASK = "*"

# Data, not logic: extend the tuple when a new compound surname shows up in a hall's records.
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    """
    欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 独孤 南宫 西门 百里
    呼延 澹台 公冶 太史 申屠 钟离 闻人 赫连 万俟 司空 濮阳 淳于 单于 第五 公羊 宗政 仲孙 东郭 梁丘 左丘
    拓跋 完颜 乐正 壤驷 漆雕 巫马 公西 羊舌 微生 谷梁 段干 子车 亓官 司寇 颛孙 鲜于 闾丘 太叔 即墨 东门
    """.split()
)

_KEEP_IN_NAME = frozenset(" ·•.")


def mask_name(name: str) -> str:
    """Hide everything after the surname; see the module docstring for the rule."""
    name = name.strip()
    if not name:
        return ""
    if len(name) == 1:
        return MASK
    keep = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
    return name[:keep] + "".join(c if c in _KEEP_IN_NAME else MASK for c in name[keep:])


_MOBILE_PREFIXES = ("+86", "0086", "86")


def _digit_positions(text: str) -> list[int]:
    return [i for i, c in enumerate(text) if c.isascii() and c.isdigit()]


def _mobile_start(digits: str) -> int | None:
    """Index in ``digits`` where an 11-digit mobile starts, or None when it is not a mobile."""
    for prefix in ("", *(p.lstrip("+") for p in _MOBILE_PREFIXES)):
        if digits.startswith(prefix):
            rest = digits[len(prefix) :]
            if len(rest) == 11 and rest[0] == "1":
                return len(prefix)
    return None


def _landline_groups(phone: str, pos: list[int]) -> tuple[int, int] | None:
    """(area code digits, subscriber digits) for a landline starting with 0, else None."""
    digits = "".join(phone[i] for i in pos)
    if len(digits) < 10 or digits[0] != "0" or digits[1] == "0":
        return None
    area = 3 if digits[1] in "12" else 4
    # A separator right after 3 or 4 digits wins over the table: the writer knew their area code.
    for n in (3, 4):
        if len(pos) > n and pos[n] != pos[n - 1] + 1:
            area = n
            break
    # The subscriber number runs to the next separator, or to the end when there is none.
    sub = 0
    for k in range(area, len(pos)):
        if k > area and pos[k] != pos[k - 1] + 1 and sub >= 7:
            break
        sub += 1
    if sub > 8 and len(digits) - area > 8:
        # Run together without separators ("037168123456801"): Chinese subscriber numbers are at most 8.
        sub = 8
    return area, sub


def mask_phone(phone: str) -> str:
    """Hide at least six digits of a phone number; see the module docstring for the rule."""
    pos = _digit_positions(phone)
    digits = "".join(phone[i] for i in pos)
    keep: set[int] = set()
    mobile = _mobile_start(digits)
    if mobile is not None:
        keep.update(pos[: mobile + 3])
        keep.update(pos[-2:])
    elif (groups := _landline_groups(phone, pos)) is not None:
        area, sub = groups
        keep.update(pos[:area])
        tail = 2 if sub >= 8 else 1 if sub == 7 else 0
        keep.update(pos[area + sub - tail : area + sub])
    elif len(pos) >= 8:
        keep.update(pos[-2:])
    out = list(phone)
    for i in pos:
        if i not in keep:
            out[i] = MASK
    return "".join(out)


_NUM = r"[0-9A-Za-z０-９一二三四五六七八九十百零〇两甲乙丙丁东西南北]"
# The end of the building: what comes after it identifies one household.
_BUILDING = re.compile(rf"{_NUM}+\s*(?:号楼|号栋|号幢|栋|幢|座|楼(?!层))")
# A unit, floor or room number where no building was written.
_UNIT = re.compile(rf"{_NUM}+\s*(?:单元|层|楼层|室|户|号房|房)")
# 8号501 / 农业路72号 1202: a number right after a street number, with no marker of its own, is a room.
_BARE_ROOM = re.compile(
    r"[0-9０-９]+\s*号\s*[-－—]?\s*(?=[0-9A-Za-z０-９]+(?![0-9A-Za-z０-９]|\s*(?:号|院|栋|幢|座|楼|单元|弄|巷|街|路)))"
)
# 3-2-501 / 3－2－501: building-unit-room in the short form.
_DASHED = re.compile(r"([0-9]+)((?:\s*[-－—]\s*[0-9A-Za-z]+){2,})")
# 马固村3组17号 / 东赵村128号: a village's house number names one household, as a room does in a town.
_RURAL_HOUSE = re.compile(rf"(?:村|组|队|屯|社)\s*(?={_NUM}+\s*号)")
_HIDE = re.compile(_NUM)


def _mask_tail(tail: str) -> str:
    return _HIDE.sub(MASK, tail)


def mask_address(address: str) -> str:
    """Hide the unit, floor and room of a street address; see the module docstring for the rule."""
    # The earliest sign of a household wins: everything after it is hidden, so a repeated or
    # annotated address can never show a room number that a later match would have skipped.
    starts: list[int] = []
    for building in _BUILDING.finditer(address):
        if _HIDE.search(address, building.end()):
            starts.append(building.end())
            break
    unit = _UNIT.search(address)
    if unit is not None:
        starts.append(unit.start())
    bare = _BARE_ROOM.search(address)
    if bare is not None:
        starts.append(bare.end())
    dashed = _DASHED.search(address)
    if dashed is not None:
        starts.append(dashed.start(2))
    rural = _RURAL_HOUSE.search(address)
    if rural is not None:
        starts.append(rural.end())
    # A phone or ID number written into the address field is hidden wherever it stands.
    if not starts:
        return mask_numbers_in(address)
    start = min(starts)
    return mask_numbers_in(address[:start]) + _mask_tail(address[start:])


# Phone-like runs: mobiles (optionally +86), landlines with an area code, bare 7–8 digit subscriber numbers.
_PHONE_LIKE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(?:1[3-9][0-9]{9}|0[0-9]{2,3}[- ]?[0-9]{7,8}|[0-9]{7,8})(?![0-9])")
# Resident ID numbers: 18 characters (the last may be X) and the old 15-digit form, checksum or not.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")


def mask_numbers_in(text: str) -> str:
    """Hide every resident-ID number completely and every phone-like number as :func:`mask_phone` does."""
    text = _RESIDENT_ID.sub(lambda m: MASK * len(m.group(0)), text)
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)


def _given_name(name: str) -> str:
    keep = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
    return name[keep:]


def mask_text(text: str, *, names: tuple[str, ...] = (), addresses: tuple[str, ...] = ()) -> str:
    """Mask a free text (a carrier's event description) for a public page.

    Every given name among ``names`` and every private address tail among ``addresses`` (what
    :func:`mask_address` would hide) is hidden wherever it occurs, then the whole text goes through
    :func:`mask_address` (any household written out in it) and :func:`mask_numbers_in`.
    """
    for name in names:
        name = name.strip()
        given = _given_name(name)
        if len(name) >= 2 and name in text:
            text = text.replace(name, mask_name(name))
        if len(given) >= 2 and given in text:
            text = text.replace(given, MASK * len(given))
    for address in addresses:
        address = address.strip()
        masked = mask_address(address)
        if address and address != masked:
            text = text.replace(address, masked)
            start = next(i for i, (a, b) in enumerate(zip(address, masked, strict=True)) if a != b)
            tail = address[start:]
            if tail in text:
                text = text.replace(tail, masked[start:])
    return mask_numbers_in(mask_address(text))


# Removal, for free text we store (a rating's comment): every phone or ID number goes whole, however it was
# typed — full-width digits, spaces or dashes inside it, +86 in front, the area code in brackets, an extension.
_WIDE = str.maketrans(
    {
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        "Ｘ": "X",
        "ｘ": "x",
        "＋": "+",
        "－": "-",
        "（": "(",
        "）": ")",
        "\u3000": " ",
    }
)
_SEP = r"[ \-—.]?"
_NUMBER_SHAPES = re.compile(
    "|".join(
        (
            # Resident ID: 18 characters (6-8-4 groups may be spaced), or the old 15 digits.
            rf"\d{{6}}{_SEP}\d{{8}}{_SEP}\d{{3}}[\dXx]",
            r"\d{15}",
            # Mobile, optionally +86 / 0086 / 86, written whole or as 3-4-4.
            rf"(?:(?:\+|00)?86{_SEP})?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}",
            # Landline: area code (bracketed or not), 7–8 digit subscriber number, optional extension.
            rf"(?:\(0\d{{2,3}}\)|0\d{{2,3}}){_SEP}\d{{3,4}}{_SEP}\d{{4}}(?:\s*(?:-|转|ext\.?|x)\s*\d{{1,6}})?",
            # A bare subscriber number (the area code left out).
            rf"\d{{3,4}}{_SEP}\d{{4}}",
        )
    )
)
# A digit right before or after a match (or one across a dash: 400-820-5555) means it is part of a longer
# number, a waybill or a service number: no match there.
_BOUNDED = re.compile(rf"(?<![0-9])(?<![0-9][-—.])(?:{_NUMBER_SHAPES.pattern})(?![0-9])(?![-—.][0-9])")
REMOVED = "[号码已隐去]"


def remove_numbers_in(text: str, replacement: str = REMOVED) -> str:
    """``text`` with every phone and resident-ID number replaced by ``replacement`` (full-width digits count).

    Longer numbers that are neither (a 13-digit waybill, a case number like 410106-2018-00095) stay: they
    name a parcel or a case, not a person. A 7–8 digit run is taken for a phone number whatever it is.
    """
    return _BOUNDED.sub(replacement, text.translate(_WIDE))
