"""The chaos run's proof and return checks on their own, with shipment JSON and simulator parcel summaries as the
API and the simulator give them — no services needed."""

from __future__ import annotations

import copy
from typing import Any

from chaos.proof_checks import (
    code_check_violations,
    parcels_by_shipment,
    personal_data,
    proof_class_violations,
    purged_proof_violations,
    return_violations,
    returning_violations,
)

from support import delivery_body, intake_body


def shipment(sid: str, waybill: str | None, status: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": sid,
        "kind": "delivery",
        "status": status,
        "waybill_no": waybill,
        "proof": None,
        "attempts": 0,
        "last_failure": None,
    }
    return base | fields


def proof(signer_class: str, *, name: str | None = None, code: bool = False) -> dict[str, Any]:
    return {
        "signer": {"class": signer_class, "name": name, "relation": None},
        "signed_at": "2026-12-05T06:12:40Z",
        "handed_to_post_at": "2026-12-04T09:30:11Z",
        "verified_by_code": code,
        "personal_service_proven": signer_class in ("addressee", "family") or code,
        "carrier_events": [{"opCode": "704", "opDesc": f"已签收,本人签收:{name or ''};,投递员:高静"}],
        "sha256": "5f0c2b1e" * 8,
    }


def parcel(order_no: str, waybill: str, state: str, **chosen: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "waybillNo": waybill,
        "logisticsOrderNo": order_no,
        "state": state,
        "signer_class": None,
        "verified_by_code": False,
        "attempts": 0,
        "failure_reasons": [],
        "refused": False,
        "returned": False,
    }
    return base | chosen


LICENCE = shipment(
    "shp_01JDB0Q5W8K3M6N9P2R4T7V1XA", "1295780512499", "delivered", proof=proof("addressee", name="欧阳娜娜")
)
LICENCE_PARCEL = parcel("shp_01JDB0Q5W8K3M6N9P2R4T7V1XA", "1295780512499", "delivered", signer_class="addressee")
REFUSED = shipment(
    "shp_01JDB0Q5W8K3M6N9P2R4T7V1XB",
    "1295780512500",
    "returned",
    attempts=1,
    last_failure={"reason_code": "104", "reason": "收件人拒收", "occurred_at": "2026-12-05T03:20:00Z"},
)
REFUSED_PARCEL = parcel(
    "shp_01JDB0Q5W8K3M6N9P2R4T7V1XB",
    "1295780512500",
    "returned",
    attempts=1,
    failure_reasons=["104"],
    refused=True,
    returned=True,
)


def test_parcels_are_matched_by_waybill_or_else_by_order_number() -> None:
    not_ordered_yet = shipment("shp_01JDB0Q5W8K3M6N9P2R4T7V1XC", None, "pending")
    at_carrier = parcel("shp_01JDB0Q5W8K3M6N9P2R4T7V1XC", "1295780512511", "ordered")
    found = parcels_by_shipment([LICENCE, not_ordered_yet], [LICENCE_PARCEL, at_carrier])
    assert found == {LICENCE["id"]: LICENCE_PARCEL, not_ordered_yet["id"]: at_carrier}


def test_proof_class_matching_the_carriers_choice_passes() -> None:
    assert proof_class_violations([LICENCE, REFUSED], [LICENCE_PARCEL, REFUSED_PARCEL]) == []


def test_proof_class_differing_from_the_carriers_choice_is_reported() -> None:
    station = parcel(LICENCE["id"], LICENCE["waybill_no"], "delivered", signer_class="locker_or_station")
    assert proof_class_violations([LICENCE], [station]) == [
        f"{LICENCE['id']}: proof says signer 'addressee', the carrier chose 'locker_or_station'"
    ]


def test_a_delivered_shipment_without_proof_or_without_a_delivered_parcel_is_reported() -> None:
    bare = LICENCE | {"proof": None}
    assert proof_class_violations([bare], [LICENCE_PARCEL]) == [f"{LICENCE['id']}: delivered without a proof"]
    assert proof_class_violations([LICENCE], [REFUSED_PARCEL | {"waybillNo": "1295780512499"}]) == [
        f"{LICENCE['id']}: delivered, but the carrier's parcel ended 'returned'"
    ]
    assert proof_class_violations([LICENCE], []) == [
        f"{LICENCE['id']}: delivered, but the carrier has no parcel for it"
    ]


def test_a_code_checked_delivery_must_have_a_code_verified_proof() -> None:
    checked = LICENCE_PARCEL | {"verified_by_code": True}
    assert code_check_violations([LICENCE], [checked]) == [
        f"{LICENCE['id']}: the courier checked the code, the proof does not say so"
    ]
    verified = LICENCE | {"proof": proof("addressee", name="欧阳娜娜", code=True)}
    assert code_check_violations([verified], [checked]) == []
    assert code_check_violations([LICENCE], [LICENCE_PARCEL]) == []  # no code: nothing to check


def test_a_returned_shipment_keeps_its_reason_and_attempts() -> None:
    assert return_violations([REFUSED], [REFUSED_PARCEL]) == []
    forgotten = REFUSED | {"attempts": 0, "last_failure": None}
    assert return_violations([forgotten]) == [
        f"{REFUSED['id']}: returned without a reason code",
        f"{REFUSED['id']}: returned with attempts 0",
    ]


def test_a_returned_shipment_with_another_reason_than_the_carriers_last_attempt_is_reported() -> None:
    not_home = REFUSED_PARCEL | {"attempts": 3, "failure_reasons": ["103", "113", "103"], "refused": False}
    assert return_violations([REFUSED], [not_home]) == [
        f"{REFUSED['id']}: returned for reason 104, the carrier's last attempt failed with 103"
    ]


def test_nothing_may_still_be_returning_after_the_drain() -> None:
    on_its_way = REFUSED | {"status": "returning"}
    assert returning_violations([LICENCE, REFUSED]) == []
    assert returning_violations([LICENCE, on_its_way]) == [f"{REFUSED['id']}: still returning"]


def test_personal_data_of_both_kinds_of_request() -> None:
    delivery = personal_data(delivery_body())
    assert delivery["欧阳娜娜"] == "recipient.name"
    assert delivery["13803712345"] == "recipient.phone"
    assert delivery["新安路街道济源路8号院3号楼2单元501室"] == "recipient.address"
    intake = personal_data(intake_body())
    assert (intake["张伟"], intake["13937112345"], intake["峡窝镇马固村3组17号"]) == (
        "sender.name",
        "sender.phone",
        "sender.address",
    )


def test_a_purged_proof_with_a_name_left_in_it_is_reported_without_the_name() -> None:
    personal = personal_data(delivery_body())
    purged = copy.deepcopy(LICENCE)
    purged["proof"]["signer"]["name"] = None
    assert purged_proof_violations([purged], personal) == [f"{LICENCE['id']}: purged proof still holds recipient.name"]
    purged["proof"]["carrier_events"] = [{"opCode": "704", "opDesc": "已签收,本人签收,投递员:高静"}]
    assert purged_proof_violations([purged, REFUSED], personal) == []
    violation = purged_proof_violations([LICENCE], personal)[0]
    assert "欧阳娜娜" not in violation and "recipient.name" in violation
