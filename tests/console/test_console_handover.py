"""Printing and the hand-over on the console: the ticked parcels' labels as one PDF or ZPL stream, and the
courier's 交接清单 — stored, printed on A4 with its QR code (the same bytes at every reprint), and taken over in
one scan on /staff: every waiting parcel picked up, idempotent, forward-only, refused to another hall's courier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pypdfium2 as pdfium
import zxingcpp
from aiohttp.test_utils import TestClient
from console_support import CIVIL, MARKET, TAX, create, move, sign_in
from sqlalchemy import select

from logistics.accounts import clients, staff
from logistics.domain.manifests import parse_manifest_code
from logistics.domain.tables import (
    manifest_items,
    manifests,
    personal_data_access,
    shipment_events,
    shipments,
    webhook_deliveries,
)
from logistics.storage.db import Database

from support import APPLICANT

BASE_URL = "http://127.0.0.1:8080"  # the settings fixture's public base URL


def pdf_pages(data: bytes) -> list[str]:
    return [page.get_textpage().get_text_range() for page in pdfium.PdfDocument(data)]


def qr_codes(data: bytes) -> list[str]:
    image = pdfium.PdfDocument(data)[0].render(scale=200 / 72).to_pil().convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format.name == "QRCode"]


async def ordered(api: TestClient, hall: clients.Credentials, db: Database, waybill: str, **overrides: Any) -> str:
    made = await create(api, hall, **overrides)
    await move(db, made["id"], "ordered", waybill=waybill)
    return str(made["id"])


async def row_of(db: Database, shipment_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        found = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
    assert found is not None
    return dict(found._mapping)


async def statuses(db: Database, *ids: str) -> list[str]:
    return [(await row_of(db, sid))["status"] for sid in ids]


def staff_auth(member: staff.NewStaff) -> dict[str, str]:
    return {"Authorization": f"Bearer {member.token}"}


def scan_of(code: str, action: str = "pickup") -> dict[str, Any]:
    return {
        "scan_id": f"dev-{uuid.uuid4().hex}",
        "code": code,
        "action": action,
        "scanned_at": datetime.now(UTC).isoformat(),
        "location": "郑州市上街区揽投部",
    }


# Batch labels of a selection


async def test_the_ticked_parcels_print_as_one_pdf_with_a_page_each_and_their_print_time_recorded(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    first = await ordered(api, hall, db, "1295780512499")
    second = await ordered(api, hall, db, "1295780512506", department=CIVIL)
    csrf = await sign_in(api, clerk.token)
    resp = await api.post("/console/labels", data=[("csrf", csrf), ("format", "pdf"), ("id", first), ("id", second)])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/pdf" and resp.headers["X-Label-Count"] == "2"
    pages = pdf_pages(await resp.read())
    assert len(pages) == 2 and "1295780512499" in pages[0] and "1295780512506" in pages[1]
    for sid in (first, second):
        assert (await row_of(db, sid))["label_printed_at"] is not None
    async with db.read() as conn:
        views = [r.view for r in await conn.execute(select(personal_data_access.c.view))]
    assert views == ["labels", "labels"]  # a label shows the address: a view of personal data


async def test_the_ticked_parcels_print_as_one_zpl_stream(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    ids = [await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506", "1295780512513")]
    csrf = await sign_in(api, clerk.token)
    resp = await api.post("/console/labels", data=[("csrf", csrf), ("format", "zpl")] + [("id", i) for i in ids])
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/zpl"
    assert (await resp.text()).count("^XA") == 3


async def test_a_selection_with_another_departments_shipment_is_refused_and_prints_nothing(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    mine = await ordered(api, hall, db, "1295780512499")
    theirs = await ordered(api, hall, db, "1295780512506", department=TAX)
    csrf = await sign_in(api, clerk.token)
    resp = await api.post("/console/labels", data=[("csrf", csrf), ("format", "pdf"), ("id", mine), ("id", theirs)])
    assert resp.status == 404 and "没有找到这件邮件" in await resp.text()
    assert (await row_of(db, mine))["label_printed_at"] is None


async def test_parcels_without_a_waybill_are_listed_as_not_printable_with_a_button_for_the_rest(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    ready = await ordered(api, hall, db, "1295780512499")
    pending = await create(api, hall, cases=[{"case_no": "410106-2026-00412", "item_name": "小餐饮登记"}])
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        "/console/labels", data=[("csrf", csrf), ("format", "pdf"), ("id", ready), ("id", pending["id"])]
    )
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "1 件邮件还不能打印面单" in page and "410106-2026-00412" in page
    assert f'name="id" value="{ready}"' in page and "打印其余 1 件（PDF）" in page
    assert f'value="{pending["id"]}"' not in page.split('id="print-rest"')[1]
    assert (await row_of(db, ready))["label_printed_at"] is None  # nothing printed yet


async def test_printing_without_the_csrf_token_or_without_a_selection_is_refused(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await ordered(api, hall, db, "1295780512499")
    csrf = await sign_in(api, clerk.token)
    refused = await api.post("/console/labels", data=[("format", "pdf"), ("id", shipment)])
    assert refused.status == 403
    empty = await api.post("/console/labels", data=[("csrf", csrf), ("format", "pdf")])
    assert empty.status == 422 and "请先在列表中勾选" in await empty.text()
    assert (await row_of(db, shipment))["label_printed_at"] is None


async def test_todays_waiting_list_has_a_checkbox_per_printable_parcel(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    ready = await ordered(api, hall, db, "1295780512499")
    pending = await create(api, hall)
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/today", params={"department": MARKET})).text()
    assert 'id="print-form"' in page and "打印所选面单" in page
    assert f'name="id" value="{ready}" form="print-form"' in page
    assert f'value="{pending["id"]}"' not in page and "未出单" in page


# The hand-over manifest


async def make_manifest(api: TestClient, csrf: str, department: str, ids: list[str]) -> tuple[str, str]:
    """Post the handover form; returns the manifest's id and its page."""
    resp = await api.post(
        "/console/manifests", data=[("csrf", csrf), ("department", department)] + [("id", i) for i in ids]
    )
    assert resp.status == 200 and resp.url.path.startswith("/console/manifests/man_"), await resp.text()
    return resp.url.path.rsplit("/", 1)[1], await resp.text()


