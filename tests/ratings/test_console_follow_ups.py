"""The console and 好差评: an open follow-up is a row of the exception queue (past due before the rest), the
shipment page shows the rating and its comment, and a clerk of the department closes the follow-up with the
action taken (CSRF, the clerk's departments only, once; closed_by is the clerk's staff id)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from ratings_support import delivered, rate, stored_follow_ups
from sqlalchemy import update

from logistics.accounts import clients, staff
from logistics.domain.deadlines import beijing_today
from logistics.domain.tables import follow_ups, utcnow
from logistics.storage.db import Database

from support import csrf_of, sign_in

ACTION = "已电话回访申请人，说明投递延误原因并致歉，已督促揽投部改进。"


async def bad(api: TestClient, db: Database, hall: clients.Credentials, comment: str = "") -> dict[str, Any]:
    shipment = await delivered(api, db, hall)
    assert (await rate(api, shipment["tracking_code"], 1, comment)).status == 303
    return shipment


async def set_due(db: Database, shipment_id: str, due: date) -> None:
    async with db.write() as conn:
        await conn.execute(update(follow_ups).where(follow_ups.c.shipment_id == shipment_id).values(due_by=due))


async def test_an_open_follow_up_is_a_row_of_the_queue_and_past_due_comes_first(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    waiting = await bad(api, db, hall)
    late = await bad(api, db, hall)
    yesterday = beijing_today(utcnow()) - timedelta(days=1)
    await set_due(db, late["id"], yesterday)
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/exceptions")).text()
    assert page.index(f"/console/shipments/{late['id']}") < page.index(f"/console/shipments/{waiting['id']}")
    assert f"差评回访已超期（应于{yesterday.isoformat()}前完成）" in page
    [open_due] = [f["due_by"] for f in await stored_follow_ups(db) if f["shipment_id"] == waiting["id"]]
    assert f"差评待回访（须在{open_due.isoformat()}前完成）" in page
    assert "电话回访申请人" in page


async def test_a_good_rating_or_a_closed_follow_up_is_not_in_the_queue(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    good = await delivered(api, db, hall)
    await rate(api, good["tracking_code"], 5)
    closed = await bad(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    await api.post(f"/console/shipments/{closed['id']}/follow-up/close", data={"csrf": csrf, "action": ACTION})
    page = await (await api.get("/console/exceptions")).text()
    assert good["id"] not in page and closed["id"] not in page


async def test_another_departments_clerk_does_not_see_the_row(
    api: TestClient, db: Database, hall: clients.Credentials, tax_clerk: staff.NewStaff
) -> None:
    shipment = await bad(api, db, hall)
    await sign_in(api, tax_clerk.token)
    assert shipment["id"] not in await (await api.get("/console/exceptions")).text()


async def test_the_shipment_page_shows_the_rating_and_a_clerk_closes_the_follow_up(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await bad(api, db, hall, "等了一个星期，电话13812345678也没人接")
    await sign_in(api, clerk.token)
    page = await (await api.get(f"/console/shipments/{shipment['id']}")).text()
    assert 'id="rating-level">非常不满意' in page and "等了一个星期，电话[号码已隐去]也没人接" in page
    assert 'id="follow-up-form"' in page and "待回访" in page
    resp = await api.post(
        f"/console/shipments/{shipment['id']}/follow-up/close", data={"csrf": csrf_of(page), "action": ACTION}
    )
    assert resp.status == 200
    done = await resp.text()
    assert "回访结果已登记" in done and ACTION in done and "李秀英 登记于" in done
    assert 'id="follow-up-form"' not in done
    [stored] = await stored_follow_ups(db)
    assert (stored["action"], stored["closed_by"]) == (ACTION, clerk.member.id) and stored["closed_at"] is not None


async def test_closing_twice_on_the_console_is_refused_with_the_first_action(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await bad(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    url = f"/console/shipments/{shipment['id']}/follow-up/close"
    await api.post(url, data={"csrf": csrf, "action": ACTION})
    again = await api.post(url, data={"csrf": csrf, "action": "再次登记：已再次回访申请人"})
    assert again.status == 409
    assert f"这条差评已经登记过回访结果：{ACTION}" in await again.text()
    assert [f["action"] for f in await stored_follow_ups(db)] == [ACTION]


async def test_closing_late_on_the_console_is_marked(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await bad(api, db, hall)
    await set_due(db, shipment["id"], beijing_today(utcnow()) - timedelta(days=2))
    csrf = await sign_in(api, clerk.token)
    page = await (await api.get(f"/console/shipments/{shipment['id']}")).text()
    assert "已超期" in page
    done = await api.post(f"/console/shipments/{shipment['id']}/follow-up/close", data={"csrf": csrf, "action": ACTION})
    assert "超期办结" in await done.text()


async def test_closing_needs_the_csrf_token_the_clerks_department_and_an_action(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, tax_clerk: staff.NewStaff
) -> None:
    shipment = await bad(api, db, hall)
    url = f"/console/shipments/{shipment['id']}/follow-up/close"
    csrf = await sign_in(api, clerk.token)
    assert (await api.post(url, data={"csrf": "forged", "action": ACTION})).status == 403
    short = await api.post(url, data={"csrf": csrf, "action": "好"})
    assert short.status == 422 and "请写清楚回访和处理情况" in await short.text()
    api.session.cookie_jar.clear()
    tax_csrf = await sign_in(api, tax_clerk.token)
    assert (await api.post(url, data={"csrf": tax_csrf, "action": ACTION})).status == 404
    assert [f["closed_at"] for f in await stored_follow_ups(db)] == [None]


async def test_a_shipment_without_a_bad_rating_has_nothing_to_close(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await delivered(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    page = await (await api.get(f"/console/shipments/{shipment['id']}")).text()
    assert "申请人尚未评价" in page
    resp = await api.post(f"/console/shipments/{shipment['id']}/follow-up/close", data={"csrf": csrf, "action": ACTION})
    assert resp.status == 404 and "没有待回访的差评" in await resp.text()
