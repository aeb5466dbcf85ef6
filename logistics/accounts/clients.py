"""Client (approval system) management, shared by the CLI and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from logistics.accounts import revocation
from logistics.domain import ids
from logistics.domain.events import requeue_deliveries
from logistics.domain.tables import api_keys, clients, utcnow, webhook_deliveries
from logistics.storage.db import Database
from webhooks import AddressPolicy, BlockedAddress, check_url, generate_secret

# How long the previous webhook secret keeps signing after a rotation: a day gives the approval system's
# operators time to deploy the new secret while every delivery still verifies with the old one.
SECRET_OVERLAP = timedelta(hours=24)


class ClientError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    id: str
    name: str
    api_key: str
    webhook_secret: str


def new_webhook_secret() -> str:
    return generate_secret()


def check_webhook_url(url: str | None) -> str | None:
    if url is None:
        return None
    url = url.strip()
    if not url.startswith(("https://", "http://")) or len(url) > 2000 or " " in url:
        raise ClientError("the webhook URL must be an absolute http(s) URL")
    return url


def allowed_webhook_url(url: str, policy: AddressPolicy | None) -> str:
    """``url`` checked for shape and, with a ``policy``, refused when its host alone shows it is off limits."""
    url = str(check_webhook_url(url))
    if policy is not None:
        try:
            check_url(url, policy)
        except BlockedAddress as exc:
            raise ClientError(f"the webhook URL is not allowed: {exc.strerror}") from None
        except ValueError as exc:
            raise ClientError(str(exc)) from None
    return url


async def create(
    db: Database, name: str, webhook_url: str | None = None, *, policy: AddressPolicy | None = None
) -> Credentials:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ClientError("the client name must be 1–100 characters")
    webhook_url = allowed_webhook_url(webhook_url, policy) if webhook_url is not None else None
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


async def rotate_key(db: Database, ref: str, *, redis_url: str | None = None) -> str:
    """Revoke every key of the client and issue a new one; with ``redis_url``, the running API processes are
    told at once (logistics.accounts.revocation), otherwise they stop honouring the old keys when their cache
    expires."""
    client = await resolve(db, ref)
    now = utcnow()
    key = ids.api_key()
    async with db.write() as conn:
        revoked = (
            (
                await conn.execute(
                    select(api_keys.c.key_hash).where(
                        api_keys.c.client_id == client["id"], api_keys.c.revoked_at.is_(None)
                    )
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.client_id == client["id"], api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await conn.execute(insert(api_keys).values(**_key_row(str(client["id"]), key, now)))
    if redis_url is not None:
        await revocation.announce(redis_url, list(revoked))
    return key


@dataclass(frozen=True, slots=True)
class Endpoint:
    client_id: str
    url: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    replayed: int = 0


async def set_webhook(
    db: Database,
    ref: str,
    url: str | None = None,
    *,
    enable: bool = True,
    policy: AddressPolicy | None = None,
) -> Endpoint:
    """Point a client's webhooks at ``url`` (if given) and, with ``enable``, re-enable a disabled endpoint.

    Re-enabling sends what was skipped while it was disabled. ``policy`` refuses URLs whose host alone shows
    they are off limits; names resolving to such addresses are refused when connecting.
    """
    if url is not None:
        url = allowed_webhook_url(url, policy)
    client = await resolve(db, ref)
    cid = str(client["id"])
    now = utcnow()
    replayed = 0
    async with db.write() as conn:
        values: dict[str, object] = {}
        if url is not None:
            values["webhook_url"] = url
        if enable:
            values.update(webhook_disabled_at=None, webhook_failing_since=None)
        if values:
            await conn.execute(update(clients).where(clients.c.id == cid).values(**values))
        if enable and (url or client["webhook_url"]):
            skipped = await conn.execute(
                select(webhook_deliveries.c.id, webhook_deliveries.c.shipment_id).where(
                    webhook_deliveries.c.client_id == cid, webhook_deliveries.c.status == "skipped"
                )
            )
            replayed = await requeue_deliveries(conn, [dict(r._mapping) for r in skipped], now)
        row = (await conn.execute(select(clients).where(clients.c.id == cid))).one()
    return Endpoint(cid, row.webhook_url, row.webhook_disabled_at, row.webhook_failing_since, replayed)


async def rotate_secret(db: Database, ref: str, *, overlap: timedelta = SECRET_OVERLAP) -> str:
    """A new webhook secret; the current one keeps signing alongside it for ``overlap``."""
    client = await resolve(db, ref)
    secret = new_webhook_secret()
    async with db.write() as conn:
        await conn.execute(
            update(clients)
            .where(clients.c.id == client["id"])
            .values(
                webhook_secret=secret,
                webhook_secret_previous=client["webhook_secret"],
                webhook_previous_until=utcnow() + overlap,
            )
        )
    return secret


async def redeliver(
    db: Database, ref: str, *, since: datetime | None = None, delivery_id: str | None = None
) -> list[str]:
    """Send deliveries again under their original webhook-id: one by id (whatever its state), or every failed
    or skipped one created since ``since``. Returns the ids queued."""
    if since is None and delivery_id is None:
        raise ClientError("say which deliveries: --id, or --since for every failed one since then")
    client = await resolve(db, ref)
    if client["webhook_disabled_at"] is not None:
        raise ClientError("the webhook endpoint is disabled: enable it first (clients set-webhook --enable)")
    if not client["webhook_url"]:
        raise ClientError("the client has no webhook URL")
    query = select(webhook_deliveries.c.id, webhook_deliveries.c.shipment_id).where(
        webhook_deliveries.c.client_id == client["id"]
    )
    if delivery_id is not None:
        query = query.where(webhook_deliveries.c.id == delivery_id)
    else:
        query = query.where(webhook_deliveries.c.status.in_(("failed", "skipped")))
    if since is not None:
        query = query.where(webhook_deliveries.c.created_at >= since)
    async with db.write() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(query)]
        if delivery_id is not None and not rows:
            raise ClientError(f"the client has no delivery {delivery_id!r}")
        await requeue_deliveries(conn, rows, utcnow())
    return [str(r["id"]) for r in rows]