async def test_the_handover_list_holds_the_departments_deliveries_waiting_for_the_courier(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    waiting = await ordered(api, hall, db, "1295780512499")
    gone = await ordered(api, hall, db, "1295780512506")
    await move(db, gone, "picked_up")
    unordered = await create(api, hall)
    elsewhere = await ordered(api, hall, db, "1295780512513", department=CIVIL)
    await sign_in(api, clerk.token)
    page = await (await api.get("/console/handover", params={"department": MARKET})).text()
    assert f'value="{waiting}" checked' in page
    assert "欧阳**" in page and APPLICANT["name"] not in page and APPLICANT["phone"] not in page
    for absent in (gone, unordered["id"], elsewhere):
        assert absent not in page
    assert (await api.get("/console/handover", params={"department": TAX})).status == 404


async def test_a_manifest_is_stored_in_order_without_the_parcels_left_behind(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    ids = [await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506", "1295780512513")]
    csrf = await sign_in(api, clerk.token)
    manifest_id, page = await make_manifest(api, csrf, MARKET, [ids[2], ids[0]])  # ids[1] stays behind
    assert 'id="manifest-count">2 件' in page and "尚未交接" in page
    async with db.read() as conn:
        stored = (await conn.execute(select(manifests).where(manifests.c.id == manifest_id))).one()
        items = [
            (r.shipment_id, r.position)
            for r in await conn.execute(
                select(manifest_items)
                .where(manifest_items.c.manifest_id == manifest_id)
                .order_by(manifest_items.c.position)
            )
        ]
    assert stored.department == MARKET and stored.created_by == clerk.member.id and stored.taken_over_at is None
    assert len(stored.code) >= 22  # 128 random bits
    assert items == [(ids[2], 1), (ids[0], 2)]
    listed = await (await api.get("/console/handover", params={"department": MARKET})).text()
    assert f"/console/manifests/{manifest_id}/pdf" in listed and "<td class=num>2</td>" in listed and "未交接" in listed


async def test_a_parcel_already_on_a_manifest_not_yet_taken_over_is_listed_unticked_with_that_manifest(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    listed, fresh = await ordered(api, hall, db, "1295780512499"), await ordered(api, hall, db, "1295780512506")
    csrf = await sign_in(api, clerk.token)
    manifest_id, _ = await make_manifest(api, csrf, MARKET, [listed])
    page = await (await api.get("/console/handover", params={"department": MARKET})).text()
    assert f'value="{fresh}" checked' in page
    assert f'value="{listed}" aria-label' in page and f'已在清单 <a href="/console/manifests/{manifest_id}">' in page
    # Still the clerk's choice: a second manifest may list it (the courier's first scan takes it over).
    again, _ = await make_manifest(api, csrf, MARKET, [listed, fresh])
    assert again != manifest_id


async def test_a_manifest_of_another_department_or_of_a_parcel_that_moved_is_refused(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    theirs = await ordered(api, hall, db, "1295780512499", department=TAX)
    mine = await ordered(api, hall, db, "1295780512506")
    csrf = await sign_in(api, clerk.token)
    other = await api.post("/console/manifests", data=[("csrf", csrf), ("department", TAX), ("id", theirs)])
    assert other.status == 404
    mixed = await api.post(
        "/console/manifests", data=[("csrf", csrf), ("department", MARKET), ("id", mine), ("id", theirs)]
    )
    assert mixed.status == 404
    await move(db, mine, "picked_up")
    moved = await api.post("/console/manifests", data=[("csrf", csrf), ("department", MARKET), ("id", mine)])
    assert moved.status == 409 and "已不在等待揽收状态" in await moved.text()
    no_csrf = await api.post("/console/manifests", data=[("department", MARKET), ("id", mine)])
    assert no_csrf.status == 403
    async with db.read() as conn:
        assert (await conn.execute(select(manifests))).first() is None


async def test_the_manifest_pdf_lists_waybills_cases_and_masked_recipients_with_its_qr_and_reprints_the_same(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    first = await ordered(
        api, hall, db, "1295780512499", cases=[{"case_no": "410106-2026-00388", "item_name": "食品经营许可证核发"}]
    )
    second = await ordered(
        api,
        hall,
        db,
        "1295780512506",
        cases=[{"case_no": "410106-2026-00391", "item_name": "药品经营许可证变更"}],
        recipient={**APPLICANT, "name": "张晓明", "phone": "13812345678"},
    )
    csrf = await sign_in(api, clerk.token)
    manifest_id, _ = await make_manifest(api, csrf, MARKET, [first, second])
    resp = await api.get(f"/console/manifests/{manifest_id}/pdf")
    assert resp.status == 200 and resp.content_type == "application/pdf"
    body = await resp.read()
    (text,) = pdf_pages(body)
    for fact in (MARKET, "李秀英", manifest_id, "1295780512499", "410106-2026-00388", "1295780512506"):
        assert fact in text
    assert "410106-2026-00391" in text and "合计：2 件" in text and "件数合计： 2 件" in text
    assert "欧阳**" in text and "张**" in text and "138******78" in text
    for secret in (APPLICANT["name"], APPLICANT["phone"], "张晓明", "13812345678", APPLICANT["address"]):
        assert secret not in text
    (qr,) = qr_codes(body)
    async with db.read() as conn:
        code = (await conn.execute(select(manifests.c.code).where(manifests.c.id == manifest_id))).scalar_one()
    assert qr == f"{BASE_URL}/m/{code}" and parse_manifest_code(qr) == code
    again = await api.get(f"/console/manifests/{manifest_id}/pdf")
    assert await again.read() == body  # reprinted: the same bytes


async def test_another_departments_manifest_is_not_found(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, tax_clerk: staff.NewStaff
) -> None:
    shipment = await ordered(api, hall, db, "1295780512499")
    csrf = await sign_in(api, clerk.token)
    manifest_id, _ = await make_manifest(api, csrf, MARKET, [shipment])
    api.session.cookie_jar.clear()  # another browser
    await sign_in(api, tax_clerk.token)
    assert (await api.get(f"/console/manifests/{manifest_id}")).status == 404
    assert (await api.get(f"/console/manifests/{manifest_id}/pdf")).status == 404


# The courier scans the manifest


async def manifest_with(api: TestClient, clerk: staff.NewStaff, ids: list[str]) -> tuple[str, str]:
    """A manifest of ``ids`` made on the console; its id and the URL its QR code holds."""
    csrf = await sign_in(api, clerk.token)
    manifest_id, _ = await make_manifest(api, csrf, MARKET, ids)
    pdf = await (await api.get(f"/console/manifests/{manifest_id}/pdf")).read()
    (qr,) = qr_codes(pdf)
    return manifest_id, qr


async def test_scanning_the_manifest_picks_up_every_parcel_on_it_in_one_step(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, courier: staff.NewStaff
) -> None:
    await clients.set_webhook(db, hall.id, "https://sj.zhengzhou.gov.cn/hooks/logistics")
    ids = [await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506", "1295780512513")]
    manifest_id, qr = await manifest_with(api, clerk, ids)
    resp = await api.post("/v1/scans", json=scan_of(qr), headers=staff_auth(courier))
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["ok"] and answer["manifest"]["count"] == 3 and answer["manifest"]["picked_up"] == 3
    assert answer["manifest"]["already_moved"] == [] and answer["shipment"] is None
    assert answer["message"].startswith("交接清单共 3 件，王建国 于 ") and "已揽收 3 件" in answer["message"]
    assert await statuses(db, *ids) == ["picked_up"] * 3
    async with db.read() as conn:
        events = (
            await conn.execute(
                select(shipment_events).where(
                    shipment_events.c.shipment_id.in_(ids), shipment_events.c.status == "picked_up"
                )
            )
        ).all()
        stored = (await conn.execute(select(manifests).where(manifests.c.id == manifest_id))).one()
        hooks = [
            r.type
            for r in await conn.execute(
                select(webhook_deliveries.c.type).where(webhook_deliveries.c.shipment_id.in_(ids))
            )
        ]
    assert len(events) == 3
    assert {(e.source, e.staff_id, e.location) for e in events} == {("scan", courier.member.id, "郑州市上街区揽投部")}
    assert stored.taken_over_by == courier.member.id and stored.taken_over_at is not None
    assert hooks.count("shipment.picked_up") == 3  # as for a scan of each label


async def test_a_second_scan_of_the_manifest_changes_nothing_and_answers_the_same(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, courier: staff.NewStaff
) -> None:
    ids = [await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506")]
    manifest_id, qr = await manifest_with(api, clerk, ids)
    first = await (await api.post("/v1/scans", json=scan_of(qr), headers=staff_auth(courier))).json()
    async with db.read() as conn:
        before = (await conn.execute(select(shipment_events))).all()
    again = await api.post("/v1/scans", json=scan_of(qr), headers=staff_auth(courier))
    assert again.status == 200
    second = await again.json()
    assert {k: v for k, v in second.items() if k != "scan_id"} == {k: v for k, v in first.items() if k != "scan_id"}
    async with db.read() as conn:
        assert len((await conn.execute(select(shipment_events))).all()) == len(before)
    page = await (await api.get(f"/console/manifests/{manifest_id}")).text()
    assert "王建国 于" in page and page.count("扫码揽收") == 2
    listed = await (await api.get("/console/handover", params={"department": MARKET})).text()
    assert "王建国 · " in listed and "未交接" not in listed


async def test_a_parcel_that_moved_on_before_the_scan_is_listed_not_refused(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, courier: staff.NewStaff
) -> None:
    waiting, picked, cancelled = [
        await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506", "1295780512513")
    ]
    _, qr = await manifest_with(api, clerk, [waiting, picked, cancelled])
    await move(db, picked, "picked_up", "in_transit")
    await move(db, cancelled, "cancelled")
    answer = await (await api.post("/v1/scans", json=scan_of(qr), headers=staff_auth(courier))).json()
    assert answer["ok"] and answer["manifest"]["picked_up"] == 1
    moved = {m["waybill_no"]: m["status_text"] for m in answer["manifest"]["already_moved"]}
    assert moved == {"1295780512506": "运输中", "1295780512513": "已取消"}
    assert "2 件此前已揽收或已不在待揽收状态" in answer["message"]
    assert await statuses(db, waiting, picked, cancelled) == ["picked_up", "in_transit", "cancelled"]


async def test_a_courier_of_another_hall_is_refused_the_manifest(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await ordered(api, hall, db, "1295780512499")
    manifest_id, qr = await manifest_with(api, clerk, [shipment])
    stranger = await staff.create(db, "陈志强", "courier", [TAX])
    resp = await api.post("/v1/scans", json=scan_of(qr), headers=staff_auth(stranger))
    assert resp.status == 403
    problem = await resp.json()
    assert problem["error"]["code"] == "not-your-hall" and f"这份交接清单属于“{MARKET}”" in problem["message"]
    assert await statuses(db, shipment) == ["ordered"]
    async with db.read() as conn:
        stored = (await conn.execute(select(manifests).where(manifests.c.id == manifest_id))).one()
    assert stored.taken_over_at is None


async def test_a_manifest_code_is_only_for_pickup_and_an_unknown_one_is_not_found(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, courier: staff.NewStaff
) -> None:
    shipment = await ordered(api, hall, db, "1295780512499")
    _, qr = await manifest_with(api, clerk, [shipment])
    arrive = await api.post("/v1/scans", json=scan_of(qr, "arrive"), headers=staff_auth(courier))
    assert arrive.status == 422 and (await arrive.json())["error"]["code"] == "manifest-pickup-only"
    unknown = await api.post("/v1/scans", json=scan_of(f"{BASE_URL}/m/{'x' * 22}"), headers=staff_auth(courier))
    assert unknown.status == 404
    assert await statuses(db, shipment) == ["ordered"]


async def test_the_lookup_says_what_a_manifest_is_before_the_scan(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff, courier: staff.NewStaff
) -> None:
    ids = [await ordered(api, hall, db, w) for w in ("1295780512499", "1295780512506")]
    _, qr = await manifest_with(api, clerk, ids)
    resp = await api.get("/v1/scans/lookup", params={"code": qr}, headers=staff_auth(courier))
    assert resp.status == 200
    found = (await resp.json())["manifest"]
    assert found["department"] == MARKET and found["count"] == 2 and not found["taken_over"]


async def test_a_label_scan_still_finds_its_parcel_beside_manifests(
    api: TestClient, db: Database, hall: clients.Credentials, courier: staff.NewStaff
) -> None:
    made = await create(api, hall)
    await move(db, made["id"], "ordered", waybill="1295780512499")
    resp = await api.post(
        "/v1/scans", json=scan_of(f"{BASE_URL}/t/{made['tracking_code']}"), headers=staff_auth(courier)
    )
    assert resp.status == 200 and (await resp.json())["message"] == "已登记揽收"
    assert parse_manifest_code(f"{BASE_URL}/t/{made['tracking_code']}") is None


async def test_the_manifest_qr_opened_by_a_plain_camera_points_to_the_staff_page(api: TestClient) -> None:
    resp = await api.get(f"/m/{'a' * 22}")
    assert resp.status == 200 and "/staff" in await resp.text()


def test_a_manifest_url_is_recognised_whatever_the_host() -> None:
    code = "Zx8-Q_2mNf4kLp9RtWv3Ab"
    assert parse_manifest_code(f"https://zwfw.example.gov.cn/m/{code}") == code
    assert parse_manifest_code(f" http://10.0.0.5:8080/m/{code}/?from=camera ") == code
    assert parse_manifest_code("1295780512499") is None
    assert parse_manifest_code("https://x/m/short") is None
