"""好差评 on the tracking page: once a shipment is delivered, one rating on the five-level scale with an optional
comment (numbers removed, never shown publicly), sent to the client as ``shipment.rated`` and listed by
``GET /v1/ratings``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ratings_support import ROUTE, delivered, move, rate, stored_follow_ups, stored_ratings
from sqlalchemy import select

from labels.privacy import REMOVED
from logistics.accounts import clients
from logistics.api import ratings
from logistics.domain.tables import webhook_deliveries
from logistics.storage.db import Database

from support import auth, delivery_body

COMMENT = "投递员没有打电话就放在门卫，我的电话13812345678，身份证41010519900307123X。"
CLEANED = f"投递员没有打电话就放在门卫，我的电话{REMOVED}，身份证{REMOVED}。"


async def test_a_delivered_shipment_offers_the_five_levels(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert 'id="rating-form"' in page
    for n, text in ratings.LEVELS.items():
        assert f'value="{n}" id="level-{n}"' in page and text in page


async def test_before_delivery_there_is_no_form_and_a_post_is_refused(
    api: TestClient, db: Database, hall: Any
) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    shipment = await resp.json()
    await move(db, shipment["id"], *ROUTE[:-1])
    code = shipment["tracking_code"]
    assert 'id="rating-form"' not in await (await api.get(f"/t/{code}")).text()
    refused = await rate(api, code, 5)
    assert refused.status == 409
    assert "邮件送达后才能评价" in await refused.text()
    assert await stored_ratings(db) == []


async def test_a_rating_is_stored_with_its_comment_cleaned_and_the_page_shows_only_the_level(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await delivered(api, db, hall)
    resp = await rate(api, shipment["tracking_code"], 4, COMMENT)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/t/{shipment['tracking_code']}?rating=sent#rating"
    page = await (await api.get(resp.headers["Location"])).text()
    assert "感谢您的评价" in page and "您已评价：满意" in page and 'id="rating-form"' not in page
    assert "投递员没有打电话" not in page and REMOVED not in page  # the comment is never public
    [stored] = await stored_ratings(db)
    assert (stored["shipment_id"], stored["client_id"], stored["level"]) == (shipment["id"], hall.id, 4)
    assert stored["comment"] == CLEANED
    assert stored["id"].startswith("rat_")


async def test_an_intake_is_rated_once_it_reached_the_hall(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall, kind="intake")
    assert (await rate(api, shipment["tracking_code"], 5)).status == 303
    assert [r["level"] for r in await stored_ratings(db)] == [5]


async def test_a_rating_without_a_comment_stores_none(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], 3, "   ")
    assert [(r["level"], r["comment"]) for r in await stored_ratings(db)] == [(3, None)]


async def test_a_second_rating_is_a_chinese_message_and_the_first_stays(
    api: TestClient, db: Database, hall: Any
) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], 5)
    again = await rate(api, shipment["tracking_code"], 1, "还是不满意")
    assert again.status == 409
    page = await again.text()
    assert "这件邮件已经评价过了（非常满意），每件邮件只能评价一次。" in page
    assert "您已评价：非常满意" in page and "<html" in page
    assert [r["level"] for r in await stored_ratings(db)] == [5]


async def test_two_ratings_at_once_store_one(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    answers = await asyncio.gather(*(rate(api, shipment["tracking_code"], n) for n in (1, 2, 4, 5)))
    assert sorted(a.status for a in answers) == [303, 409, 409, 409]
    assert len(await stored_ratings(db)) == 1
    assert len(await stored_follow_ups(db)) <= 1


@pytest.mark.parametrize("level", ["", "0", "6", "满意", "2.5"])
async def test_a_level_outside_the_scale_is_refused_next_to_the_form(
    api: TestClient, db: Database, hall: Any, level: str
) -> None:
    shipment = await delivered(api, db, hall)
    resp = await rate(api, shipment["tracking_code"], level, "很好")
    assert resp.status == 422
    page = await resp.text()
    assert "请选择评价等级" in page and 'id="rating-form"' in page and "很好" in page
    assert await stored_ratings(db) == []


async def test_a_comment_over_the_bound_is_refused(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    resp = await rate(api, shipment["tracking_code"], 2, "慢" * (ratings.COMMENT_MAX + 1))
    assert resp.status == 422
    assert "评价内容太长了（最多200个字）" in await resp.text()
    assert await stored_ratings(db) == []


async def test_a_rating_posted_from_another_site_is_refused(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    resp = await rate(api, shipment["tracking_code"], 1, **{"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    assert await stored_ratings(db) == []


async def test_a_rating_of_an_unknown_code_is_a_404(api: TestClient) -> None:
    assert (await rate(api, "23456789ABCDE", 5)).status == 404


async def test_ratings_are_rate_limited_per_address(settings: Any, db: Database, hall: Any) -> None:
    from logistics.api.app import create_app

    settings.complaint_rate_per_hour = 2
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    try:
        first = await delivered(client, db, hall)
        statuses = [(await rate(client, first["tracking_code"], "9")).status for _ in range(3)]
        assert statuses == [422, 422, 429]
        assert "访问过于频繁" in await (await rate(client, first["tracking_code"], 5)).text()
    finally:
        await client.close()


async def test_json_ratings_answer_with_the_id(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    resp = await api.post(f"/t/{shipment['tracking_code']}/rating", json={"level": 2, "comment": "太慢了"})
    assert resp.status == 201
    body = await resp.json()
    assert body["id"].startswith("rat_") and body["level"] == 2 and body["follow_up_opened"] is True
    again = await api.post(f"/t/{shipment['tracking_code']}/rating", json={"level": 2})
    assert again.status == 409 and again.content_type == "application/problem+json"


async def test_the_public_json_view_carries_the_level_but_never_the_comment(
    api: TestClient, db: Database, hall: Any
) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], 2, "投递太慢，包装也破了")
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers={"Accept": "application/json"})).json()
    assert view["rating"] == {"level": 2, "level_text": "不满意"} and view["can_rate"] is False
    assert "投递太慢" not in str(view)


async def test_a_rating_is_sent_to_the_client_as_a_webhook_with_the_cleaned_comment(
    api: TestClient, db: Database
) -> None:
    hooked = await clients.create(db, "上街区卫健审批系统", "https://wj.sj.gov.cn/hooks")
    shipment = await delivered(api, db, hooked)
    await rate(api, shipment["tracking_code"], 1, COMMENT)
    async with db.read() as conn:
        delivery = (
            await conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.type == "shipment.rated"))
        ).one()
    data = delivery.payload["data"]
    assert data["id"] == shipment["id"]
    rating = data["rating"]
    assert (rating["level"], rating["level_text"], rating["comment"]) == (1, "非常不满意", CLEANED)
    assert rating["follow_up_opened"] is True and rating["follow_up"]["id"].startswith("fu_")


async def test_the_client_lists_its_ratings_in_cursor_pages(api: TestClient, db: Database, hall: Any) -> None:
    made = [await delivered(api, db, hall) for _ in range(3)]
    for n, shipment in enumerate(made):
        await rate(api, shipment["tracking_code"], 5 - n, f"第{n + 1}件")
    first = await (await api.get("/v1/ratings?limit=2", headers=auth(hall))).json()
    second = await (await api.get(f"/v1/ratings?limit=2&cursor={first['next_cursor']}", headers=auth(hall))).json()
    assert [r["comment"] for r in first["data"] + second["data"]] == ["第3件", "第2件", "第1件"]
    assert second["next_cursor"] is None
    newest = first["data"][0]
    assert (newest["level"], newest["level_text"], newest["tracking_code"]) == (3, "基本满意", made[2]["tracking_code"])
    assert newest["follow_up_opened"] is False and newest["follow_up"] is None


async def test_since_keeps_the_ratings_given_from_then_on(api: TestClient, db: Database, hall: Any) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], 4)
    before = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    after = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    kept = await (await api.get("/v1/ratings", params={"since": before}, headers=auth(hall))).json()
    gone = await (await api.get("/v1/ratings", params={"since": after}, headers=auth(hall))).json()
    assert [r["shipment_id"] for r in kept["data"]] == [shipment["id"]] and gone["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "2026-12-04T10:00:00"},  # no zone: which day would that be?
        {"since": "0001-01-01T00:00:00+14:00"},
        {"since": "9999-12-31T23:59:59-14:00"},
        {"since": "2026-12-04T10:00:00+08:00" * 3},
        {"since": "\x00"},
        {"cursor": "bm90IGEgY3Vyc29y"},
        {"cursor": "%%%"},
        {"limit": "0"},
    ],
)
async def test_a_hostile_since_or_cursor_is_a_problem_never_a_500(api: TestClient, hall: Any, query: Any) -> None:
    resp = await api.get("/v1/ratings", params=query, headers=auth(hall))
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    field = next(iter(query))
    assert [e["field"] for e in (await resp.json())["errors"]] == [field]


async def test_another_client_sees_none_of_the_ratings(
    api: TestClient, db: Database, hall: Any, other_hall: clients.Credentials
) -> None:
    shipment = await delivered(api, db, hall)
    await rate(api, shipment["tracking_code"], 1, "很差")
    assert (await (await api.get("/v1/ratings", headers=auth(other_hall))).json())["data"] == []
    assert (await api.get("/v1/ratings")).status == 401
