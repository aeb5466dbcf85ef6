"""Every validation rule answers 422 problem+json naming the field; bad input never gets a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from logistics.accounts.clients import Credentials

from support import APPLICANT, HALL, auth, delivery_body, intake_body


def _soon(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("mobile too short", delivery_body(recipient={**APPLICANT, "phone": "1380371234"}), "recipient.phone"),
    ("mobile bad prefix", delivery_body(recipient={**APPLICANT, "phone": "12803712345"}), "recipient.phone"),
    ("landline without area code", delivery_body(sender={**HALL, "phone": "68123456"}), "sender.phone"),
    ("postcode of 5 digits", delivery_body(recipient={**APPLICANT, "postcode": "45004"}), "recipient.postcode"),
    (
        "missing province",
        delivery_body(recipient={k: v for k, v in APPLICANT.items() if k != "province"}),
        "recipient.province",
    ),
    ("empty city", delivery_body(recipient={**APPLICANT, "city": " "}), "recipient.city"),
    (
        "missing district",
        delivery_body(recipient={k: v for k, v in APPLICANT.items() if k != "district"}),
        "recipient.district",
    ),
    ("address too long", delivery_body(recipient={**APPLICANT, "address": "济源路" * 80}), "recipient.address"),
    ("no cases", delivery_body(cases=[]), "cases"),
    ("case without number", delivery_body(cases=[{"item_name": "食品经营许可证核发"}]), "cases.0.case_no"),
    ("unknown kind", delivery_body(kind="parcel"), "kind"),
    ("unknown field", delivery_body(priority="urgent"), "priority"),
    ("zero count", delivery_body(contents=[{"name": "许可证正本", "count": 0}]), "contents.0.count"),
    ("intake without window", intake_body(pickup_window=None), "pickup_window"),
    (
        "intake window in the past",
        intake_body(pickup_window={"start": _soon(-2), "end": _soon(-1)}),
        "pickup_window.start",
    ),
    ("intake window reversed", intake_body(pickup_window={"start": _soon(5), "end": _soon(3)}), "pickup_window"),
    ("delivery with a window", delivery_body(pickup_window={"start": _soon(5), "end": _soon(6)}), "pickup_window"),
    ("delivery without recipient", delivery_body(recipient=None), "recipient"),
    # U+0000 cannot be stored by PostgreSQL: refused on every database alike
    ("NUL in an address", delivery_body(recipient={**APPLICANT, "address": "济源路\u00008号"}), "recipient.address"),
    ("NUL in a case number", delivery_body(cases=[{"case_no": "4101\u0000", "item_name": "核发"}]), "cases.0.case_no"),
    ("NUL in the window", delivery_body(window="3号\u0000窗口"), "window"),
    ("NUL in metadata", delivery_body(metadata={"note": "a\u0000b"}), "metadata"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_invalid_field_is_a_422_naming_it(
    api: TestClient, hall: Credentials, body: dict[str, Any], field: str
) -> None:
    resp = await api.post("/v1/shipments", json=body, headers=auth(hall))
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"].endswith("/validation")
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem["errors"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1,2]", b'"text"', b"\xff\xfe"])
async def test_malformed_bodies_are_4xx_problems(api: TestClient, hall: Credentials, raw: bytes) -> None:
    resp = await api.post("/v1/shipments", data=raw, headers={**auth(hall), "Content-Type": "application/json"})
    assert resp.status in (400, 422)
    assert resp.content_type == "application/problem+json"


async def test_oversized_body_is_a_413_problem(api: TestClient, hall: Credentials) -> None:
    body = delivery_body(metadata={"note": "备" * 200_000})
    resp = await api.post("/v1/shipments", json=body, headers=auth(hall))
    assert resp.status == 413
    assert (await resp.json())["type"].endswith("/payload-too-large")
