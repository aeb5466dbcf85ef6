"""The one credential cache behind API keys and staff tokens: what it keeps, for how long, and what it forgets."""

from __future__ import annotations

from logistics.accounts.credential_cache import CredentialCache
from logistics.accounts.staff import StaffMember
from logistics.domain.ids import hash_secret

STAFF_TOKEN = "stk_Qm9vZ2llLVdvb2dpZS1ZdWFuLTIwMjYtMTItMDQtYmVhcg"
API_KEY = "lgk_M2V4YW1wbGUtaGFsbC16aGVuZ3pob3UtMjAyNi0xMi0wNA"
COURIER = StaffMember("stf_01JEBZ3Q8W9X0Y1Z2A3B4C5D6E", "欧阳娜娜", "courier", ("郑州市市场监督管理局",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Owners:
    """The table behind the cache: credential hash → owner, counting the lookups."""

    def __init__(self, owners: dict[str, StaffMember]) -> None:
        self.owners = owners
        self.lookups: list[str] = []

    async def __call__(self, digest: str) -> StaffMember | None:
        self.lookups.append(digest)
        return self.owners.get(digest)


def staff_cache(owners: Owners, clock: Clock) -> CredentialCache[StaffMember]:
    return CredentialCache(owners, 30.0, prefix="stk_", clock=clock)


async def test_a_known_credential_is_looked_up_once_while_its_entry_lasts() -> None:
    owners, clock = Owners({hash_secret(STAFF_TOKEN): COURIER}), Clock()
    cache = staff_cache(owners, clock)
    assert await cache.owner(STAFF_TOKEN) == COURIER
    clock.now += 29.9
    assert await cache.owner(STAFF_TOKEN) == COURIER
    assert owners.lookups == [hash_secret(STAFF_TOKEN)]


async def test_an_entry_is_looked_up_again_once_its_time_is_up() -> None:
    owners, clock = Owners({hash_secret(STAFF_TOKEN): COURIER}), Clock()
    cache = staff_cache(owners, clock)
    await cache.owner(STAFF_TOKEN)
    clock.now += 30.0
    del owners.owners[hash_secret(STAFF_TOKEN)]  # revoked meanwhile
    assert await cache.owner(STAFF_TOKEN) is None
    assert len(owners.lookups) == 2


async def test_a_forgotten_credential_is_refused_at_once() -> None:
    owners, clock = Owners({hash_secret(STAFF_TOKEN): COURIER}), Clock()
    cache = staff_cache(owners, clock)
    await cache.owner(STAFF_TOKEN)
    del owners.owners[hash_secret(STAFF_TOKEN)]
    cache.forget([hash_secret(STAFF_TOKEN)])
    assert await cache.owner(STAFF_TOKEN) is None


async def test_clear_drops_every_entry() -> None:
    owners, clock = Owners({hash_secret(STAFF_TOKEN): COURIER}), Clock()
    cache = staff_cache(owners, clock)
    await cache.owner(STAFF_TOKEN)
    cache.clear()
    await cache.owner(STAFF_TOKEN)
    assert len(owners.lookups) == 2


async def test_an_unknown_credential_is_cached_too_so_guessing_costs_no_queries() -> None:
    owners, clock = Owners({}), Clock()
    cache = staff_cache(owners, clock)
    assert await cache.owner("stk_made-up") is None
    assert await cache.owner("stk_made-up") is None
    assert len(owners.lookups) == 1


async def test_a_credential_of_another_kind_is_unknown_without_a_lookup() -> None:
    owners, clock = Owners({hash_secret(API_KEY): COURIER}), Clock()
    cache = staff_cache(owners, clock)
    assert await cache.owner(API_KEY) is None
    assert owners.lookups == []
