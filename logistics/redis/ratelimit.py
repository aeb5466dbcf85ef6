"""Rate limits for the public pages (tracking, complaints), per client IP.

Counted in Redis (a fixed window per key, shared by every API process). When Redis is unreachable the limit
falls back to an in-process token bucket: each API process then limits on its own, so the effective limit is
multiplied by the number of processes until Redis is back — looser, but the pages stay up and still limited.
After a Redis error the limiter stays on the in-process buckets for a while instead of waiting on a dead
connection on every request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("logistics.redis.ratelimit")
REDIS_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds, when not allowed


class RateLimiter:
    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last refill, monotonic)
        self._redis_down_until = 0.0

    @staticmethod
    def _ident(value: str) -> str:
        # Keys hold a hash, not the IP itself: Redis is not a place for personal data either. A forwarded
        # address is whatever the header held: bytes that are not UTF-8 arrive as lone surrogates, hashed as sent.
        return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:20]

    async def hit(self, name: str, who: str, limit: int, window: float) -> Verdict:
        key = f"{name}:{self._ident(who)}"
        if self.redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                return await self._redis_hit(key, limit, window)
            except Exception as exc:  # any client error: degrade to the local buckets
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning("rate_limit_redis_unavailable", extra={"error": type(exc).__name__})
        return self._local_hit(key, limit, window)

    async def _redis_hit(self, key: str, limit: int, window: float) -> Verdict:
        now = time.time()
        slot = int(now // window)
        redis_key = f"{self.prefix}:{key}:{slot}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, int(window) + 1)
            count, _ = await pipe.execute()
        if int(count) <= limit:
            return Verdict(True, 0)
        return Verdict(False, max(1, int((slot + 1) * window - now) + 1))

    def _local_hit(self, key: str, limit: int, window: float) -> Verdict:
        now = time.monotonic()
        rate = limit / window
        tokens, last = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * rate)
        if len(self._buckets) > 50_000:  # bounded memory under a flood of distinct IPs
            self._buckets.clear()
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return Verdict(True, 0)
        self._buckets[key] = (tokens, now)
        return Verdict(False, max(1, int((1 - tokens) / rate) + 1))


def client_ip(request: Any, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            # The proxy appends the address it saw last; earlier entries are whatever the client claimed.
            return forwarded.split(",")[-1].strip()
    return request.remote or "unknown"
