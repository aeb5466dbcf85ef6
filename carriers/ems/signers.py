"""Who signed for a delivered EMS parcel, read from the 妥投 (704) event's wording.

EMS states the signer only in free text ("已签收,他人代收:家人,投递员:…", "快件已由【…驿站】代收"). The wording →
class rules are data, ``signers.csv`` beside this module, tried in order: the first rule that matches gives the
class, and its named groups ``name`` and ``relation`` what EMS wrote there. Rows of class ``verified_by_code``
are facts beside the class (the courier checked the 收件人安全码) and are checked on every text. A text no
rule knows is ``unknown``: a wrong class would be worse than none, since the class decides whether personal
service is proven. :func:`log_unknown` records such a text's shape, never the text, so the table can grow.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast, get_args

SignerClass = Literal["addressee", "family", "unit_mailroom", "locker_or_station", "other", "unknown"]
CLASSES: tuple[str, ...] = get_args(SignerClass)
VERIFIED = "verified_by_code"
# What a name or relation may look like once trimmed: EMS fills the slot with "++", phones or nothing at all.
_PUNCTUATION = " \t,.;:!?+*-_/\\|()[]{}<>【】'\"~`"
_NOT_A_NAME = frozenset({"本人", "他人", "家人", "签收", "代收", "已签收"})
_HAS_WORD = re.compile(r"[\u3400-\u9fffA-Za-z]")
_MASKED_PHONE = re.compile(r"1\d{2}\*{4}\d{4}|\d{7,}")
_MAX_FIELD = 40

log = logging.getLogger("carriers.ems.signers")


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    kind: str  # a SignerClass, or VERIFIED
    note: str


@dataclass(frozen=True, slots=True)
class Signer:
    """The signer as the carrier's text states it; ``name`` and ``relation`` exactly as EMS wrote them."""

    cls: SignerClass
    name: str | None = None
    relation: str | None = None
    code_checked: bool = False  # the text says the 收件人安全码 was checked at the door


def _load() -> tuple[Rule, ...]:
    text = resources.files(__package__).joinpath("signers.csv").read_text(encoding="utf-8")
    rules: list[Rule] = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        kind = row["class"].strip()
        # Fail at import rather than let a typo in the table classify parcels.
        if kind not in CLASSES and kind != VERIFIED:
            raise ValueError(f"signers.csv line {n}: unknown class {kind!r}")
        if kind == "unknown":
            raise ValueError(f"signers.csv line {n}: unknown is what no rule matches, not a rule")
        rules.append(Rule(re.compile(row["pattern"]), kind, row["note"]))
    return tuple(rules)


RULES: tuple[Rule, ...] = _load()


def normalise(text: str) -> str:
    """Full-width punctuation (：，；（）) as ASCII and whitespace runs as one space, as the rules expect."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def _field(value: str | None, *, name: bool = False) -> str | None:
    if value is None:
        return None
    value = _MASKED_PHONE.sub("", value).strip(_PUNCTUATION)
    if not value or len(value) > _MAX_FIELD or (name and value in _NOT_A_NAME) or not _HAS_WORD.search(value):
        return None
    return value


def classify(text: str | None) -> Signer:
    """The signer a delivered event's text states; ``unknown`` when no rule of the table matches."""
    if not text:
        return Signer("unknown")
    plain = normalise(text)
    checked = False
    found: Signer | None = None
    for rule in RULES:
        if rule.kind == VERIFIED:
            checked = checked or rule.pattern.search(plain) is not None
            continue
        if found is not None:
            continue
        match = rule.pattern.search(plain)
        if match is not None:
            groups = match.groupdict()
            name, relation = _field(groups.get("name"), name=True), _field(groups.get("relation"))
            found = Signer(cast(SignerClass, rule.kind), name, relation)
    if found is None:
        return Signer("unknown", code_checked=checked)
    return Signer(found.cls, found.name, found.relation, checked)


def shape(text: str) -> str:
    """The text with every letter and digit replaced (汉 for CJK, a for Latin, 9 for digits): which wording it
    is, with no name, phone or address left in it."""
    out: list[str] = []
    for ch in normalise(text)[:80]:
        if "\u3400" <= ch <= "\u9fff":
            out.append("汉")
        elif ch.isdigit():
            out.append("9")
        elif ch.isalpha():
            out.append("a")
        else:
            out.append(ch)
    return "".join(out)


def log_unknown(carrier_code: str | None, text: str | None) -> None:
    """Note a delivered event whose wording the table does not know: its code and shape, never the text (it
    names the signer and the courier; even a digest of so short a text can be reversed by trying names)."""
    body = text or ""
    fields = {"carrier_code": carrier_code, "shape": shape(body), "length": len(body)}
    log.warning("signer_wording_unknown", extra=fields)
