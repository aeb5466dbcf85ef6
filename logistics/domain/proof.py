"""The proof of service (送达回证) of a delivered shipment, derived from its events: who signed, when, whether the
取件验证码 was checked, and when the parcel was handed to the post (交邮).

Pure functions over rows; :mod:`logistics.domain.proof_store` freezes the result on the shipment in the
transaction that marks it delivered, so later events never change it. The facts are one JSON object whose
SHA-256 (:func:`digest`, over its canonical form) is printed on the document and sent in the API's header, so
a printout can be checked against the API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from carriers.ems.signers import Signer, classify

VERSION = 1
# What a staff `deliver` scan's event says when the recipient's 取件验证码 was checked (logistics/api/scans.py
# records a delivery with a code only after the check).
STAFF_CODE_MARK = "已核验取件验证码"
CARRIER_SOURCES = frozenset({"carrier_push", "carrier_poll"})
# The events a proof lists: the carrier's own and our staff's scans. Texts of the API (a cancel reason) and of
# the applicant are neither.
LISTED_SOURCES = CARRIER_SOURCES | {"scan"}
POSTED_CODE = "203"  # EMS 收寄: the 交邮 time
PROVING_CLASSES = frozenset({"addressee", "family"})


def _iso(value: datetime) -> str:
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def signer_of(event: Mapping[str, Any]) -> Signer:
    """Who signed, by the delivering event: the carrier's wording, or nobody named for a staff scan (the scan
    says a hand-over happened, not to whom)."""
    if event["source"] in CARRIER_SOURCES:
        return classify(event.get("carrier_text"))
    return Signer("unknown")


def code_checked(event: Mapping[str, Any], signer: Signer) -> bool:
    if event["source"] == "scan":
        return STAFF_CODE_MARK in (event.get("carrier_text") or "")
    return signer.code_checked


def handed_to_post(events: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The carrier's 收寄 (203) time; failing that, the first pickup (a courier's pickup scan)."""
    kept = [e for e in events if not e.get("refused")]
    posted = [e["occurred_at"] for e in kept if e["source"] in CARRIER_SOURCES and e.get("carrier_code") == POSTED_CODE]
    if not posted:
        posted = [e["occurred_at"] for e in kept if e["status"] == "picked_up"]
    return min(posted, default=None)


def derive(
    shipment: Mapping[str, Any],
    cases: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    delivered: Mapping[str, Any],
) -> dict[str, Any]:
    """The proof's facts (with their ``sha256``), as of ``delivered``: the event that made the shipment delivered.

    ``events`` are the shipment's events so far (rows of ``shipment_events``), ``delivered`` among them.
    """
    signer = signer_of(delivered)
    verified = code_checked(delivered, signer)
    posted = handed_to_post(events)
    listed = sorted(
        (e for e in events if e["source"] in LISTED_SOURCES and not e.get("refused")),
        key=lambda e: (e["occurred_at"], e["sequence"]),
    )
    facts: dict[str, Any] = {
        "version": VERSION,
        "shipment_id": shipment["id"],
        "kind": shipment["kind"],
        "carrier": shipment["carrier"],
        "waybill_no": shipment["waybill_no"],
        "cases": [{"case_no": c["case_no"], "item_name": c["item_name"]} for c in cases],
        "department": shipment["department"],
        "window": shipment["window"],
        "recipient": dict(shipment["recipient"] or {}),
        "handed_to_post_at": _iso(posted) if posted is not None else None,
        "signed_at": _iso(delivered["occurred_at"]),
        "signer": {"class": signer.cls, "name": signer.name, "relation": signer.relation},
        "verified_by_code": verified,
        "personal_service_proven": signer.cls in PROVING_CLASSES or verified,
        "failed_attempts": sum(1 for e in listed if e["status"] == "delivery_failed"),
        "events": [
            {
                "occurred_at": _iso(e["occurred_at"]),
                "source": e["source"],
                "carrier_code": e.get("carrier_code"),
                "text": e.get("carrier_text"),
                "location": e.get("location"),
            }
            for e in listed
        ],
        "purged": False,
    }
    return sealed(facts)


def canonical(facts: Mapping[str, Any]) -> bytes:
    """The bytes the digest is taken over: the facts without ``sha256``, keys sorted, no spaces, UTF-8."""
    body = {k: v for k, v in facts.items() if k != "sha256"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def digest(facts: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(facts)).hexdigest()


def sealed(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``facts`` with their ``sha256``."""
    return {**facts, "sha256": digest(facts)}


def purged(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The proof once the shipment's personal data is purged: what stays is not about a person — times, the
    signer's class, whether the code was checked, counts, the cases and the hall — and the digest of the
    document as it was issued, so a printout made before can still be matched. Purging twice changes nothing.
    """
    if facts.get("purged"):
        return dict(facts)
    recipient = facts.get("recipient") or {}
    kept = {
        **facts,
        "recipient": {k: recipient.get(k) for k in ("province", "city", "district")},
        "signer": {"class": facts["signer"]["class"], "name": None, "relation": None},
        # Carrier texts name the signer and the courier; scan locations are typed by people.
        "events": [
            {"occurred_at": e["occurred_at"], "source": e["source"], "carrier_code": e["carrier_code"]}
            for e in facts["events"]
        ],
        "purged": True,
        "issued_sha256": facts["sha256"],
    }
    return sealed(kept)


def summary(facts: Mapping[str, Any] | None, *, with_name: bool = True) -> dict[str, Any] | None:
    """The ``proof`` of the shipment's JSON; ``with_name=False`` for webhooks, which carry no personal data."""
    if facts is None:
        return None
    signer = dict(facts["signer"])
    if not with_name:
        del signer["name"]
    return {
        "signer": signer,
        "signed_at": facts["signed_at"],
        "handed_to_post_at": facts["handed_to_post_at"],
        "verified_by_code": facts["verified_by_code"],
        "personal_service_proven": facts["personal_service_proven"],
        "failed_attempts": facts["failed_attempts"],
        "purged": facts["purged"],
        "sha256": facts["sha256"],
    }
