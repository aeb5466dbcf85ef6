"""Client (approval system) management, shared by the CLI and the tests."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from logistics import ids
from logistics.db import Database
from logistics.models import api_keys, clients, utcnow


class ClientError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    id: str
    name: str
    api_key: str
    webhook_secret: str


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_webhook_url(url: str | None) -> str | None:
    if url is None:
        return None
    url = url.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 2000 or " " in url:
        raise ClientError("the webhook URL must be an absolute http(s) URL")
    return url


async def create(db: Database, name: str, webhook_url: str | None = None) -> Credentials:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ClientError("the client name must be 1–100 characters")
    webhook_url = check_webhook_url(webhook_url)
    now = utcnow()
    cid, key, secret = ids.client_id(), ids.api_key(), new_webhook_secret()
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(clients).values(
                    id=cid, name=name, webhook_url=webhook_url, webhook_secret=secret, created_at=now
                )
            )
            await conn.execute(insert(api_keys).values(**_key_row(cid, key, now)))
    except IntegrityError:
        raise ClientError(f"a client named {name!r} already exists") from None
    return Credentials(cid, name, key, secret)


def _key_row(client_id: str, key: str, now: datetime) -> dict[str, object]:
    return {
        "id": ids.key_id(),
        "client_id": client_id,
        "prefix": key[:10],
        "key_hash": ids.hash_secret(key),
        "created_at": now,
    }


async def resolve(db: Database, ref: str) -> dict[str, object]:
    """A client by id or by name."""
    async with db.read() as conn:
        row = (await conn.execute(select(clients).where((clients.c.id == ref) | (clients.c.name == ref)))).first()
    if row is None:
        raise ClientError(f"no client with id or name {ref!r}")
    return dict(row._mapping)


async def list_all(db: Database) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = await conn.execute(select(clients).order_by(clients.c.created_at))
        return [dict(r._mapping) for r in rows]


async def rotate_key(db: Database, ref: str) -> str:
    """Revoke every key of the client and issue a new one."""
    client = await resolve(db, ref)
    now = utcnow()
    key = ids.api_key()
    async with db.write() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.client_id == client["id"], api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await conn.execute(insert(api_keys).values(**_key_row(str(client["id"]), key, now)))
    return key
