"""Glue between the app and the carrier library: build the carrier from settings, turn rows into orders."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp

import carriers.ems  # noqa: F401 - registers "ems"
from carriers import registry
from carriers.base import Carrier, Item, OrderRequest, Party, Payer, TrackingEvent
from logistics.config import Settings

# Concurrent carrier calls per process. aiohttp's default pool of 100 connections would cap a worker's orders
# against a slow carrier (100 divided by its answer time); the outbox claim size and
# worker_max_jobs are the real bounds on what is in flight.
CARRIER_CONNECTIONS = 1000


def carrier_session() -> aiohttp.ClientSession | None:
    """A pool sized for the worker, when there is a running loop to create it in (else the carrier makes its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    # trust_env=False, as in the carrier's own session: orders never go through an environment proxy.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CARRIER_CONNECTIONS), trust_env=False)


def create_carrier(settings: Settings, *, session: aiohttp.ClientSession | None = None) -> Carrier:
    """The configured carrier; ``session`` (closed by the caller) shares a connection pool."""
    return registry.create(
        settings.carrier,
        base_url=settings.ems_url,
        sender_no=settings.ems_sender_no,
        authorization=settings.ems_authorization,
        sign_key=settings.ems_sign_key,
        sandbox=settings.ems_sandbox,
        ecommerce_user_id=settings.ems_ecommerce_user_id,
        biz_product_no=settings.ems_biz_product_no,
        total_timeout=settings.ems_timeout_seconds,
        session=session,
    )


def _party(data: dict[str, Any]) -> Party:
    return Party(
        name=data["name"],
        phone=data["phone"],
        province=data["province"],
        city=data["city"],
        district=data["district"],
        address=data["address"],
        postcode=data.get("postcode"),
    )


def payer(kind: str, payment_mode: str | None) -> Payer | None:
    """Who pays the carrier, in its terms, for a shipment's ``payment_mode`` (logistics.domain.payment).

    monthly: the hall pays on its contract account — as the sender of a delivery, as the recipient of an
    intake (settled centrally). sender_pays: whoever hands the parcel over — the hall for a delivery (so the wire
    is the same as monthly: EMS bills its sender, and the two differ only in the hall's books), the applicant
    for an intake. Null (a shipment from before payment modes were kept) leaves the carrier's default."""
    if payment_mode == "monthly":
        return "recipient_monthly" if kind == "intake" else "sender"
    if payment_mode == "sender_pays":
        return "sender"
    return None


def order_request(row: dict[str, Any]) -> OrderRequest:
    cases = row.get("_cases") or []
    notes = "政务寄递 " + " ".join(c["case_no"] for c in cases) if cases else "政务寄递"
    return OrderRequest(
        order_no=row["id"],
        kind=row["kind"],
        sender=_party(row["sender"]),
        receiver=_party(row["recipient"]),
        items=tuple(Item(c["name"], c["count"]) for c in (row["contents"] or [])) or (Item("政务文件", 1),),
        created_at=row["created_at"],
        pickup_start=row["pickup_start"],
        pickup_end=row["pickup_end"],
        safety_code=row["verification_code"],
        notes=notes[:100],
        payer=payer(row["kind"], row.get("payment_mode")),
    )


def event_payload(event: TrackingEvent) -> dict[str, Any]:
    """A tracking event as stored in an outbox row (JSON), from a push or a poll."""
    return {
        "waybill_no": event.waybill_no,
        "order_no": event.order_no,
        "code": event.code,
        "name": event.name,
        "description": event.description,
        "occurred_at": event.occurred_at.isoformat(),
        "status": event.status,
        "location": event.location,
        "reason_code": event.reason_code,
        "reason": event.reason,
        "attempt": event.attempt,
    }


def dedup_key(payload: dict[str, Any]) -> str:
    return f"{payload['waybill_no']}|{payload['code']}|{datetime.fromisoformat(payload['occurred_at']).isoformat()}"
