"""The courier's hand-over manifest (交接清单): a department's parcels waiting for the courier, listed, printed
with a QR code, and taken over in one scan.

The QR code holds ``{public base URL}/m/{code}``; ``code`` is 128 random bits (scanning it moves parcels, so it
must not be guessable). The first scan by a courier (or clerk) of the department moves every listed parcel that
is still waiting to ``picked_up`` — one event each through ``apply_event``, source ``scan`` with the staff id,
so webhooks go out as for a single scan — and stores per parcel what happened (``outcome``). Every later scan
changes nothing and is answered from those stored facts: the same answer each time. A parcel that had already
moved on (picked up on its own, cancelled, …) is listed as such, never an error.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.accounts.staff import StaffMember
from logistics.api.schemas import BEIJING
from logistics.domain.events import apply_event, lock_shipments
from logistics.domain.ids import ulid
from logistics.domain.statuses import RANK
from logistics.domain.tables import manifest_items, manifests, shipment_cases, shipments, staff
from logistics.domain.wording import masked_party, status_text

PICKED_UP = "picked_up"
TAKEN = "taken_over"  # an item's outcome when this manifest's scan picked it up (else: the status it had)
WAITING = ("pending", "ordered")  # with a waybill: ordered from EMS, waiting for the courier
EVENT_TEXT = "扫描登记：揽收（交接清单）"
_CODE = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_id() -> str:
    return "man_" + ulid()


def new_code() -> str:
    return secrets.token_urlsafe(16)  # 128 bits, 22 characters


def qr_url(base_url: str, code: str) -> str:
    return f"{base_url}/m/{code}"


def parse_manifest_code(text: str) -> str | None:
    """The manifest code in a scanned ``…/m/{code}`` URL (any host: an old base URL, a proxy), else None; a
    label's tracking URL or a waybill is not one."""
    text = text.strip()
    if "/m/" not in text:
        return None
    code = text.rsplit("/m/", 1)[1].split("?")[0].split("#")[0].strip("/")
    return code if _CODE.fullmatch(code) else None


def waiting_condition(department: str) -> Any:
    """Deliveries of ``department`` that the courier can take now: ordered (a waybill), not yet picked up."""
    return (
        (shipments.c.department == department)
        & (shipments.c.kind == "delivery")
        & shipments.c.status.in_(WAITING)
        & shipments.c.waybill_no.is_not(None)
    )


@dataclass(frozen=True, slots=True)
class Created:
    id: str
    code: str
    count: int


async def create(
    conn: AsyncConnection, department: str, shipment_ids: Sequence[str], created_by: str, now: datetime
) -> Created:
    """Store a manifest of these parcels (in this order; the caller checked they are the department's)."""
    manifest = Created(new_id(), new_code(), len(shipment_ids))
    await conn.execute(
        insert(manifests).values(
            id=manifest.id, department=department, created_by=created_by, created_at=now, code=manifest.code
        )
    )
    await conn.execute(
        insert(manifest_items),
        [{"manifest_id": manifest.id, "shipment_id": sid, "position": n} for n, sid in enumerate(shipment_ids, 1)],
    )
    return manifest


async def load(conn: AsyncConnection, manifest_id: str, departments: Sequence[str]) -> dict[str, Any] | None:
    """A manifest of these departments with its parcels (in order) and the names of the staff involved; None
    for another department's, like an unknown one."""
    creator, taker = staff.alias("creator"), staff.alias("taker")
    found = (
        await conn.execute(
            select(manifests, creator.c.name.label("created_by_name"), taker.c.name.label("taken_over_by_name"))
            .join(creator, creator.c.id == manifests.c.created_by)
            .outerjoin(taker, taker.c.id == manifests.c.taken_over_by)
            .where(manifests.c.id == manifest_id[:40], manifests.c.department.in_(list(departments)))
        )
    ).first()
    if found is None:
        return None
    manifest = dict(found._mapping)
    manifest["items"] = await _items(conn, manifest["id"])
    return manifest


async def _items(conn: AsyncConnection, manifest_id: str) -> list[dict[str, Any]]:
    rows = [
        dict(r._mapping)
        for r in await conn.execute(
            select(
                manifest_items.c.position,
                manifest_items.c.outcome,
                shipments.c.id,
                shipments.c.kind,
                shipments.c.status,
                shipments.c.waybill_no,
                shipments.c.window,
                shipments.c.recipient,
            )
            .join(shipments, shipments.c.id == manifest_items.c.shipment_id)
            .where(manifest_items.c.manifest_id == manifest_id)
            .order_by(manifest_items.c.position)
        )
    ]
    first_case: dict[str, str] = {}
    ids = [r["id"] for r in rows]
    if ids:
        for c in await conn.execute(
            select(shipment_cases.c.shipment_id, shipment_cases.c.case_no)
            .where(shipment_cases.c.shipment_id.in_(ids))
            .order_by(shipment_cases.c.shipment_id, shipment_cases.c.position)
        ):
            first_case.setdefault(c.shipment_id, c.case_no)
    for row in rows:
        row["case_no"] = first_case.get(row["id"], "—")
        # Masked as every page shows a recipient to staff who do not need the whole (name, phone, address tail).
        row["masked"] = masked_party(row.pop("recipient")) or {"name": "—", "phone": "—", "address": ""}
    return rows


