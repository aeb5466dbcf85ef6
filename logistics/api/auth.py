"""Bearer API keys → the client (approval system) making the request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from aiohttp import web
from sqlalchemy import select

from logistics.api.appkeys import KEY_CACHE
from logistics.api.errors import Problem
from logistics.domain.ids import hash_secret
from logistics.domain.tables import api_keys
from logistics.storage.db import Database

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="dispatch"'}
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


class KeyCache:
    """key hash → client id, kept briefly so that authentication is not a query per request.

    A revoked key is dropped at once when its revocation is announced (logistics.accounts.revocation); ``ttl`` bounds
    how long it keeps working in a running process that missed the announcement (Redis down).
    """

    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
        self.ttl = ttl
        self._entries: dict[str, tuple[str | None, float]] = {}

    def forget(self, digests: Iterable[str]) -> None:
        """Drop revoked credentials (announced by logistics.accounts.revocation) before their time is up."""
        for digest in digests:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()

    async def client_for(self, key: str) -> str | None:
        digest = hash_secret(key)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self.db.read() as conn:
            client_id = (
                await conn.execute(
                    select(api_keys.c.client_id).where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
                )
            ).scalar_one_or_none()
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (client_id, now + self.ttl)
        return client_id


async def authenticate(request: web.Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401,
            "unauthorized",
            "Authentication required",
            "Send 'Authorization: Bearer <api key>'.",
            headers=UNAUTHORIZED_HEADERS,
        )
    client_id = await request.app[KEY_CACHE].client_for(token)
    if client_id is None:
        raise Problem(
            401, "unauthorized", "Invalid API key", "The API key is unknown or revoked.", headers=UNAUTHORIZED_HEADERS
        )
    return client_id
