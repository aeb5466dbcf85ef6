"""Freezing the proof of service on the shipment, in the transaction that marks it delivered.

The proof is derived once (:func:`logistics.domain.proof.derive`) from the events recorded up to the delivery and
stored in ``shipments.proof``; nothing afterwards changes it but the personal-data purge
(:func:`logistics.domain.proof.purged`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carriers.ems.signers import log_unknown
from logistics.domain import proof
from logistics.domain.tables import shipment_cases, shipment_events

_CASES = (
    select(shipment_cases.c.case_no, shipment_cases.c.item_name)
    .where(shipment_cases.c.shipment_id == bindparam("b_id"))
    .order_by(shipment_cases.c.position)
)
_EVENTS = (
    select(shipment_events)
    .where(shipment_events.c.shipment_id == bindparam("b_id"))
    .order_by(shipment_events.c.sequence)
)


async def freeze(conn: AsyncConnection, shipment: Mapping[str, Any], delivered: Mapping[str, Any]) -> dict[str, Any]:
    """The proof of ``shipment`` as ``delivered`` (the event just recorded in ``conn``) makes it delivered."""
    cases = [dict(r._mapping) for r in await conn.execute(_CASES, {"b_id": shipment["id"]})]
    events = [dict(r._mapping) for r in await conn.execute(_EVENTS, {"b_id": shipment["id"]})]
    facts = proof.derive(shipment, cases, events, delivered)
    if facts["signer"]["class"] == "unknown" and delivered["source"] in proof.CARRIER_SOURCES:
        log_unknown(delivered.get("carrier_code"), delivered.get("carrier_text"))
    return facts
