"""Create by hand on the console (/console/new): the API's validation and create path, Chinese errors beside
their fields with the typed input kept, the hall filled in from the halls file, one shipment per form however
often it is posted, the 取件验证码 shown once, and the label printed for the clerk's own departments only."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_support import CIVIL, MARKET, TAX, csrf_of, move, sign_in
from returns_support import ems_item, new_shipment, push
from sqlalchemy import func, select

from logistics.accounts import clients, staff
from logistics.api.schemas import BEIJING
from logistics.config import Settings
from logistics.console.create import CONSOLE_CLIENT_ID, chinese
from logistics.domain.tables import clients as client_rows
from logistics.domain.tables import (
    outbox,
    personal_data_access,
    shipment_cases,
    shipment_events,
    shipments,
    webhook_deliveries,
)
from logistics.storage.db import Database

from support import HALL

NONCE = re.compile(r'name="nonce" value="([^"]+)"')
# The market bureau's hall, as the halls file gives it: not what a clerk types.
MARKET_HALL = {**HALL, "name": "上街区市场监督管理局登记窗口", "address": "中心路132号二楼"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The halls file names the market bureau only: the civil affairs bureau has no hall address."""
    path = tmp_path / "halls.json"
    path.write_text(json.dumps({MARKET: MARKET_HALL, TAX: HALL}, ensure_ascii=False), encoding="utf-8")
    settings.halls_file = path
    return settings


async def open_form(api: TestClient, token: str) -> tuple[str, str, str]:
    """Sign in and open the form: its CSRF token, its nonce, and the page."""
    await sign_in(api, token)
    page = await (await api.get("/console/new")).text()
    found = NONCE.search(page)
    assert found is not None
    return csrf_of(page), found.group(1), page


