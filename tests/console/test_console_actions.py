"""Actions on a shipment from the console: cancel before pickup, re-issue the applicant's link, the hall's
decision on a returned parcel, the answer to a complaint. Each is done with the clerk's staff id on record,
refused in Chinese (409) when it does not apply, refused without its CSRF token, and a 404 on another
department's shipment."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from console_support import MARKET, create, csrf_of, move, sign_in
from returns_support import CORRECTED
from sqlalchemy import select

from logistics.accounts import clients, staff
from logistics.domain.tables import complaints, outbox, shipment_events, shipments, utcnow
from logistics.jobs import purge
from logistics.storage.db import Database

from support import auth

COMPLAINT_TEXT = "快递员电话打不通，我是欧阳娜娜，手机13803712345，三天了还没送到"
ANSWER = "已联系EMS上街区揽投部，明天上午送达；如有疑问请拨打0371-68123456或联系欧阳娜娜本人13803712345。"


async def shipment_row(db: Database, shipment_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        found = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
    assert found is not None
    return dict(found._mapping)


async def console_events(db: Database, shipment_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(shipment_events)
            .where(shipment_events.c.shipment_id == shipment_id, shipment_events.c.source == "console")
            .order_by(shipment_events.c.sequence)
        )
        return [dict(r._mapping) for r in rows]


async def complaint_rows(db: Database, shipment_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(complaints).where(complaints.c.shipment_id == shipment_id))
        return [dict(r._mapping) for r in rows]


async def complain(api: TestClient, tracking_code: str) -> str:
    resp = await api.post(f"/t/{tracking_code}/complaints", json={"category": "delay", "text": COMPLAINT_TEXT})
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def returned(api: TestClient, db: Database, hall: clients.Credentials) -> dict[str, Any]:
    made = await create(api, hall)
    await move(db, made["id"], "ordered", "picked_up", "returning", "returned", waybill="1151263812345")
    return made


# Cancel


async def test_a_clerk_cancels_a_shipment_not_yet_picked_up_and_its_carrier_order(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    await move(db, made["id"], "ordered", waybill="1151263812345")
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        f"/console/shipments/{made['id']}/cancel", data={"csrf": csrf, "reason": "申请人改为到窗口领取"}
    )
    assert resp.status == 200
    page = await resp.text()
    assert "已取消寄递" in page and "办件窗口（李秀英）" in page  # the history names the clerk
    assert (await shipment_row(db, made["id"]))["status"] == "cancelled"
    [event] = await console_events(db, made["id"])
    assert (event["status"], event["carrier_text"], event["staff_id"]) == (
        "cancelled",
        "申请人改为到窗口领取",
        clerk.member.id,
    )
    async with db.read() as conn:
        tasks = [r.kind for r in await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == made["id"]))]
    assert "cancel" in tasks
    api_view = await (await api.get(f"/v1/shipments/{made['id']}", headers=auth(hall))).json()
    assert api_view["status"] == "cancelled" and api_view["events"][-1]["source"] == "console"
    tracking = await (await api.get(f"/t/{made['tracking_code']}")).text()
    assert "已取消" in tracking and "申请人改为到窗口领取" not in tracking  # the typed reason stays private


async def test_a_parcel_already_picked_up_cannot_be_cancelled(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    await move(db, made["id"], "ordered", "picked_up", waybill="1151263812345")
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(f"/console/shipments/{made['id']}/cancel", data={"csrf": csrf})
    assert resp.status == 409
    assert "这件邮件已揽收或已结束（当前：邮政已揽收），不能取消。" in await resp.text()
    assert (await shipment_row(db, made["id"]))["status"] == "picked_up"
    assert await console_events(db, made["id"]) == []


async def test_a_second_cancel_says_it_is_cancelled_already(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    csrf = await sign_in(api, clerk.token)
    assert (await api.post(f"/console/shipments/{made['id']}/cancel", data={"csrf": csrf})).status == 200
    again = await api.post(f"/console/shipments/{made['id']}/cancel", data={"csrf": csrf})
    assert again.status == 409
    assert "这件邮件已经取消。" in await again.text()
    [event] = await console_events(db, made["id"])
    assert event["carrier_text"] == "窗口取消"  # the default reason when the clerk gives none


# The applicant's link


async def test_a_clerk_reissues_the_applicant_link_which_is_shown_once_and_works(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall, recipient=None, applicant_choice=True)
    first = made["applicant_url"].removeprefix("http://127.0.0.1:8080")
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(f"/console/shipments/{made['id']}/applicant-link", data={"csrf": csrf})
    assert resp.status == 200
    page = await resp.text()
    assert "no-store" in resp.headers["Cache-Control"]
    found = re.search(r'id="applicant-link" value="http://127\.0\.0\.1:8080(/a/[A-Za-z0-9_-]{43})"', page)
    assert found is not None, page
    assert (await api.get(found.group(1))).status == 200
    assert (await api.get(first)).status != 200  # the link handed out before stops working
    [event] = await console_events(db, made["id"])
    assert (event["status"], event["staff_id"]) == ("awaiting_applicant", clerk.member.id)
    assert (await shipment_row(db, made["id"]))["status"] == "awaiting_applicant"
    again = await api.get(f"/console/shipments/{made['id']}")
    assert found.group(1) not in await again.text()  # shown once: only its hash is kept


async def test_no_link_is_reissued_once_the_applicant_has_chosen(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)  # the hall gave the address itself: nothing to choose
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(f"/console/shipments/{made['id']}/applicant-link", data={"csrf": csrf})
    assert resp.status == 409
    assert "无需重新发放链接" in await resp.text()
    assert await console_events(db, made["id"]) == []


# The hall's decision on a returned parcel


async def test_a_clerk_records_window_pickup_for_a_returned_parcel(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await returned(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        f"/console/shipments/{made['id']}/resolve",
        data={"csrf": csrf, "action": "window_pickup", "note": "已电话通知申请人到3号窗口领取"},
    )
    assert resp.status == 200
    assert "已登记处理：申请人到窗口领取。" in await resp.text()
    row = await shipment_row(db, made["id"])
    assert row["resolution"]["action"] == "window_pickup"
    assert row["resolution"]["note"] == "已电话通知申请人到3号窗口领取"
    [event] = await console_events(db, made["id"])
    assert (event["status"], event["carrier_text"], event["staff_id"]) == (
        "returned",
        "办件窗口已登记：请申请人到窗口领取",  # fixed wording: the typed note stays out of the history
        clerk.member.id,
    )
    exceptions = await (await api.get("/console/exceptions")).text()
    assert made["id"] not in exceptions  # decided: no longer to chase
    public = await (await api.get(f"/t/{made['tracking_code']}", headers={"Accept": "application/json"})).json()
    assert public["events"][0]["detail"] == "办件窗口已登记：请申请人到窗口领取"  # our wording: public
    assert "已电话通知申请人" not in str(public)  # the clerk's note: never


async def test_a_parcel_still_on_its_way_cannot_be_resolved_and_a_resolved_one_not_twice(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    moving = await create(api, hall)
    await move(db, moving["id"], "ordered", "picked_up", "in_transit", waybill="1151263812345")
    done = await returned(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(f"/console/shipments/{moving['id']}/resolve", data={"csrf": csrf, "action": "closed"})
    assert resp.status == 409
    assert "只有正在退回、已退回，或上门取件失败的邮件才能登记处理（当前：运输中）。" in await resp.text()
    first = await api.post(f"/console/shipments/{done['id']}/resolve", data={"csrf": csrf, "action": "closed"})
    assert first.status == 200
    second = await api.post(f"/console/shipments/{done['id']}/resolve", data={"csrf": csrf, "action": "window_pickup"})
    assert second.status == 409
    assert "这件邮件已经登记过处理结果。" in await second.text()
    assert (await shipment_row(db, done["id"]))["resolution"]["action"] == "closed"
    assert (await shipment_row(db, moving["id"]))["resolution"] is None




async def test_a_clerk_resends_a_returned_parcel_to_the_corrected_address(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await returned(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    form_page = await (await api.get(f"/console/shipments/{made['id']}")).text()
    assert (
        'id="resend-address" name="address" maxlength="200" value="新安路街道济源路8号院3号楼2单元501室"' in form_page
    )
    resp = await api.post(f"/console/shipments/{made['id']}/resend", data={"csrf": csrf, **CORRECTED})
    assert resp.status == 200
    page = await resp.text()
    assert "已按更正后的收件信息重新寄递" in page
    old = await shipment_row(db, made["id"])
    new = await shipment_row(db, old["resent_as"])
    assert f'href="/console/shipments/{new["id"]}" id="resent-as"' in page
    assert (new["resend_of"], new["status"], new["department"]) == (made["id"], "pending", MARKET)
    assert new["recipient"]["district"] == "中原区" and new["recipient"]["address"] == CORRECTED["address"]
    [event] = await console_events(db, made["id"])
    assert (event["status"], event["carrier_text"], event["staff_id"]) == (
        "returned",
        "办件窗口已更正收件信息，重新寄递",
        clerk.member.id,
    )
    async with db.read() as conn:
        tasks = [r.kind for r in await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == new["id"]))]
    assert "order" in tasks
    again = await api.post(f"/console/shipments/{made['id']}/resend", data={"csrf": csrf, **CORRECTED})
    assert again.status == 409
    assert "这件邮件已经重新寄递，不能再登记处理。" in await again.text()


async def test_a_resend_with_a_wrong_phone_is_refused_in_chinese(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await returned(api, db, hall)
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        f"/console/shipments/{made['id']}/resend", data={"csrf": csrf, **CORRECTED, "phone": "1380371"}
    )
    assert resp.status == 422
    assert "请检查收件人的电话。" in await resp.text()
    assert (await shipment_row(db, made["id"]))["resent_as"] is None
    assert await console_events(db, made["id"]) == []


# The answer to a complaint


async def test_a_clerk_answers_a_complaint_and_the_client_and_the_tracking_page_see_it(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    complaint_id = await complain(api, made["tracking_code"])
    csrf = await sign_in(api, clerk.token)
    assert made["id"] in await (await api.get("/console/exceptions")).text()
    resp = await api.post(
        f"/console/shipments/{made['id']}/complaints/{complaint_id}/answer", data={"csrf": csrf, "answer": ANSWER}
    )
    assert resp.status == 200
    page = await resp.text()
    assert "答复已发送" in page and f'id="answer-{complaint_id}"' in page and "李秀英 答复于" in page

    [stored] = await complaint_rows(db, made["id"])
    assert (stored["answer"], stored["answered_by"]) == (ANSWER, clerk.member.id)
    assert stored["answered_at"] is not None

    listed = await (await api.get("/v1/complaints", headers=auth(hall))).json()
    [item] = listed["data"]
    assert item["answer"]["text"] == ANSWER
    assert item["answer"]["answered_at"].endswith("Z")

    tracking = await (await api.get(f"/t/{made['tracking_code']}")).text()
    assert "办件部门的答复" in tracking
    assert "已联系EMS上街区揽投部，明天上午送达" in tracking
    assert "13803712345" not in tracking and "欧阳娜娜" not in tracking  # masked, even in the hall's text
    assert "0371-68123456" not in tracking.split('id="answers"')[1]
    assert "快递员电话打不通" not in tracking  # the complaint itself is never public
    as_json = await (await api.get(f"/t/{made['tracking_code']}", headers={"Accept": "application/json"})).json()
    [public] = as_json["answers"]
    assert public["text"].startswith("已联系EMS上街区揽投部，明天上午送达") and "13803712345" not in public["text"]

    assert made["id"] not in await (await api.get("/console/exceptions")).text()  # answered: not to chase


async def test_the_purge_replaces_the_answer_with_the_complaint(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    answered_id = await complain(api, made["tracking_code"])
    unanswered_id = await complain(api, made["tracking_code"])
    csrf = await sign_in(api, clerk.token)
    path = f"/console/shipments/{made['id']}/complaints/{answered_id}/answer"
    assert (await api.post(path, data={"csrf": csrf, "answer": ANSWER})).status == 200
    await move(db, made["id"], "ordered", "picked_up", "delivered", waybill="1151263812345")
    assert await purge.purge_finished(db, after=timedelta(0), now=utcnow() + timedelta(seconds=1)) == 1
    stored = {c["id"]: c for c in await complaint_rows(db, made["id"])}
    assert stored[answered_id]["answer"] == purge.PURGED_TEXT
    assert stored[answered_id]["answered_by"] == clerk.member.id  # who and when stay: they identify no applicant
    assert stored[unanswered_id]["answer"] is None


async def test_a_complaint_takes_one_answer_of_at_least_five_characters(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    complaint_id = await complain(api, made["tracking_code"])
    csrf = await sign_in(api, clerk.token)
    path = f"/console/shipments/{made['id']}/complaints/{complaint_id}/answer"
    short = await api.post(path, data={"csrf": csrf, "answer": "已处理"})
    assert short.status == 422
    assert "请写清楚答复内容（至少5个字）" in await short.text()
    assert (await api.post(path, data={"csrf": csrf, "answer": ANSWER})).status == 200
    again = await api.post(path, data={"csrf": csrf, "answer": "再次答复：明天上午送达。"})
    assert again.status == 409
    assert "这条投诉已经答复过了。" in await again.text()
    [stored] = await complaint_rows(db, made["id"])
    assert stored["answer"] == ANSWER


async def test_a_complaint_of_another_shipment_is_not_found(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    made = await create(api, hall)
    other = await create(api, hall, cases=[{"case_no": "410106-2026-00412", "item_name": "食品经营许可证延续"}])
    complaint_id = await complain(api, other["tracking_code"])
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        f"/console/shipments/{made['id']}/complaints/{complaint_id}/answer", data={"csrf": csrf, "answer": ANSWER}
    )
    assert resp.status == 404
    assert (await complaint_rows(db, other["id"]))[0]["answered_at"] is None


# Refusals common to every action


ACTIONS = ["cancel", "applicant-link", "resolve", "resend", "answer"]


async def target(api: TestClient, db: Database, hall: clients.Credentials, action: str) -> tuple[str, dict[str, str]]:
    """A shipment the action applies to: its path and form fields (without the CSRF token)."""
    if action == "cancel":
        made = await create(api, hall)
        return f"/console/shipments/{made['id']}/cancel", {"reason": "申请人撤回申请"}
    if action == "applicant-link":
        made = await create(api, hall, recipient=None, applicant_choice=True)
        return f"/console/shipments/{made['id']}/applicant-link", {}
    if action == "resolve":
        made = await returned(api, db, hall)
        return f"/console/shipments/{made['id']}/resolve", {"action": "closed", "note": "已公告送达"}
    if action == "resend":
        made = await returned(api, db, hall)
        return f"/console/shipments/{made['id']}/resend", CORRECTED
    made = await create(api, hall)
    complaint_id = await complain(api, made["tracking_code"])
    return f"/console/shipments/{made['id']}/complaints/{complaint_id}/answer", {"answer": ANSWER}


async def untouched(db: Database, path: str) -> bool:
    shipment_id = path.split("/")[3]
    row = await shipment_row(db, shipment_id)
    answered = [c for c in await complaint_rows(db, shipment_id) if c["answered_at"] is not None]
    nothing = row["resolution"] is None and row["resent_as"] is None and not answered
    return nothing and not await console_events(db, shipment_id)


@pytest.mark.parametrize("action", ACTIONS)
async def test_an_action_without_its_csrf_token_is_refused(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, action: str
) -> None:
    path, fields = await target(api, db, hall, action)
    await sign_in(api, clerk.token)
    missing = await api.post(path, data=fields)
    wrong = await api.post(path, data={**fields, "csrf": "x" * 43})
    assert (missing.status, wrong.status) == (403, 403)
    assert await untouched(db, path)


@pytest.mark.parametrize("action", ACTIONS)
async def test_an_action_on_another_departments_shipment_is_not_found(
    api: TestClient, db: Database, hall: clients.Credentials, tax_clerk: staff.NewStaff, action: str
) -> None:
    path, fields = await target(api, db, hall, action)
    csrf = await sign_in(api, tax_clerk.token)
    resp = await api.post(path, data={**fields, "csrf": csrf})
    assert resp.status == 404
    assert "没有找到这件邮件" in await resp.text()
    assert await untouched(db, path)


async def test_the_shipment_page_offers_only_the_actions_that_apply(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    fresh = await create(api, hall)
    back = await returned(api, db, hall)
    await sign_in(api, clerk.token)
    fresh_page = await (await api.get(f"/console/shipments/{fresh['id']}")).text()
    back_page = await (await api.get(f"/console/shipments/{back['id']}")).text()
    assert 'id="cancel-form"' in fresh_page and 'id="resolve-form"' not in fresh_page
    assert 'id="resolve-form"' in back_page and 'id="cancel-form"' not in back_page
    assert 'id="link-form"' not in fresh_page + back_page
    assert csrf_of(fresh_page) == csrf_of(back_page)  # one token per session
    assert MARKET in fresh_page


async def test_actions_log_who_and_what_but_no_personal_data_or_typed_text(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = await create(api, hall)
    back = await returned(api, db, hall)
    complaint_id = await complain(api, fresh["tracking_code"])
    csrf = await sign_in(api, clerk.token)
    with caplog.at_level(logging.DEBUG):
        answered = await api.post(
            f"/console/shipments/{fresh['id']}/complaints/{complaint_id}/answer", data={"csrf": csrf, "answer": ANSWER}
        )
        cancelled = await api.post(
            f"/console/shipments/{fresh['id']}/cancel", data={"csrf": csrf, "reason": "申请人改为窗口领取"}
        )
        resent = await api.post(f"/console/shipments/{back['id']}/resend", data={"csrf": csrf, **CORRECTED})
    assert (answered.status, cancelled.status, resent.status) == (200, 200, 200)
    actions = [r.__dict__.get("action") for r in caplog.records if r.getMessage() == "console_action"]
    assert actions == ["answer_complaint", "cancel", "resend"]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (
        CORRECTED["phone"],
        CORRECTED["name"],
        CORRECTED["address"],
        ANSWER,
        "申请人改为窗口领取",
        clerk.token,
    ):
        assert secret not in logged
