"""Every wording the EMS simulator can send for a signer class is read back as that class by our classifier, and
the code-checked ones as verified (the simulator's table and carriers/ems/signers.csv must agree)."""

from __future__ import annotations

import itertools

import pytest

from carriers.ems.signers import classify
from carriers.simulator.parcels import ROADS, SIGNER_TEXTS, VILLAGES

CASES = [(cls, checked, text) for (cls, checked), texts in SIGNER_TEXTS.items() for text in texts]


@pytest.mark.parametrize(("signer_class", "checked", "template"), CASES)
def test_the_simulators_wording_is_read_as_the_class_it_was_drawn_for(
    signer_class: str, checked: bool, template: str
) -> None:
    for road, village, number in itertools.product(ROADS, VILLAGES, ("1", "91", "199")):
        fill = {"courier": "高静", "courier_phone": "139****8417", "receiver": "欧阳娜娜", "city": "郑州市",
                "county": "上街区", "road": road, "number": number, "village": village}  # fmt: skip
        signer = classify(template.format_map(fill))
        assert (signer.cls, signer.code_checked) == (signer_class, checked), template.format_map(fill)
