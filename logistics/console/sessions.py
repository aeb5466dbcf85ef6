"""Sign-in sessions of the hall's console.

A clerk signs in once with their staff token; the browser then carries only a random session value. Sessions
live in the database, not Redis: the database is the record of truth, and a sign-out or a revoked token must
still hold after Redis loses its data (a session is not work that can be rebuilt). Each request reads its
session joined with the staff row, so a revoked token signs out its sessions at once, in every process, with
no cache to invalidate. Only the SHA-256 of the session value is stored, like tokens and API keys.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from logistics.accounts.staff import TOKEN_PREFIX, StaffMember
from logistics.domain.ids import hash_secret
from logistics.domain.tables import console_sessions, staff
from logistics.storage.db import Database

CONSOLE_ROLE = "clerk"


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # the stored hash
    member: StaffMember
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignedIn:
    cookie_value: str  # goes to the browser only
    session: Session


def csrf_matches(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


async def sign_in(db: Database, token: str, *, lifetime: timedelta, now: datetime) -> SignedIn | None:
    """A new session for a clerk's active token; None for anything else (unknown, revoked, a courier's)."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(staff).where(staff.c.token_hash == hash_secret(token), staff.c.revoked_at.is_(None))
            )
        ).first()
        if row is None or row.role != CONSOLE_ROLE:
            return None
        value = secrets.token_urlsafe(32)
        session = Session(
            hash_secret(value),
            StaffMember(row.id, row.name, row.role, tuple(row.departments or ())),
            secrets.token_urlsafe(32),
            now + lifetime,
        )
        await conn.execute(
            insert(console_sessions).values(
                id=session.id,
                staff_id=row.id,
                csrf_token=session.csrf_token,
                created_at=now,
                expires_at=session.expires_at,
                ended_at=None,
            )
        )
    return SignedIn(value, session)


# Built once: every console request runs it, and building a select costs more CPU than the lookup itself.
_CURRENT = (
    select(
        console_sessions.c.id,
        console_sessions.c.csrf_token,
        console_sessions.c.expires_at,
        staff.c.id.label("staff_id"),
        staff.c.name,
        staff.c.role,
        staff.c.departments,
    )
    .join(staff, staff.c.id == console_sessions.c.staff_id)
    .where(
        console_sessions.c.id == bindparam("session_id"),
        console_sessions.c.ended_at.is_(None),
        console_sessions.c.expires_at > bindparam("now"),
        staff.c.revoked_at.is_(None),
        staff.c.role == CONSOLE_ROLE,
    )
)


async def current(db: Database, cookie_value: str, *, now: datetime) -> Session | None:
    """The live session of a cookie: not signed out, not expired, its token neither revoked nor re-roled."""
    if not cookie_value or len(cookie_value) > 100:
        return None
    async with db.read() as conn:
        return await current_on(conn, cookie_value, now=now)


async def current_on(conn: Any, cookie_value: str, *, now: datetime) -> Session | None:
    """``current`` on an open connection: a page that only reads looks its session up on the connection it then
    reads with (each connection taken from the pool costs round trips of its own)."""
    if not cookie_value or len(cookie_value) > 100:
        return None
    row = (await conn.execute(_CURRENT, {"session_id": hash_secret(cookie_value), "now": now})).first()
    if row is None:
        return None
    member = StaffMember(row.staff_id, row.name, row.role, tuple(row.departments or ()))
    return Session(row.id, member, row.csrf_token, row.expires_at)


async def sign_out(db: Database, session_id: str, *, now: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(console_sessions)
            .where(console_sessions.c.id == session_id, console_sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
