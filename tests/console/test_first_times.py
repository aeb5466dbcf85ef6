"""When a parcel was handed to the post (``shipments.handed_at``) and delivered (``delivered_at``): the time of its
first pickup, or delivery, not refused, kept on the shipment by the event writer and filled by migrations 0023 and
0024 for shipments recorded before them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from aiohttp.test_utils import TestClient
from console_support import MARKET, create, move
from sqlalchemy import select

from logistics.accounts import clients
from logistics.console import queries
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import shipment_events, shipments, utcnow
from logistics.storage import migrate
from logistics.storage.db import Database


async def _kept(db: Database, shipment_id: str, column: str) -> datetime | None:
    async with db.read() as conn:
        query = select(shipments.c[column]).where(shipments.c.id == shipment_id)
        return (await conn.execute(query)).scalar_one()


async def _handed_at(db: Database, shipment_id: str) -> datetime | None:
    return await _kept(db, shipment_id, "handed_at")


async def _delivered_at(db: Database, shipment_id: str) -> datetime | None:
    return await _kept(db, shipment_id, "delivered_at")


async def _migrated_again_from(db: Database, revision: str) -> None:
    """Down to ``revision`` and up again: the shipments so far are as if recorded before the next migration."""
    await asyncio.to_thread(migrate.downgrade, db.url, revision)
    await migrate.upgrade_async(db.url)


async def _ordered(api: TestClient, db: Database, hall: clients.Credentials, waybill: str) -> str:
    made = (await create(api, hall))["id"]
    await move(db, made, "ordered", waybill=waybill)
    return made


async def test_a_shipment_not_yet_picked_up_has_no_hand_over_time(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    ordered = await _ordered(api, db, hall, "1151263812360")
    assert await _handed_at(db, ordered) is None


async def test_the_first_pickup_is_the_hand_over_time_even_when_its_push_arrives_last(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    parcel = await _ordered(api, db, hall, "1151263812361")
    scanned, collected = utcnow() - timedelta(hours=1), utcnow() - timedelta(hours=5)
    await move(db, parcel, "picked_up", occurred_at=scanned)
    assert await _handed_at(db, parcel) == scanned
    await move(db, parcel, "picked_up", occurred_at=collected)  # the carrier's own 收寄, pushed late
    assert await _handed_at(db, parcel) == collected
    await move(db, parcel, "picked_up", occurred_at=utcnow())  # scanned again: not a new hand-over
    assert await _handed_at(db, parcel) == collected


async def test_a_pickup_refused_as_a_contradiction_is_not_a_hand_over(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    parcel = await _ordered(api, db, hall, "1151263812362")
    await move(db, parcel, "delivered", occurred_at=utcnow() - timedelta(hours=2))
    await move(db, parcel, "picked_up", occurred_at=utcnow())  # after the delivery: refused
    async with db.read() as conn:
        refused = (
            await conn.execute(
                select(shipment_events.c.refused).where(
                    shipment_events.c.shipment_id == parcel, shipment_events.c.status == "picked_up"
                )
            )
        ).scalar_one()
    assert refused is True
    assert await _handed_at(db, parcel) is None


async def test_shipments_recorded_before_0023_get_their_first_pickup_as_the_hand_over_time(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    first, later = utcnow() - timedelta(days=2), utcnow() - timedelta(days=1)
    twice = await _ordered(api, db, hall, "1151263812363")
    await move(db, twice, "picked_up", occurred_at=later)
    await move(db, twice, "picked_up", occurred_at=first)
    waiting = await _ordered(api, db, hall, "1151263812364")
    refused = await _ordered(api, db, hall, "1151263812365")
    await move(db, refused, "delivered", occurred_at=first)
    await move(db, refused, "picked_up", occurred_at=later)
    await _migrated_again_from(db, "0022")
    assert [await _handed_at(db, s) for s in (twice, waiting, refused)] == [first, None, None]


async def test_todays_list_shows_the_hand_over_time_beside_the_parcel(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    parcel = await _ordered(api, db, hall, "1151263812366")
    today = beijing_today(utcnow())
    collected = max(utcnow() - timedelta(minutes=30), queries.beijing_day(today)[0])
    await move(db, parcel, "picked_up", occurred_at=collected)
    days = await queries.today(db, MARKET, today)
    [row] = [r for day in days.values() for r in day.sections["waiting"] + day.sections["picked_up"]]
    assert (row["id"], row["handed_at"]) == (parcel, collected)


async def test_the_first_delivery_is_the_delivery_time_even_when_its_push_arrives_last(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    parcel = await _ordered(api, db, hall, "1151263812367")
    await move(db, parcel, "picked_up", occurred_at=utcnow() - timedelta(hours=6))
    assert await _delivered_at(db, parcel) is None
    scanned, signed = utcnow() - timedelta(hours=1), utcnow() - timedelta(hours=3)
    await move(db, parcel, "delivered", occurred_at=scanned)
    assert await _delivered_at(db, parcel) == scanned
    await move(db, parcel, "delivered", occurred_at=signed)  # the carrier's own 妥投, pushed late
    assert await _delivered_at(db, parcel) == signed
    await move(db, parcel, "delivered", occurred_at=utcnow())  # reported again: not a new delivery
    assert await _delivered_at(db, parcel) == signed


async def test_a_delivery_refused_as_a_contradiction_is_not_a_delivery(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    parcel = await _ordered(api, db, hall, "1151263812368")
    await move(db, parcel, "picked_up", "returning", occurred_at=utcnow() - timedelta(hours=2))
    await move(db, parcel, "delivered", occurred_at=utcnow())  # after the return began: refused
    assert await _delivered_at(db, parcel) is None


async def test_shipments_recorded_before_0024_get_their_first_delivery_as_the_delivery_time(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    first, later = utcnow() - timedelta(days=2), utcnow() - timedelta(days=1)
    twice = await _ordered(api, db, hall, "1151263812369")
    await move(db, twice, "picked_up", occurred_at=first - timedelta(days=1))
    await move(db, twice, "delivered", occurred_at=later)
    await move(db, twice, "delivered", occurred_at=first)
    on_its_way = await _ordered(api, db, hall, "1151263812370")
    await move(db, on_its_way, "picked_up", "in_transit", occurred_at=first)
    refused = await _ordered(api, db, hall, "1151263812371")
    await move(db, refused, "picked_up", "returning", occurred_at=first)
    await move(db, refused, "delivered", occurred_at=later)
    await _migrated_again_from(db, "0023")
    assert [await _delivered_at(db, s) for s in (twice, on_its_way, refused)] == [first, None, None]


async def test_a_parcel_is_delivered_today_only_when_it_was_first_delivered_today(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    day = beijing_today(utcnow())
    start = queries.beijing_day(day)[0]
    earlier = await _ordered(api, db, hall, "1151263812372")
    await move(db, earlier, "picked_up", occurred_at=start - timedelta(days=2))
    await move(db, earlier, "delivered", occurred_at=start - timedelta(hours=1))
    await move(db, earlier, "delivered")  # reported again today
    today = await _ordered(api, db, hall, "1151263812373")
    await move(db, today, "picked_up", occurred_at=start - timedelta(days=1))
    signed = max(utcnow() - timedelta(minutes=20), start)
    await move(db, today, "delivered", occurred_at=signed)
    days = await queries.today(db, MARKET, day)
    assert [r["id"] for d in days.values() for r in d.sections["delivered"]] == [today]
