"""Revoked credentials reach every running API process at once.

The API processes cache credential hash → owner for ``API_KEY_CACHE_SECONDS`` (one
logistics.accounts.credential_cache.CredentialCache for API keys, one for staff tokens). Revoking publishes the
revoked hashes on one Redis pub/sub channel; every API process listens and drops those entries, so the next
request with them is refused. The cache time stays the
fallback while Redis is down, and a process that (re)subscribes drops its whole cache, since it may have missed
messages meanwhile. Only hashes travel: a credential itself is never published or logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from logistics.accounts.credential_cache import CredentialCache
from logistics.config import Settings

log = logging.getLogger("logistics.accounts.revocation")
CHANNEL = "logistics:revoked-credentials"
RETRY_SECONDS = 1.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"


def redis_url(settings: Settings) -> str:
    return settings.redis_url or DEFAULT_REDIS_URL


async def announce(redis_url: str, digests: Sequence[str]) -> bool:
    """Tell every API process that these credential hashes are revoked; False when Redis could not be told
    (the processes then stop honouring them when their cache entries expire)."""
    if not digests:
        return True
    client = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.publish(CHANNEL, orjson.dumps({"revoked": list(digests)}))
        return True
    except (RedisError, OSError):
        log.warning("revocation_not_announced", extra={"credentials": len(digests)})
        return False
    finally:
        await client.aclose()


def revoked_in(data: bytes) -> list[str]:
    """The hashes of one message; anything malformed on the channel is ignored."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    digests = payload.get("revoked") if isinstance(payload, dict) else None
    return [d for d in digests if isinstance(d, str)] if isinstance(digests, list) else []


class RevocationListener:
    """Subscribes for one API process and applies every announcement to its caches."""

    def __init__(self, redis_url: str, caches: Sequence[CredentialCache[Any]]) -> None:
        self.redis_url = redis_url
        self.caches = caches
        self.subscribed = asyncio.Event()  # set while subscribed: tests and readiness may await it
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocation-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            client = Redis.from_url(self.redis_url, socket_connect_timeout=1, health_check_interval=10)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    for cache in self.caches:  # what was announced while not subscribed is unknown
                        cache.clear()
                    self.subscribed.set()
                    log.info("revocation_listener_subscribed")
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            digests = revoked_in(message["data"])
                            for cache in self.caches:
                                cache.forget(digests)
            except (RedisError, OSError):
                if self.subscribed.is_set():
                    log.warning("revocation_listener_disconnected")
                self.subscribed.clear()
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                await client.aclose()
