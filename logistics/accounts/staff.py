"""Postal staff (couriers) and hall clerks: accounts, tokens and their scope, shared by the CLI and the API.

A staff token is a different credential from a client's API key (prefix ``stk_`` vs ``lgk_``, another table),
so neither opens the other's endpoints. Tokens are 256-bit random secrets stored as SHA-256, like API keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update

from logistics.accounts import revocation
from logistics.accounts.credential_cache import CredentialCache
from logistics.domain import ids
from logistics.domain.ids import hash_secret
from logistics.domain.tables import console_sessions, shipments, staff, utcnow, verification_guards
from logistics.storage.db import Database

Role = Literal["courier", "clerk"]
ROLES: tuple[str, ...] = ("courier", "clerk")
TOKEN_PREFIX = "stk_"

# What each role may record. A courier works the whole route; a clerk at the hall hands delivery envelopes to
# the courier (pickup), logs arrivals, receives intake materials (deliver of an intake shipment only), and takes
# back a delivery envelope the post returned (returned: it is back at the hall).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "courier": frozenset({"pickup", "arrive", "deliver", "fail"}),
    "clerk": frozenset({"pickup", "arrive", "deliver", "returned"}),
}


class StaffError(ValueError):
    """A problem the operator can fix (bad name, unknown id)."""


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: str
    name: str
    role: str
    departments: tuple[str, ...]

    def serves(self, department: str) -> bool:
        return department in self.departments

    def may(self, action: str, kind: str) -> bool:
        if action not in ROLE_ACTIONS.get(self.role, frozenset()):
            return False
        # A clerk's "deliver" is the hall receiving intake materials; a licence reaches the applicant by courier.
        # A returned intake goes back to the applicant, not to the hall, so only a delivery comes back to a clerk.
        if action == "returned":
            return kind == "delivery"
        return not (self.role == "clerk" and action == "deliver" and kind != "intake")


@dataclass(frozen=True, slots=True)
class NewStaff:
    member: StaffMember
    token: str  # shown once


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _departments(values: Iterable[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in seen:
            if len(value) > 100:
                raise StaffError("a department name is at most 100 characters")
            seen.append(value)
    if not seen:
        raise StaffError("give at least one department or hall (--departments D1,D2)")
    return tuple(seen)


def _member(row: Any) -> StaffMember:
    return StaffMember(row.id, row.name, row.role, tuple(row.departments or ()))


async def create(db: Database, name: str, role: str, departments: Iterable[str]) -> NewStaff:
    name = name.strip()
    if not 1 <= len(name) <= 50:
        raise StaffError("the staff name must be 1–50 characters")
    if role not in ROLES:
        raise StaffError(f"the role must be one of {', '.join(ROLES)}")
    scope = _departments(departments)
    token = new_token()
    sid = "stf_" + ids.ulid()
    async with db.write() as conn:
        await conn.execute(
            insert(staff).values(
                id=sid,
                name=name,
                role=role,
                departments=list(scope),
                token_prefix=token[:8],
                token_hash=hash_secret(token),
                created_at=utcnow(),
                revoked_at=None,
            )
        )
    return NewStaff(StaffMember(sid, name, role, scope), token)


async def list_all(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                staff.c.id,
                staff.c.name,
                staff.c.role,
                staff.c.departments,
                staff.c.token_prefix,
                staff.c.created_at,
                staff.c.revoked_at,
            ).order_by(staff.c.created_at)
        )
        return [dict(r._mapping) for r in rows]


async def revoke(db: Database, staff_id: str, *, redis_url: str | None = None) -> datetime:
    """Revoke the member's token; with ``redis_url`` the running API processes are told at once (also when it
    was revoked before: an earlier announcement may have been missed)."""
    now = utcnow()
    async with db.write() as conn:
        row = (await conn.execute(select(staff.c.revoked_at, staff.c.token_hash).where(staff.c.id == staff_id))).first()
        if row is None:
            raise StaffError(f"no staff member {staff_id!r}")
        if row.revoked_at is None:
            await conn.execute(update(staff).where(staff.c.id == staff_id).values(revoked_at=now))
        # The console checks the token on every request anyway; ending the sessions keeps their record true.
        await conn.execute(
            update(console_sessions)
            .where(console_sessions.c.staff_id == staff_id, console_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
    if redis_url is not None:
        await revocation.announce(redis_url, [row.token_hash])
    return row.revoked_at or now


async def unlock_verification(db: Database, code: str) -> str:
    """Reset the wrong-code counter of a shipment (by id, tracking code or waybill) after checking the person."""
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(shipments.c.id).where(
                    (shipments.c.id == code) | (shipments.c.tracking_code == code) | (shipments.c.waybill_no == code)
                )
            )
        ).first()
        if row is None:
            raise StaffError(f"no shipment {code!r}")
        await conn.execute(delete(verification_guards).where(verification_guards.c.shipment_id == row.id))
        return str(row.id)


def staff_cache(db: Database, ttl: float) -> CredentialCache[StaffMember]:
    """Staff token → the staff member (an API key or garbage is unknown without a query)."""

    async def member_of(digest: str) -> StaffMember | None:
        async with db.read() as conn:
            query = select(staff).where(staff.c.token_hash == digest, staff.c.revoked_at.is_(None))
            row = (await conn.execute(query)).first()
        return _member(row) if row is not None else None

    return CredentialCache(member_of, ttl, prefix=TOKEN_PREFIX)
