"""Bearer API keys → the client (approval system) making the request."""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import select

from logistics.accounts.credential_cache import CredentialCache, Owner
from logistics.api.appkeys import KEY_CACHE
from logistics.api.errors import Problem
from logistics.domain.tables import api_keys
from logistics.storage.db import Database

# RFC 6750's b64token. Every credential this service issues (API keys, staff tokens) is of this alphabet, so a
# value outside it is unknown without a lookup. aiohttp hands header bytes that are not UTF-8 over as lone
# surrogates, which cannot even be hashed: they must stop here, as a 401 like any other unknown credential.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(request: web.Request) -> str | None:
    """The credential of an ``Authorization: Bearer`` header; None when it is missing or cannot be one of ours.

    Every Bearer endpoint (client API keys and staff tokens) reads its credential here.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or len(token) > 512 or not _B64TOKEN.fullmatch(token):
        return None
    return token


def key_cache(db: Database, ttl: float) -> CredentialCache[str]:
    """API key → the id of the client it belongs to."""

    async def client_of(digest: str) -> str | None:
        async with db.read() as conn:
            query = select(api_keys.c.client_id).where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
            return (await conn.execute(query)).scalar_one_or_none()

    return CredentialCache(client_of, ttl)


async def bearer_owner(
    request: web.Request, cache: CredentialCache[Owner], *, what: str, unknown: str, realm: str
) -> Owner:
    """The owner of the request's bearer credential, or a 401 problem saying which credential is wanted."""
    headers = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401, "unauthorized", "Authentication required", f"Send 'Authorization: Bearer <{what}>'.", headers=headers
        )
    owner = await cache.owner(token)
    if owner is None:
        raise Problem(401, "unauthorized", f"Invalid {what}", unknown, headers=headers)
    return owner


async def authenticate(request: web.Request) -> str:
    return await bearer_owner(
        request, request.app[KEY_CACHE], what="API key", unknown="The API key is unknown or revoked.", realm="dispatch"
    )
