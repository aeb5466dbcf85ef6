"""The proof's derivation from event rows (pure): which event gives which fact, and what the purge keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from logistics.domain import proof

AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
SHIPMENT = {
    "id": "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
    "kind": "delivery",
    "carrier": "ems",
    "waybill_no": "1151263808012",
    "department": "上街区市场监督管理局",
    "window": "综合受理3号窗口",
    "recipient": {
        "name": "司马文博",
        "phone": "13938201456",
        "province": "河南省",
        "city": "郑州市",
        "district": "巩义市",
        "address": "孝义街道杜甫路168号金地花园7号楼1单元302室",
    },
}
CASES = [{"case_no": "410181-2026-03127", "item_name": "个体工商户设立登记"}]


def event(n: int, status: str, source: str, code: str | None, text: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "sequence": n,
        "status": status,
        "occurred_at": AT + timedelta(hours=n),
        "source": source,
        "carrier_code": code,
        "carrier_text": text,
        "location": "巩义市孝义营业部",
        "refused": False,
        **extra,
    }


def test_handed_to_post_is_the_carriers_203_even_after_an_earlier_pickup_scan() -> None:
    events = [
        event(1, "picked_up", "scan", None, "扫描登记：揽收"),
        event(2, "picked_up", "carrier_push", "203", "已收寄"),
    ]
    assert proof.handed_to_post(events) == AT + timedelta(hours=2)


def test_without_a_203_the_first_pickup_is_the_handed_to_post_time() -> None:
    events = [event(3, "in_transit", "carrier_push", "954", "到达"), event(1, "picked_up", "scan", None, "揽收")]
    assert proof.handed_to_post(events) == AT + timedelta(hours=1)


def test_never_picked_up_has_no_handed_to_post_time() -> None:
    assert proof.handed_to_post([event(1, "in_transit", "carrier_poll", "954", "到达")]) is None


def test_refused_events_are_neither_facts_nor_listed() -> None:
    delivered = event(4, "delivered", "carrier_push", "704", "已签收,本人签收:司马文博")
    late = event(5, "in_transit", "carrier_push", "954", "到达", refused=True)
    facts = proof.derive(
        SHIPMENT, CASES, [event(1, "picked_up", "carrier_push", "203", "收寄"), delivered, late], delivered
    )
    assert [e["carrier_code"] for e in facts["events"]] == ["203", "704"]
    assert facts["signer"] == {"class": "addressee", "name": "司马文博", "relation": None}


def test_the_applicants_own_events_are_not_listed() -> None:
    delivered = event(4, "delivered", "carrier_push", "704", "快件已由【孝义街道菜鸟驿站】代收")
    facts = proof.derive(
        SHIPMENT, CASES, [event(0, "pending", "applicant", None, "申请人选择邮寄"), delivered], delivered
    )
    assert [e["source"] for e in facts["events"]] == ["carrier_push"]
    assert facts["personal_service_proven"] is False


def test_the_digest_covers_every_fact() -> None:
    delivered = event(4, "delivered", "carrier_push", "704", "已签收,他人代收:家人")
    facts = proof.derive(SHIPMENT, CASES, [delivered], delivered)
    assert facts["sha256"] == proof.digest(facts)
    changed = {**facts, "signed_at": "2026-12-01T06:00:00Z"}
    assert proof.digest(changed) != facts["sha256"]


def test_purging_twice_is_purging_once() -> None:
    delivered = event(4, "delivered", "carrier_push", "704", "已签收,本人签收:司马文博")
    once = proof.purged(proof.derive(SHIPMENT, CASES, [delivered], delivered))
    assert proof.purged(once) == once
    assert "司马" not in repr(once) and "杜甫路" not in repr(once)
