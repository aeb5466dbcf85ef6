"""Rows → the public JSON shape of a shipment (ShipmentOut in schemas.py documents it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from logistics.domain.proof import summary


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def shipment_json(
    row: Mapping[str, Any],
    cases: Iterable[Mapping[str, Any]],
    base_url: str,
    events: Iterable[Mapping[str, Any]] | None = None,
    *,
    applicant_token: str | None = None,
) -> dict[str, Any]:
    """``applicant_token`` exists only while creating: the link is stored as a hash, so later reads show null."""
    sid = row["id"]
    window = None
    if row["pickup_start"] is not None:
        window = {"start": iso(row["pickup_start"]), "end": iso(row["pickup_end"])}
    body: dict[str, Any] = {
        "id": sid,
        "status": row["status"],
        "kind": row["kind"],
        "cases": [{"case_no": c["case_no"], "item_name": c["item_name"]} for c in cases],
        "department": row["department"],
        "window": row["window"],
        "sender": row["sender"],
        "recipient": row["recipient"],
        "contents": row["contents"] or [],
        "pickup_window": window,
        "carrier": row["carrier"],
        "waybill_no": row["waybill_no"],
        "route_code": row["route_code"],
        "destination_name": row["destination_name"],
        "tracking_code": row["tracking_code"],
        "tracking_url": f"{base_url}/t/{row['tracking_code']}",
        "label_url": f"{base_url}/v1/shipments/{sid}/label" if row["waybill_no"] else None,
        "verification_code": row["verification_code"],
        "applicant_url": f"{base_url}/a/{applicant_token}" if applicant_token else None,
        "failure_reason": row["failure_reason"],
        "proof": proof_json(row.get("proof"), f"{base_url}/v1/shipments/{sid}/proof"),
        **returns_json(row),
        "metadata": row["extra"] or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "due_by": row["due_by"].isoformat() if row["due_by"] is not None else None,
        "overdue_at": iso(row["overdue_at"]),
        "payment_mode": row.get("payment_mode"),
    }
    if events is not None:
        body["events"] = [event_json(e) for e in events]
    return body


def returns_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """Failed attempts and the hall's decision on a parcel that came back (a shipment's JSON)."""
    return {
        "attempts": row.get("attempts") or 0,
        "last_failure": row.get("last_failure"),
        "resend_of": row.get("resend_of"),
        "resent_as": row.get("resent_as"),
        "resolution": row.get("resolution"),
    }


def event_json(e: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "sequence": e["sequence"],
        "status": e["status"],
        "occurred_at": iso(e["occurred_at"]),
        "source": e["source"],
        "carrier_code": e["carrier_code"],
        "carrier_text": e["carrier_text"],
        "location": e["location"],
        "reason_code": e.get("reason_code"),
        "reason": e.get("reason"),
    }


def proof_json(facts: Mapping[str, Any] | None, url: str) -> dict[str, Any] | None:
    """The shipment's ``proof``: null until it is delivered."""
    found = summary(facts)
    return None if found is None else {**found, "url": url}