def beijing_local(moment: datetime) -> str:
    """What a datetime-local field posts: Beijing wall time, to the minute."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M")


def delivery_form(csrf: str, nonce: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "nonce": nonce,
        "rows": "3",
        "kind": "delivery",
        "department": MARKET,
        "window": "综合受理3号窗口",
        "case_no_0": "410106-2026-00388",
        "item_name_0": "食品经营许可证核发",
        "case_no_1": "410106-2026-00389",
        "item_name_1": "食品经营许可证（副本）",
        "case_no_2": "",
        "item_name_2": "",
        "name": "张晓明",
        "phone": "13812345678",
        "province": "河南省",
        "city": "郑州市",
        "district": "上街区",
        "address": "济源路12号",
        "postcode": "450041",
        "verification_code": "on",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def intake_form(csrf: str, nonce: str, **changes: str) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(days=1)
    form = delivery_form(
        csrf,
        nonce,
        kind="intake",
        window="综合受理5号窗口",
        case_no_0="410106-2026-00107",
        item_name_0="个体工商户设立登记",
        case_no_1="",
        item_name_1="",
        name="张伟",
        phone="13937112345",
        address="峡窝镇马固村3组17号",
        pickup_start=beijing_local(start),
        pickup_end=beijing_local(start + timedelta(hours=2)),
    )
    del form["verification_code"]
    form.update(changes)
    return form


async def hand_made(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(shipments).where(shipments.c.client_id == CONSOLE_CLIENT_ID))
        return [dict(r._mapping) for r in rows]


async def created_id(resp: Any) -> str:
    found = re.search(r'href="/console/shipments/(shp_[^"/]+)" id="shipment-link"', await resp.text())
    assert found is not None, await resp.text()
    return found.group(1)


# Creating


async def test_a_clerk_creates_a_delivery_by_hand_from_the_departments_hall(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, page = await open_form(api, clerk.token)
    assert f'<option value="{MARKET}"' in page and f'<option value="{CIVIL}"' in page
    assert TAX not in page  # only the clerk's own departments
    assert MARKET_HALL["address"] in page  # the hall's side, shown as it will be filled in

    resp = await api.post("/console/new", data=delivery_form(csrf, nonce))
    assert resp.status == 201, await resp.text()
    [made] = await hand_made(db)
    assert made["id"] == await created_id(resp)
    assert (made["kind"], made["status"], made["department"], made["window"]) == (
        "delivery",
        "pending",
        MARKET,
        "综合受理3号窗口",
    )
    assert made["sender"]["name"] == MARKET_HALL["name"] and made["sender"]["address"] == "中心路132号二楼"
    assert made["recipient"] == {
        "name": "张晓明",
        "phone": "13812345678",
        "province": "河南省",
        "city": "郑州市",
        "district": "上街区",
        "address": "济源路12号",
        "postcode": "450041",
    }
    async with db.read() as conn:
        [event] = (await conn.execute(select(shipment_events).where(shipment_events.c.shipment_id == made["id"]))).all()
        orders = (await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == made["id"]))).scalars().all()
        webhooks = (await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one()
    assert (event.source, event.staff_id) == ("console", clerk.member.id)  # the history names the clerk
    assert list(orders) == ["order"]  # ordered at EMS like any create
    assert webhooks == 0  # the built-in client has no webhook URL
    page = await (await api.get(f"/console/shipments/{made['id']}")).text()
    assert "410106-2026-00389" in page and "办件窗口（李秀英）" in page


async def test_an_intake_by_hand_has_its_pickup_window_in_beijing_time(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = intake_form(csrf, nonce)
    resp = await api.post("/console/new", data=form)
    assert resp.status == 201, await resp.text()
    [made] = await hand_made(db)
    assert made["kind"] == "intake" and made["recipient"]["name"] == MARKET_HALL["name"]
    assert made["sender"]["address"] == "峡窝镇马固村3组17号"
    assert beijing_local(made["pickup_start"]) == form["pickup_start"]
    assert made["verification_code"] is None


async def test_two_first_creates_at_once_share_the_one_built_in_client(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    other = (await (await api.get("/console/new")).text()).split('name="nonce" value="')[1].split('"')[0]
    answers = await asyncio.gather(
        api.post("/console/new", data=delivery_form(csrf, nonce)),
        api.post("/console/new", data=delivery_form(csrf, other)),
    )
    assert sorted(r.status for r in answers) == [201, 201]
    assert len(await hand_made(db)) == 2
    async with db.read() as conn:
        names = (await conn.execute(select(client_rows.c.name))).scalars().all()
    assert list(names) == ["窗口手工录入"]


# Mistakes: a Chinese error beside the field, and the input kept

MISTAKES = [
    ({"phone": "1381234567"}, "phone", "请填写 11 位手机号码"),
    ({"phone": "12345678901"}, "phone", "请填写 11 位手机号码"),
    ({"name": ""}, "name", "必填"),
    ({"address": ""}, "address", "必填"),
    ({"address": "济" * 201}, "address", "太长：最多 200 个字"),
    ({"postcode": "45004"}, "postcode", "邮编是 6 位数字"),
    ({"window": ""}, "window", "必填"),
    ({"item_name_1": ""}, "item_name_1", "必填"),
    ({"case_no_0": "", "item_name_0": "", "case_no_1": "", "item_name_1": ""}, "case_no_0", "至少填写一件办件"),
    ({"decision_date": "2099-01-05"}, "decision_date", "决定日期不能晚于今天"),
    ({"due_by": "2020-01-05"}, "due_by", "送达期限不能早于今天"),
    ({"due_by": "2026-13-05"}, "due_by", "请按“年-月-日”填写日期"),
    ({"department": CIVIL}, "department", "该部门没有配置大厅地址"),
    ({"department": TAX}, "department", "只能为本人所属的部门录入"),
    ({"kind": "parcel"}, "kind", "请选择寄递类型"),
]


@pytest.mark.parametrize(("changes", "field", "words"), MISTAKES, ids=[m[1] + ":" + m[2][:6] for m in MISTAKES])
async def test_a_mistake_is_shown_beside_its_field_and_nothing_typed_is_lost(
    api: TestClient, db: Database, clerk: staff.NewStaff, changes: dict[str, str], field: str, words: str
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = delivery_form(csrf, nonce, **changes)
    resp = await api.post("/console/new", data=form)
    assert resp.status == 422
    page = await resp.text()
    found = re.search(f'id="error-{field}">([^<]+)<', page)
    assert found is not None and words in found.group(1), page
    assert 'id="form-errors"' in page
    for name in ("name", "phone", "address", "case_no_0", "item_name_1", "window", "postcode", "due_by"):
        if form.get(name):
            assert f'value="{form[name]}"' in page, name  # what the clerk typed is there to correct
    assert f'name="nonce" value="{nonce}"' in page  # nothing was created: the same form goes on
    assert await hand_made(db) == []


INTAKE_MISTAKES = [
    ({"pickup_start": "", "pickup_end": ""}, "pickup_start", "上门取件须填写取件时间"),
    ({"pickup_end": ""}, "pickup_end", "必填"),
    ({"pickup_start": "2020-12-01T09:00", "pickup_end": "2020-12-01T11:00"}, "pickup_start", "取件时间必须晚于现在"),
    ({"pickup_end": "2020-12-01T11:00"}, "pickup_start", "结束时间必须晚于开始时间"),
    ({"pickup_start": "下午三点"}, "pickup_start", "请填写日期和时间"),
]


@pytest.mark.parametrize(("changes", "field", "words"), INTAKE_MISTAKES, ids=[m[2][:8] for m in INTAKE_MISTAKES])
async def test_an_intakes_pickup_window_mistake_is_shown_beside_it(
    api: TestClient, db: Database, clerk: staff.NewStaff, changes: dict[str, str], field: str, words: str
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = intake_form(csrf, nonce, **changes)
    resp = await api.post("/console/new", data=form)
    assert resp.status == 422
    page = await resp.text()
    found = re.search(f'id="error-{field}">([^<]+)<', page)
    assert found is not None and words in found.group(1), page
    assert 'id="kind-intake" value="intake" checked' in page and 'value="峡窝镇马固村3组17号"' in page
    assert await hand_made(db) == []


def test_every_message_of_the_api_the_form_can_meet_has_chinese_words() -> None:
    assert chinese("String should have at most 50 characters") == "太长：最多 50 个字"
    assert chinese("give decision_date or due_by, not both") == "审批决定日期与送达期限只填一项"
    assert chinese("something the API has never said") == "填写有误，请核对"


async def test_one_more_case_row_keeps_everything_typed(api: TestClient, db: Database, clerk: staff.NewStaff) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    resp = await api.post("/console/new", data={**delivery_form(csrf, nonce), "more": "1"})
    assert resp.status == 200
    page = await resp.text()
    assert 'name="case_no_3"' in page and 'value="410106-2026-00389"' in page and 'value="张晓明"' in page
    assert 'id="form-errors"' not in page
    assert await hand_made(db) == []
    four = {**delivery_form(csrf, nonce), "rows": "4", "case_no_3": "410106-2026-00390", "item_name_3": "小餐饮登记"}
    assert (await api.post("/console/new", data=four)).status == 201
    async with db.read() as conn:
        cases = (await conn.execute(select(func.count()).select_from(shipment_cases))).scalar_one()
    assert cases == 3


# Refused


async def test_a_form_without_its_csrf_token_creates_nothing(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = delivery_form(csrf, nonce)
    del form["csrf"]
    resp = await api.post("/console/new", data=form)
    assert resp.status == 403
    wrong = await api.post("/console/new", data={**form, "csrf": "x" * 43})
    assert wrong.status == 403
    assert await hand_made(db) == []


async def test_signed_out_the_form_sends_to_sign_in(api: TestClient, db: Database) -> None:
    resp = await api.get("/console/new", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/sign-in"
    posted = await api.post("/console/new", data={"kind": "delivery"}, allow_redirects=False)
    assert posted.status == 303
    assert await hand_made(db) == []


# Posted twice


async def test_a_double_submitted_form_creates_one_shipment(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = delivery_form(csrf, nonce)
    first, second = await asyncio.gather(api.post("/console/new", data=form), api.post("/console/new", data=form))
    assert sorted([first.status, second.status]) == [200, 201]
    [made] = await hand_made(db)
    assert await created_id(first) == await created_id(second) == made["id"]
    again = await api.post("/console/new", data=form)  # a reload of the answer
    assert again.status == 200 and await created_id(again) == made["id"]
    assert len(await hand_made(db)) == 1


async def test_the_same_form_changed_and_posted_again_points_to_what_it_made(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    assert (await api.post("/console/new", data=delivery_form(csrf, nonce))).status == 201
    [made] = await hand_made(db)
    changed = await api.post("/console/new", data=delivery_form(csrf, nonce, name="张晓明", address="济源路14号"))
    assert changed.status == 409
    page = await changed.text()
    assert f'href="/console/shipments/{made["id"]}" id="made-before"' in page
    assert 'value="济源路14号"' in page and f'name="nonce" value="{nonce}"' not in page  # a fresh form
    assert len(await hand_made(db)) == 1


# The 取件验证码


async def test_the_verification_code_is_shown_once(api: TestClient, db: Database, clerk: staff.NewStaff) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    resp = await api.post("/console/new", data=delivery_form(csrf, nonce))
    [made] = await hand_made(db)
    code = made["verification_code"]
    assert re.fullmatch(r"[0-9]{6}", code)
    assert f'<p class="big" id="verification-code">{code}</p>' in await resp.text()
    later = await (await api.get(f"/console/shipments/{made['id']}")).text()
    assert 'id="verification-code"' not in later and f">{code}<" not in later
    found = await (await api.get(f"/console/find?q={made['tracking_code']}")).text()
    assert 'id="verification-code"' not in found and f">{code}<" not in found


async def test_without_the_checkbox_there_is_no_code(api: TestClient, db: Database, clerk: staff.NewStaff) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = delivery_form(csrf, nonce)
    del form["verification_code"]
    resp = await api.post("/console/new", data=form)
    assert resp.status == 201 and 'id="verification-code"' not in await resp.text()
    [made] = await hand_made(db)
    assert made["verification_code"] is None


# The label


async def test_the_label_prints_once_ordered_and_only_for_the_clerks_departments(
    api: TestClient, db: Database, clerk: staff.NewStaff, tax_clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    resp = await api.post("/console/new", data=delivery_form(csrf, nonce))
    sid = await created_id(resp)
    assert f'data-status="/console/shipments/{sid}/label-status"' in await resp.text()
    waiting = await (await api.get(f"/console/shipments/{sid}/label-status")).json()
    assert (waiting["ready"], waiting["failed"], waiting["waybill_no"]) == (False, False, None)
    assert (await api.get(f"/console/shipments/{sid}/label")).status == 409

    await move(db, sid, "ordered", waybill="1295780512499")
    ready = await (await api.get(f"/console/shipments/{sid}/label-status")).json()
    assert ready["ready"] is True and ready["waybill_no"] == "1295780512499"
    label = await api.get(f"/console/shipments/{sid}/label")
    assert label.status == 200 and label.content_type == "application/pdf"
    assert (await label.read()).startswith(b"%PDF")
    assert label.headers["Cache-Control"] == "private, no-store"
    async with db.read() as conn:
        printed = (await conn.execute(select(shipments.c.label_printed_at).where(shipments.c.id == sid))).scalar_one()
        views = (
            await conn.execute(select(personal_data_access.c.view).where(personal_data_access.c.shipment_id == sid))
        ).scalars()
        assert set(views) == {"create", "label"}
    assert printed is not None
    page = await (await api.get(f"/console/shipments/{sid}")).text()
    assert f'href="/console/shipments/{sid}/label"' in page

    api.session.cookie_jar.clear()
    await sign_in(api, tax_clerk.token)  # another department's clerk
    assert (await api.get(f"/console/shipments/{sid}/label")).status == 404
    assert (await api.get(f"/console/shipments/{sid}/label-status")).status == 404


# Resending an intake whose door pickup failed


async def failed_pickup(db: Database, client_id: str) -> dict[str, str]:
    made = await new_shipment(db, client_id, kind="intake")
    w = made["waybill"]
    await push(
        db,
        ems_item(w, "206", "揽收失败", "揽收失败,原因:寄件人电话关机,无法联系", 60, reasonCode="113"),
        ems_item(w, "207", "作废", "揽收未成功,订单已作废,原因:联系不上寄件人", 70),
    )
    return made


async def test_a_failed_intake_pickup_is_booked_again_from_the_console(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await failed_pickup(db, hall.id)
    csrf = await sign_in(api, clerk.token)
    page = await (await api.get(f"/console/shipments/{made['id']}")).text()
    assert 'id="resend-pickup_start"' in page and 'value="新安路街道济源路8号院3号楼2单元501室"' in page

    base = {
        "csrf": csrf,
        "name": "欧阳娜娜",
        "phone": "13803712345",
        "province": "河南省",
        "city": "郑州市",
        "district": "上街区",
        "address": "新安路街道济源路8号院3号楼2单元501室",
    }
    missing = await api.post(f"/console/shipments/{made['id']}/resend", data=base)
    assert missing.status == 422 and "请填写上门取件时间" in await missing.text()

    start = datetime.now(UTC) + timedelta(days=2)
    window = {"pickup_start": beijing_local(start), "pickup_end": beijing_local(start + timedelta(hours=3))}
    resp = await api.post(f"/console/shipments/{made['id']}/resend", data={**base, **window})
    assert resp.status == 200, await resp.text()
    assert "已按新的取件时间重新预约上门取件" in await resp.text()
    async with db.read() as conn:
        old = (await conn.execute(select(shipments).where(shipments.c.id == made["id"]))).one()
        new = (await conn.execute(select(shipments).where(shipments.c.id == old.resent_as))).one()
    assert new.kind == "intake" and new.resend_of == made["id"] and new.client_id == hall.id
    assert beijing_local(new.pickup_start) == window["pickup_start"]


async def test_the_create_pages_send_the_strict_policy_and_only_our_own_script(
    api: TestClient, clerk: staff.NewStaff
) -> None:
    csrf, nonce, _ = await open_form(api, clerk.token)
    form = await api.get("/console/new")
    assert "unsafe-inline" not in form.headers["Content-Security-Policy"] and "<script" not in await form.text()
    done = await api.post("/console/new", data=delivery_form(csrf, nonce))
    assert done.headers["Cache-Control"] == "no-store"  # the 取件验证码 is on it
    assert "script-src 'self'" in done.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script[^>]*>", await done.text())
    assert scripts == ['<script src="/static/console-create.js" defer>']
    assert (await api.get("/static/console-create.js")).status == 200
