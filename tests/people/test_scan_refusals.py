"""Which scans are refused and why, decided from the shipment, the scan and the staff member alone (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from logistics.accounts.staff import StaffMember
from logistics.api.scans import ScanIn, refusal
from logistics.domain.wording import failure_reasons

HALL = "郑州市金水区政务服务中心"
OTHER_HALL = "郑州市二七区政务服务中心"
COURIER = StaffMember("stf_01JEBZ3Q8W9X0Y1Z2A3B4C5D6E", "欧阳娜娜", "courier", (HALL,))
CLERK = StaffMember("stf_01JEBZ3Q8W9X0Y1Z2A3B4C5D6F", "李建国", "clerk", (HALL,))
REASONS = failure_reasons()
WAYBILL = "1151234567890"


def shipment(status: str = "out_for_delivery", kind: str = "delivery", department: str = HALL) -> dict[str, Any]:
    return {"status": status, "kind": kind, "department": department}


def scan(action: str, **fields: Any) -> ScanIn:
    return ScanIn.model_validate({"scan_id": "dev-1:42", "code": WAYBILL, "action": action, **fields})


def code_of(member: StaffMember, item: ScanIn, row: dict[str, Any] | None, late: bool = False) -> str | None:
    refused = refusal(member, item, row, late, REASONS)
    return None if refused is None else refused.code


def test_a_code_that_finds_no_shipment_is_unknown() -> None:
    assert code_of(COURIER, scan("pickup"), None) == "unknown-code"


def test_a_shipment_of_another_hall_is_refused_by_name() -> None:
    refused = refusal(COURIER, scan("pickup"), shipment(department=OTHER_HALL), False, REASONS)
    assert refused is not None and refused.code == "not-your-hall"
    assert OTHER_HALL in refused.message


@pytest.mark.parametrize(
    ("member", "action", "kind", "expected"),
    [
        (CLERK, "fail", "delivery", "role-not-allowed"),
        (CLERK, "deliver", "delivery", "role-not-allowed"),
        (CLERK, "deliver", "intake", None),
        (COURIER, "deliver", "delivery", None),
    ],
)
def test_a_role_records_only_its_own_actions(member: StaffMember, action: str, kind: str, expected: str | None) -> None:
    extra = {"reason_code": "104"} if action == "fail" else {}
    assert code_of(member, scan(action, **extra), shipment(kind=kind)) == expected


def test_the_refusal_of_a_role_names_the_role_and_the_action() -> None:
    refused = refusal(CLERK, scan("fail", reason_code="104"), shipment(), False, REASONS)
    assert refused is not None and refused.message == "窗口人员不能登记“投递未成功”"


def test_a_shipment_awaiting_the_applicants_choice_is_not_ready() -> None:
    assert code_of(COURIER, scan("pickup"), shipment("awaiting_applicant")) == "not-ready"


@pytest.mark.parametrize(("reason", "expected"), [(None, "reason-required"), ("999", "unknown-reason")])
def test_a_failed_attempt_needs_a_known_ems_reason(reason: str | None, expected: str) -> None:
    assert code_of(COURIER, scan("fail", reason_code=reason), shipment()) == expected


def test_a_failed_attempt_with_its_reason_is_recorded() -> None:
    assert code_of(COURIER, scan("fail", reason_code="104"), shipment()) is None


def test_a_second_delivery_is_refused_even_when_back_dated() -> None:
    assert code_of(COURIER, scan("deliver"), shipment("delivered"), late=True) == "already-delivered"


def test_a_late_arrival_on_a_delivered_shipment_is_history() -> None:
    assert code_of(COURIER, scan("arrive"), shipment("delivered"), late=True) is None


def test_a_current_arrival_on_a_delivered_shipment_is_refused() -> None:
    assert code_of(COURIER, scan("arrive"), shipment("delivered")) == "shipment-closed"


@pytest.mark.parametrize("status", ["cancelled", "returned", "failed", "declined"])
@pytest.mark.parametrize("late", [False, True])
def test_a_shipment_that_ended_otherwise_takes_nothing_more(status: str, late: bool) -> None:
    assert code_of(COURIER, scan("arrive"), shipment(status), late=late) == "shipment-closed"


def test_a_late_scan_on_an_ended_shipment_says_it_cannot_be_added_afterwards() -> None:
    refused = refusal(COURIER, scan("arrive"), shipment("cancelled"), True, REASONS)
    assert refused is not None and "也不能再补记" in refused.message


def test_hall_scope_is_checked_before_the_role() -> None:
    assert code_of(CLERK, scan("fail", reason_code="104"), shipment(department=OTHER_HALL)) == "not-your-hall"


def test_a_pickup_of_an_ordered_shipment_is_not_refused() -> None:
    assert code_of(COURIER, scan("pickup"), shipment("ordered")) is None
