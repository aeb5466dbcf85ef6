"""The proof of service (送达回证): derived from EMS's events, frozen at delivery, served as PDF or JSON with its
SHA-256, only to the owning client, and reduced to non-personal facts by the purge."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
import pytest
from aiohttp.test_utils import TestClient

from logistics.accounts.clients import Credentials
from logistics.domain import proof
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import utcnow
from logistics.jobs.purge import purge_finished
from logistics.storage.db import Database

from support import APPLICANT, auth, delivery_body

WAYBILL = "1151263808012"
JSON = {"Accept": "application/json"}
POSTED = datetime(2026, 12, 1, 1, 12, tzinfo=UTC)  # 09:12 in Beijing
SIGNED = datetime(2026, 12, 2, 7, 40, tzinfo=UTC)  # 15:40 in Beijing
JOURNEY = [
    ("203", "picked_up", "【郑州市上街区揽投部】已收寄,揽投员:刘洋 139****1234", "郑州市上街区揽投部", POSTED),
    ("954", "in_transit", "到达【郑州处理中心】", "郑州处理中心", POSTED + timedelta(hours=3)),
    (
        "702",
        "out_for_delivery",
        "【郑州市上街区揽投部】正在投递,投递员:王强 138****5678",
        "上街区揽投部",
        SIGNED - timedelta(hours=26),
    ),
    (
        "705",
        "delivery_failed",
        "未妥投,原因:收件人不在指定地址,将再次投递",
        "上街区揽投部",
        SIGNED - timedelta(hours=24),
    ),
    (
        "702",
        "out_for_delivery",
        "【郑州市上街区揽投部】正在投递,投递员:王强 138****5678",
        "上街区揽投部",
        SIGNED - timedelta(hours=2),
    ),
]


async def _shipment(api: TestClient, db: Database, hall: Credentials, **overrides: object) -> str:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(hall))
    assert resp.status == 201, await resp.text()
    sid = str((await resp.json())["id"])
    await _events(db, sid, [(None, "ordered", None, None, POSTED - timedelta(hours=3))], source="system")
    return sid


async def _events(db: Database, sid: str, events: list[tuple], *, source: str = "carrier_push") -> None:
    async with db.write() as conn:
        for code, status, text, location, at in events:
            row = await lock_shipment(conn, sid)
            assert row is not None
            await apply_event(
                conn,
                row,
                status=status,
                source=source,
                occurred_at=at,
                carrier_code=code,
                carrier_text=text,
                location=location,
                dedup_key=f"{WAYBILL}|{code}|{at.isoformat()}" if code else None,
                updates={"waybill_no": WAYBILL} if status == "ordered" else None,
            )


async def _delivered(api: TestClient, db: Database, hall: Credentials, signed: str, **overrides: object) -> str:
    sid = await _shipment(api, db, hall, **overrides)
    await _events(db, sid, [*JOURNEY, ("704", "delivered", signed, "上街区揽投部", SIGNED)])
    return sid


FAMILY = "已签收,他人代收:家人,投递员:王强 138****5678"


async def _json(api: TestClient, hall: Credentials, sid: str) -> dict:
    resp = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall) | JSON)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_shipment_not_yet_delivered_has_no_proof(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _shipment(api, db, hall)
    resp = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall))
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/proof-not-ready")
    shipment = await (await api.get(f"/v1/shipments/{sid}", headers=auth(hall))).json()
    assert shipment["proof"] is None


async def test_another_clients_proof_is_not_found(
    api: TestClient, db: Database, hall: Credentials, other_hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall, FAMILY)
    resp = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(other_hall))
    assert resp.status == 404


async def test_the_proof_states_signer_times_and_the_carriers_own_texts(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall, FAMILY)
    facts = await _json(api, hall, sid)
    assert facts["signer"] == {"class": "family", "name": None, "relation": "家人"}
    assert facts["handed_to_post_at"] == "2026-12-01T01:12:00Z"
    assert facts["signed_at"] == "2026-12-02T07:40:00Z"
    assert (facts["verified_by_code"], facts["personal_service_proven"]) == (False, True)
    assert facts["failed_attempts"] == 1
    assert facts["recipient"] == {**APPLICANT, "postcode": None}
    assert facts["cases"] == [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}]
    assert (facts["department"], facts["window"], facts["waybill_no"]) == (
        "上街区市场监督管理局",
        "综合受理3号窗口",
        WAYBILL,
    )
    assert [e["carrier_code"] for e in facts["events"]] == ["203", "954", "702", "705", "702", "704"]
    assert facts["events"][-1] == {
        "occurred_at": "2026-12-02T07:40:00Z",
        "source": "carrier_push",
        "carrier_code": "704",
        "text": FAMILY,
        "location": "上街区揽投部",
    }


async def test_the_digest_is_the_sha256_of_the_canonical_facts_and_is_sent_in_a_header(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall, FAMILY)
    resp = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall) | JSON)
    facts = await resp.json()
    body = {k: v for k, v in facts.items() if k != "sha256"}
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert facts["sha256"] == hashlib.sha256(canonical).hexdigest() == resp.headers["X-Proof-SHA256"]
    shipment = await (await api.get(f"/v1/shipments/{sid}", headers=auth(hall))).json()
    assert shipment["proof"]["sha256"] == facts["sha256"]
    assert shipment["proof"]["url"] == f"http://127.0.0.1:8080/v1/shipments/{sid}/proof"


def _pdf_text(body: bytes) -> str:
    document = pdfium.PdfDocument(io.BytesIO(body))
    return "".join(page.get_textpage().get_text_range() for page in document).replace("\r", "")


async def test_the_pdf_is_the_default_prints_the_digest_and_is_the_same_bytes_every_time(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall, FAMILY)
    first = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall))
    assert first.status == 200
    assert first.content_type == "application/pdf"
    body = await first.read()
    again = await (await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall) | {"Accept": "*/*"})).read()
    assert again == body
    text = _pdf_text(body)
    digest = first.headers["X-Proof-SHA256"]
    assert digest in text
    for printed in (
        "送达回证",
        "欧阳娜娜",
        "13803712345",
        "济源路8号院3号楼2单元501室",
        "同住成年家属代收",
        "关系：家人",
        "2026-12-01 09:12:00",
        "2026-12-02 15:40:00",
        WAYBILL,
        "410106-2018-00095",
        "综合受理3号窗口",
        "未妥投,原因:收件人不在指定地址",
    ):
        assert printed in text, printed


async def test_later_events_never_change_a_frozen_proof(api: TestClient, db: Database, hall: Credentials) -> None:
    sid = await _delivered(api, db, hall, FAMILY)
    before = await _json(api, hall, sid)
    pdf_before = await (await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall))).read()
    late = SIGNED + timedelta(hours=1)
    await _events(
        db,
        sid,
        [
            ("704", "delivered", "已签收,他人代收:丰巢,投递员:王强", "上街区揽投部", late),
            ("954", "in_transit", "到达【郑州处理中心】", "郑州处理中心", late),
        ],
    )
    assert await _json(api, hall, sid) == before
    assert await (await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall))).read() == pdf_before


@pytest.mark.parametrize(
    ("signed", "cls", "verified", "proven"),
    [
        ("已签收,本人签收:欧阳娜娜,投递员:王强 138****5678", "addressee", False, True),
        ("已签收,本人签收(已核验收件人安全码),投递员:王强 138****5678", "addressee", True, True),
        ("快件已由【上街区济源路菜鸟驿站】代收", "locker_or_station", False, False),
        ("投递并签收，签收人：单位收发章 *【郑州地区】", "unit_mailroom", False, False),
        ("北京市，您的快件已代签收【家门口】", "other", False, False),
    ],
)
async def test_personal_service_is_proven_by_addressee_family_or_a_checked_code(
    api: TestClient, db: Database, hall: Credentials, signed: str, cls: str, verified: bool, proven: bool
) -> None:
    sid = await _delivered(api, db, hall, signed)
    facts = await _json(api, hall, sid)
    assert (facts["signer"]["class"], facts["verified_by_code"], facts["personal_service_proven"]) == (
        cls,
        verified,
        proven,
    )


async def test_an_unknown_wording_is_unknown_and_logged_without_the_text(
    api: TestClient, db: Database, hall: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="carriers.ems.signers"):
        sid = await _delivered(api, db, hall, "已投递,交欧阳娜娜亲收")
    facts = await _json(api, hall, sid)
    assert facts["signer"] == {"class": "unknown", "name": None, "relation": None}
    assert facts["personal_service_proven"] is False
    (record,) = [r for r in caplog.records if r.getMessage() == "signer_wording_unknown"]
    assert record.carrier_code == "704"  # type: ignore[attr-defined]
    assert "欧阳" not in repr(record.__dict__)


async def test_the_purge_keeps_the_non_personal_facts_and_the_route_answers_with_them(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall, "已签收,本人签收:欧阳娜娜,投递员:王强 138****5678")
    issued = await _json(api, hall, sid)
    assert await purge_finished(db, after=timedelta(days=180), now=utcnow() + timedelta(days=181)) == 1
    facts = await _json(api, hall, sid)
    assert facts["purged"] is True and facts["issued_sha256"] == issued["sha256"]
    assert facts["sha256"] == proof.digest(facts) != issued["sha256"]
    assert facts["signer"] == {"class": "addressee", "name": None, "relation": None}
    assert (facts["signed_at"], facts["handed_to_post_at"]) == (issued["signed_at"], issued["handed_to_post_at"])
    assert (facts["personal_service_proven"], facts["failed_attempts"]) == (True, 1)
    assert facts["recipient"] == {"province": "河南省", "city": "郑州市", "district": "上街区"}
    assert [e["carrier_code"] for e in facts["events"]] == [e["carrier_code"] for e in issued["events"]]
    pdf = await api.get(f"/v1/shipments/{sid}/proof", headers=auth(hall))
    shipment = await (await api.get(f"/v1/shipments/{sid}", headers=auth(hall))).json()
    in_proof = repr(facts) + _pdf_text(await pdf.read()) + repr(shipment["proof"])
    for personal in ("欧阳娜娜", "娜娜", "13803712345", "济源路8号院", "王强"):  # the courier's name too
        assert personal not in in_proof, personal
    # The signer's name is gone from the shipment's own event texts as well.
    assert "娜娜" not in repr(shipment["events"])
    assert issued["sha256"] in _pdf_text(await pdf.read())
