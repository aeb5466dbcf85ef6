"""A bad rating (不满意, 非常不满意) opens a follow-up for the department, due on the fifth working day after it
(Beijing dates, holidays and 调休 counted); the client lists them and closes one once, with the action taken."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from ratings_support import delivered, rate, stored_follow_ups, stored_ratings
from sqlalchemy import select, update

from logistics.accounts import clients
from logistics.api import ratings
from logistics.domain.tables import follow_ups as follow_ups_table
from logistics.domain.tables import webhook_deliveries
from logistics.storage.db import Database

from support import auth

ACTION = "已电话回访申请人，说明延误原因并致歉；已督促揽投部按预约时间投递。"


async def bad_rating(api: TestClient, db: Database, creds: clients.Credentials, level: int = 2) -> dict[str, Any]:
    shipment = await delivered(api, db, creds)
    assert (await rate(api, shipment["tracking_code"], level, "等了一个星期")).status == 303
    [follow_up] = [f for f in await stored_follow_ups(db) if f["shipment_id"] == shipment["id"]]
    return follow_up


async def close(api: TestClient, creds: clients.Credentials, follow_up_id: str, action: Any = ACTION) -> Any:
    return await api.post(f"/v1/follow-ups/{follow_up_id}/close", json={"action": action}, headers=auth(creds))


@pytest.mark.parametrize(("level", "opens"), [(1, True), (2, True), (3, False), (4, False), (5, False)])
async def test_only_the_two_bad_levels_open_a_follow_up(
    api: TestClient, db: Database, hall: Any, level: int, opens: bool
) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], level)
    [rating] = await stored_ratings(db)
    found = await stored_follow_ups(db)
    assert bool(found) is opens
    if opens:
        assert (found[0]["rating_id"], found[0]["shipment_id"], found[0]["client_id"]) == (
            rating["id"],
            shipment["id"],
            hall.id,
        )
        assert found[0]["closed_at"] is None and found[0]["id"].startswith("fu_")


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        ("2026-12-04T03:00:00+00:00", date(2026, 12, 11)),  # Friday: the next five working days
        ("2026-12-03T17:00:00+00:00", date(2026, 12, 11)),  # Thursday in UTC, Friday in Beijing: Beijing decides
        ("2026-09-30T02:00:00+00:00", date(2026, 10, 13)),  # across 国庆, with the Saturday 调休 working day
    ],
)
async def test_due_on_the_fifth_working_day_after_the_beijing_date(
    api: TestClient, db: Database, hall: Any, opened: str, due: date
) -> None:
    shipment = await delivered(api, db, hall)
    await ratings.rate(db, shipment["id"], 1, "", now=datetime.fromisoformat(opened))
    [follow_up] = await stored_follow_ups(db)
    assert follow_up["due_by"] == due
    assert follow_up["opened_at"] == datetime.fromisoformat(opened).astimezone(UTC)


async def test_the_client_lists_open_and_closed_follow_ups(api: TestClient, db: Database, hall: Any) -> None:
    first = await bad_rating(api, db, hall, level=1)
    second = await bad_rating(api, db, hall, level=2)
    assert (await close(api, hall, first["id"])).status == 200
    every = await (await api.get("/v1/follow-ups", headers=auth(hall))).json()
    opened = await (await api.get("/v1/follow-ups?status=open", headers=auth(hall))).json()
    closed = await (await api.get("/v1/follow-ups?status=closed", headers=auth(hall))).json()
    # Newest first, by id (its first ten characters are the millisecond it was made in).
    assert [f["id"] for f in every["data"]] == sorted([first["id"], second["id"]], reverse=True)
    assert [f["id"] for f in opened["data"]] == [second["id"]]
    assert [(f["id"], f["status"], f["level"]) for f in closed["data"]] == [(first["id"], "closed", 1)]
    assert opened["data"][0]["due_by"] == second["due_by"].isoformat() and opened["data"][0]["late"] is False


async def test_follow_ups_are_listed_in_cursor_pages(api: TestClient, db: Database, hall: Any) -> None:
    made = [await bad_rating(api, db, hall) for _ in range(3)]
    first = await (await api.get("/v1/follow-ups?limit=2", headers=auth(hall))).json()
    second = await (await api.get(f"/v1/follow-ups?limit=2&cursor={first['next_cursor']}", headers=auth(hall))).json()
    assert [f["id"] for f in first["data"] + second["data"]] == sorted((f["id"] for f in made), reverse=True)
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=pending", "cursor=cmF0XzAx", "limit=1000"])
async def test_a_bad_filter_is_a_problem(api: TestClient, hall: Any, query: str) -> None:
    resp = await api.get(f"/v1/follow-ups?{query}", headers=auth(hall))
    assert resp.status == 422 and resp.content_type == "application/problem+json"


async def test_closing_records_the_action_the_client_and_the_time(api: TestClient, db: Database, hall: Any) -> None:
    follow_up = await bad_rating(api, db, hall)
    resp = await close(api, hall, follow_up["id"], f"  {ACTION}\x00 ")
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["action"], body["closed_by"], body["late"]) == ("closed", ACTION, hall.id, False)
    [stored] = await stored_follow_ups(db)
    assert (stored["action"], stored["closed_by"]) == (ACTION, hall.id) and stored["closed_at"] is not None


async def test_closing_twice_is_a_409_carrying_the_first_close(api: TestClient, db: Database, hall: Any) -> None:
    follow_up = await bad_rating(api, db, hall)
    first = await (await close(api, hall, follow_up["id"])).json()
    again = await close(api, hall, follow_up["id"], "第二次登记的处理情况")
    assert again.status == 409 and again.content_type == "application/problem+json"
    body = await again.json()
    assert body["type"].endswith("/already-closed")
    assert (body["follow_up"]["action"], body["follow_up"]["closed_at"]) == (ACTION, first["closed_at"])
    assert [f["action"] for f in await stored_follow_ups(db)] == [ACTION]


async def test_another_clients_follow_up_is_a_404_and_stays_open(
    api: TestClient, db: Database, hall: Any, other_hall: clients.Credentials
) -> None:
    follow_up = await bad_rating(api, db, hall)
    resp = await close(api, other_hall, follow_up["id"])
    assert resp.status == 404
    assert (await close(api, hall, "fu_01JD8Z6Q2M4X7V3K9T1R5N8B2C")).status == 404
    assert [f["closed_at"] for f in await stored_follow_ups(db)] == [None]
    assert (await (await api.get("/v1/follow-ups", headers=auth(other_hall))).json())["data"] == []


@pytest.mark.parametrize("action", [None, "", "好", 42, ["已回访"], "办" * (ratings.ACTION_MAX + 1)])
async def test_the_action_is_required_and_bounded(api: TestClient, db: Database, hall: Any, action: Any) -> None:
    follow_up = await bad_rating(api, db, hall)
    resp = await close(api, hall, follow_up["id"], action)
    assert resp.status == 422 and [e["field"] for e in (await resp.json())["errors"]] == ["action"]


async def test_a_malformed_body_is_a_400(api: TestClient, db: Database, hall: Any) -> None:
    follow_up = await bad_rating(api, db, hall)
    headers = {**auth(hall), "Content-Type": "application/json"}
    resp = await api.post(f"/v1/follow-ups/{follow_up['id']}/close", data=b"{", headers=headers)
    assert resp.status == 400 and resp.content_type == "application/problem+json"


async def test_closed_after_the_due_date_is_late(api: TestClient, db: Database, hall: Any) -> None:
    follow_up = await bad_rating(api, db, hall)
    async with db.write() as conn:
        await conn.execute(
            update(follow_ups_table)
            .where(follow_ups_table.c.id == follow_up["id"])
            .values(due_by=date(2026, 11, 20))
        )
    still_open = await (await api.get("/v1/follow-ups?status=open", headers=auth(hall))).json()
    assert still_open["data"][0]["late"] is True
    body = await (await close(api, hall, follow_up["id"])).json()
    assert body["late"] is True


def test_lateness_is_decided_on_beijing_dates() -> None:
    due = date(2026, 12, 11)
    assert ratings.is_late(due, datetime(2026, 12, 11, 15, 59, tzinfo=UTC), datetime.now(UTC)) is False
    assert ratings.is_late(due, datetime(2026, 12, 11, 16, 0, tzinfo=UTC), datetime.now(UTC)) is True
    assert ratings.is_late(due, None, datetime(2026, 12, 11, 15, 0, tzinfo=UTC)) is False


async def test_closing_is_sent_to_the_client_as_a_webhook(api: TestClient, db: Database) -> None:
    hooked = await clients.create(db, "上街区卫健审批系统", "https://wj.sj.gov.cn/hooks")
    follow_up = await bad_rating(api, db, hooked)
    await close(api, hooked, follow_up["id"])
    async with db.read() as conn:
        types = [
            r.type
            for r in await conn.execute(
                select(webhook_deliveries.c.type)
                .where(webhook_deliveries.c.shipment_id == follow_up["shipment_id"])
                .order_by(webhook_deliveries.c.position)
            )
        ]
    assert types[-2:] == ["shipment.rated", "shipment.follow_up_closed"]


async def test_the_privacy_purge_clears_the_comment_and_the_action_but_keeps_the_level(
    api: TestClient, db: Database, hall: Any
) -> None:
    from datetime import timedelta

    from logistics.jobs import purge

    follow_up = await bad_rating(api, db, hall, level=1)
    await close(api, hall, follow_up["id"])
    assert await purge.purge_finished(db, after=timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1)) == 1
    [rating] = await stored_ratings(db)
    [closed] = await stored_follow_ups(db)
    assert (rating["level"], rating["comment"]) == (1, purge.PURGED_TEXT)
    assert closed["action"] == purge.PURGED_TEXT and closed["closed_at"] is not None
