"""One short-lived cache of credential hash → owner, serving client API keys and staff tokens alike.

Authentication is then not a query per request. An unknown or revoked credential is cached too (as None), so
guessing costs no queries either. A revoked credential is dropped at once when its revocation is announced
(logistics.accounts.revocation calls ``forget``); ``ttl`` bounds how long it keeps working in a running process
that missed the announcement (Redis down).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from logistics.domain.ids import hash_secret

Owner = TypeVar("Owner")
# Past this many entries the cache starts over: a flood of made-up credentials must not grow it without bound.
MAX_ENTRIES = 10_000


class CredentialCache(Generic[Owner]):
    """``load(digest)`` finds the owner of a credential hash (None: unknown or revoked).

    ``prefix`` is what every credential of this kind starts with; any other value is unknown without a lookup.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[Owner | None]],
        ttl: float,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.ttl = ttl
        self.prefix = prefix
        self.clock = clock
        self._entries: dict[str, tuple[Owner | None, float]] = {}

    def forget(self, digests: Iterable[str]) -> None:
        """Drop revoked credentials (announced by logistics.accounts.revocation) before their time is up."""
        for digest in digests:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()

    async def owner(self, credential: str) -> Owner | None:
        if not credential.startswith(self.prefix):
            return None
        digest = hash_secret(credential)
        now = self.clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        owner = await self.load(digest)
        if len(self._entries) > MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (owner, now + self.ttl)
        return owner
