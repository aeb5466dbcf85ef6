"""What people paste from office documents is repaired before it is judged, wherever it sits in the body."""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from logistics.api.errors import from_validation_error
from logistics.api.schemas import WHITESPACE, PartyForm, ShipmentCreate

from support import APPLICANT, HALL, delivery_body, intake_body


def _create(body: dict[str, Any]) -> ShipmentCreate:
    return ShipmentCreate.model_validate(body)


def _problem_errors(body: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        _create(body)
    return from_validation_error(caught.value).errors or []


def test_the_spelled_out_whitespace_class_is_exactly_str_isspace() -> None:
    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert re.findall(f"[{WHITESPACE}]", spaces + "欧阳娜娜0371-68123456") == list(spaces)


def test_a_clean_body_is_taken_as_it_is() -> None:
    spec = _create(delivery_body())
    assert spec.recipient is not None and spec.recipient.model_dump() == {**APPLICANT, "postcode": None}
    assert spec.sender is not None and spec.sender.model_dump() == HALL


def test_stray_and_ideographic_spaces_are_repaired_in_every_part_of_the_body() -> None:
    body = delivery_body(
        department="上街区市场监督管理局\u3000",
        window=" 综合受理3号窗口",
        sender={**HALL, "address": "中心路  132号"},
        cases=[{"case_no": "410106-2018-00095\t", "item_name": "食品经营许可证核发"}],
        contents=[{"name": "食品经营许可证\n正本", "count": 1}],
    )
    spec = _create(body)
    assert (spec.department, spec.window) == ("上街区市场监督管理局", "综合受理3号窗口")
    assert spec.sender is not None and spec.sender.address == "中心路 132号"
    assert spec.cases[0].case_no == "410106-2018-00095"
    assert spec.contents[0].name == "食品经营许可证 正本"


def test_fullwidth_digits_are_repaired_in_case_numbers_and_postcodes() -> None:
    body = intake_body(
        cases=[{"case_no": "４１０１０６-２０１８-００１０７", "item_name": "个体工商户设立登记"}],
        sender={**APPLICANT, "name": "张伟", "postcode": "４５００４１"},
    )
    spec = _create(body)
    assert spec.cases[0].case_no == "410106-2018-00107"
    assert spec.sender is not None and spec.sender.postcode == "450041"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+86 138 0371 2345", "13803712345"),
        ("0086 13803712345", "13803712345"),
        ("138-0371-2345", "13803712345"),
        ("+86-138-0371-2345", "13803712345"),
        ("037168123456", "0371-68123456"),
        ("（0371）68123456", "0371-68123456"),
        ("0371-68123456—801", "0371-68123456-801"),
    ],
)
def test_phones_are_stored_in_one_form(typed: str, stored: str) -> None:
    spec = _create(delivery_body(recipient={**APPLICANT, "phone": typed}))
    assert spec.recipient is not None and spec.recipient.phone == stored


@pytest.mark.parametrize("typed", ["138-0371-23456", "138-0371-234", "0138-0371-2345"])
def test_dashes_make_a_mobile_only_of_eleven_digits_that_are_one(typed: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _create(delivery_body(recipient={**APPLICANT, "phone": typed}))
    assert [e["loc"] for e in caught.value.errors()] == [("recipient", "phone")]


def test_an_empty_postcode_is_no_postcode() -> None:
    spec = _create(delivery_body(recipient={**APPLICANT, "postcode": ""}))
    assert spec.recipient is not None and spec.recipient.postcode is None


def test_the_callers_body_is_never_changed() -> None:
    body = delivery_body(
        window=" 综合受理3号窗口 ",
        recipient={**APPLICANT, "phone": "１３８０３７１２３４５", "postcode": ""},
        cases=[{"case_no": "４１０１０６-２０１８-００１０７", "item_name": "个体工商户设立登记"}],
    )
    before = copy.deepcopy(body)
    _create(body)
    assert body == before  # the raw body is what an Idempotency-Key's hash is taken of


def test_a_bad_phone_and_a_bad_postcode_are_both_reported_in_plain_words() -> None:
    body = delivery_body(recipient={**APPLICANT, "phone": "68123456", "postcode": "45004"}, department="")
    assert _problem_errors(body) == [
        {"field": "department", "message": "String should have at least 1 character"},
        {
            "field": "recipient.phone",
            "message": "must be a mobile number (11 digits, 1[3-9]…) or a landline with area code, "
            "e.g. 0371-68123456",
        },
        {"field": "recipient.postcode", "message": "must be 6 digits"},
    ]


def test_a_nul_character_is_reported_at_its_full_path() -> None:
    body = delivery_body(contents=[{"name": "许可证正本", "count": 1}, {"name": "副本\u0000", "count": 1}])
    assert _problem_errors(body) == [{"field": "contents.1.name", "message": "must not contain the character U+0000"}]


def test_a_value_of_the_wrong_type_is_reported_not_repaired() -> None:
    body = delivery_body(cases=[{"case_no": 410106, "item_name": "食品经营许可证核发"}], sender="上街区政务服务中心")
    fields = [e["field"] for e in _problem_errors(body)]
    assert fields == ["cases.0.case_no", "sender"]


def test_the_applicants_own_form_is_repaired_like_a_create() -> None:
    party = PartyForm.model_validate({**APPLICANT, "name": " 欧阳 娜娜", "phone": "138 0371 2345", "postcode": ""})
    assert (party.name, party.phone, party.postcode) == ("欧阳 娜娜", "13803712345", None)