def document_facts(manifest: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """What the printed manifest shows: stored facts only, so a reprint is the same document, byte for byte."""
    return {
        "id": manifest["id"],
        "department": manifest["department"],
        "created_at": manifest["created_at"],
        "created_by_name": manifest["created_by_name"],
        "qr_url": qr_url(base_url, manifest["code"]),
        "items": [
            {
                "position": i["position"],
                "waybill_no": i["waybill_no"] or "—",
                "case_no": i["case_no"],
                "name": i["masked"]["name"],
                "phone": i["masked"]["phone"],
            }
            for i in manifest["items"]
        ],
    }


# Taking a manifest over


@dataclass(frozen=True, slots=True)
class TakeOver:
    """The answer to a manifest scan; ``refused`` is (error code, department) when it may not be taken over."""

    manifest: dict[str, Any] | None
    refused: tuple[str, str] | None = None


def summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest as a scan answer or a lookup shows it (masked, no personal data in full)."""
    items = manifest["items"]
    taken = manifest["taken_over_at"] is not None
    moved = [
        {
            "waybill_no": i["waybill_no"],
            "case_no": i["case_no"],
            "status": i["outcome"],
            "status_text": status_text(i["outcome"], i["kind"]),
        }
        for i in items
        if taken and i["outcome"] != TAKEN
    ]
    return {
        "id": manifest["id"],
        "department": manifest["department"],
        "count": len(items),
        "picked_up": sum(1 for i in items if i["outcome"] == TAKEN),
        "already_moved": moved,
        "taken_over": taken,
        "taken_over_by": manifest.get("taken_over_by_name"),
        "taken_over_at": manifest["taken_over_at"].isoformat() if taken else None,
    }


async def find_by_code(conn: AsyncConnection, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(manifests.c.id, manifests.c.department).where(manifests.c.code == code)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()  # two couriers scanning at once: one takes it over, the other reads
    found = (await conn.execute(query)).first()
    return dict(found._mapping) if found is not None else None


async def take_over(
    conn: AsyncConnection, member: StaffMember, code: str, now: datetime, *, location: str | None = None
) -> TakeOver:
    """Scan of a manifest's QR by ``member``: the first moves its waiting parcels to ``picked_up``; any scan
    answers with what the first one did. Refused for an unknown code or another department's manifest."""
    head = await find_by_code(conn, code, lock=True)
    if head is None:
        return TakeOver(None, ("unknown-code", ""))
    if not member.serves(head["department"]) or not member.may("pickup", "delivery"):
        return TakeOver(None, ("not-your-hall", head["department"]))
    manifest = await load(conn, head["id"], [head["department"]])
    assert manifest is not None
    if manifest["taken_over_at"] is None:
        locked = await lock_shipments(conn, [i["id"] for i in manifest["items"]])
        for item in manifest["items"]:
            row = locked[item["id"]]
            outcome = row["status"]
            if row["status"] in WAITING and RANK[row["status"]] < RANK[PICKED_UP]:
                applied = await apply_event(
                    conn,
                    row,
                    status=PICKED_UP,
                    source="scan",
                    occurred_at=now,
                    carrier_text=EVENT_TEXT,
                    location=location,
                    dedup_key=f"manifest:{manifest['id']}",
                    staff_id=member.id,
                )
                if applied is not None and applied.changed:
                    outcome = TAKEN
            await conn.execute(
                update(manifest_items)
                .where(manifest_items.c.manifest_id == manifest["id"], manifest_items.c.shipment_id == item["id"])
                .values(outcome=outcome)
            )
        await conn.execute(
            update(manifests)
            .where(manifests.c.id == manifest["id"], manifests.c.taken_over_at.is_(None))
            .values(taken_over_by=member.id, taken_over_at=now)
        )
        manifest = await load(conn, head["id"], [head["department"]])
        assert manifest is not None
    return TakeOver(manifest)


def message(view: Mapping[str, Any]) -> str:
    """The scan answer in words, for the courier's phone: the same for every scan of the manifest."""
    moved = view["already_moved"]
    when = datetime.fromisoformat(view["taken_over_at"]).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    text = f"交接清单共 {view['count']} 件，{view['taken_over_by']} 于 {when} 接收：已揽收 {view['picked_up']} 件"
    if moved:
        listed = "、".join(f"{m['waybill_no']}（{m['status_text']}）" for m in moved)
        text += f"；{len(moved)} 件此前已揽收或已不在待揽收状态：{listed}"
    return text
