"""The chaos run's checks on proofs of service and returns (issue 17), as pure functions.

Each takes the API's shipment JSON (``GET /v1/shipments/{id}``, with ``proof``, ``attempts`` and
``last_failure``) and, where it compares, the simulator's parcel summaries (``GET /admin/parcels``: what the
simulator chose for each parcel), and returns human-readable violations — an empty list when the promise
holds. A violation names the shipment and what is wrong, never the personal data involved, since the report is
printed and kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

Json = Mapping[str, Any]

# Where a create request carries personal data: (party key, field) pairs, for both kinds of shipment.
PERSONAL_FIELDS = (
    ("recipient", "name"),
    ("recipient", "phone"),
    ("recipient", "address"),
    ("sender", "name"),
    ("sender", "phone"),
    ("sender", "address"),
)


def parcels_by_shipment(shipments: Iterable[Json], parcels: Iterable[Json]) -> dict[str, Json]:
    """Each shipment's parcel at the simulator: by waybill, else by order number (our shipment id)."""
    by_waybill = {str(p.get("waybillNo")): p for p in parcels}
    by_order = {str(p.get("logisticsOrderNo")): p for p in by_waybill.values()}
    found: dict[str, Json] = {}
    for shipment in shipments:
        sid = str(shipment.get("id"))
        parcel = by_waybill.get(str(shipment.get("waybill_no"))) or by_order.get(sid)
        if parcel is not None:
            found[sid] = parcel
    return found


def proof_class_violations(shipments: Iterable[Json], parcels: Iterable[Json]) -> list[str]:
    """Every delivered shipment's ``proof.signer.class`` is the class the simulator drew for its 704."""
    shipments = list(shipments)
    matched = parcels_by_shipment(shipments, parcels)
    violations = []
    for shipment in shipments:
        if shipment.get("status") != "delivered":
            continue
        sid = shipment.get("id")
        parcel = matched.get(str(sid))
        proof = shipment.get("proof")
        if parcel is None:
            violations.append(f"{sid}: delivered, but the carrier has no parcel for it")
        elif parcel.get("signer_class") is None:
            violations.append(f"{sid}: delivered, but the carrier's parcel ended {parcel.get('state')!r}")
        elif not isinstance(proof, Mapping) or not isinstance(proof.get("signer"), Mapping):
            violations.append(f"{sid}: delivered without a proof")
        elif (said := proof["signer"].get("class")) != parcel["signer_class"]:
            violations.append(f"{sid}: proof says signer {said!r}, the carrier chose {parcel['signer_class']!r}")
    return violations


def code_check_violations(shipments: Iterable[Json], parcels: Iterable[Json]) -> list[str]:
    """A delivery whose 704 said the 取件验证码 was checked has ``proof.verified_by_code`` true."""
    shipments = list(shipments)
    matched = parcels_by_shipment(shipments, parcels)
    violations = []
    for shipment in shipments:
        parcel = matched.get(str(shipment.get("id")))
        if shipment.get("status") != "delivered" or parcel is None or not parcel.get("verified_by_code"):
            continue
        proof = shipment.get("proof")
        if not isinstance(proof, Mapping) or proof.get("verified_by_code") is not True:
            violations.append(f"{shipment.get('id')}: the courier checked the code, the proof does not say so")
    return violations


def return_violations(shipments: Iterable[Json], parcels: Iterable[Json] = ()) -> list[str]:
    """Every returned shipment keeps why (``last_failure.reason_code``) and ``attempts`` ≥ 1; given the parcels,
    the reason is the one of the carrier's last failed attempt."""
    shipments = list(shipments)
    matched = parcels_by_shipment(shipments, parcels)
    violations = []
    for shipment in shipments:
        if shipment.get("status") != "returned":
            continue
        sid = shipment.get("id")
        failure = shipment.get("last_failure")
        attempts = shipment.get("attempts")
        code = failure.get("reason_code") if isinstance(failure, Mapping) else None
        if not code:
            violations.append(f"{sid}: returned without a reason code")
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            violations.append(f"{sid}: returned with attempts {attempts!r}")
        reasons = (matched.get(str(sid)) or {}).get("failure_reasons") or []
        if code and reasons and code != reasons[-1]:
            violations.append(
                f"{sid}: returned for reason {code}, the carrier's last attempt failed with {reasons[-1]}"
            )
    return violations


def returning_violations(shipments: Iterable[Json]) -> list[str]:
    """After the drain nothing is still on its way back: every return reached the hall."""
    return [f"{s.get('id')}: still returning" for s in shipments if s.get("status") == "returning"]


def personal_data(body: Json) -> dict[str, str]:
    """The personal values of one create request (``{value: "recipient.name", ...}``), to look for later."""
    found: dict[str, str] = {}
    for party, name in PERSONAL_FIELDS:
        value = (body.get(party) or {}).get(name)
        # Two characters at least: a one-character value would be found in any text.
        if isinstance(value, str) and len(value.strip()) >= 2:
            found.setdefault(value.strip(), f"{party}.{name}")
    return found


def purged_proof_violations(shipments: Iterable[Json], personal: Mapping[str, str]) -> list[str]:
    """After the purge no proof holds any of the seeded personal values (a name, phone or address), anywhere in
    it — only what kind of value was found is reported."""
    violations = []
    for shipment in shipments:
        proof = shipment.get("proof")
        if proof is None:
            continue
        text = json.dumps(proof, ensure_ascii=False)
        kinds = sorted({kind for value, kind in personal.items() if value in text})
        if kinds:
            violations.append(f"{shipment.get('id')}: purged proof still holds {', '.join(kinds)}")
    return violations
