"""The public tracking page and its JSON never carry personal data written as free text, nor refused moves.

Rules under test: nothing a person typed (cancel reasons, scan notes) is ever public; a carrier's description
is shown only with the shipment's own parties and every phone and resident-ID number masked; an address is
masked after its building whatever the wording; an event the forward-only rule refused stays in the client's
API and off the public pages.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from people_support import advance, create_shipment, ordered

from labels.privacy import mask_address
from logistics.accounts import clients
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.wording import public_masked
from logistics.pages.views import public_view, tracking_page
from logistics.storage.db import Database

from support import APPLICANT, HALL, auth

JSON = {"Accept": "application/json"}
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_checksum(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


async def public_outputs(api: TestClient, code: str) -> tuple[str, str]:
    page = await (await api.get(f"/t/{code}")).text()
    view = await (await api.get(f"/t/{code}", headers=JSON)).json()
    return page, json.dumps(view, ensure_ascii=False)


async def push(db: Database, shipment_id: str, status: str, text: str, source: str = "carrier_push") -> None:
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        assert row is not None
        await apply_event(conn, row, status=status, source=source, carrier_text=text)


# Fixed examples, one per way personal data reached the page.


async def test_a_cancel_reason_is_never_public_but_stays_in_the_clients_api(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    created = await create_shipment(api, hall)
    reason = "申请人欧阳娜娜（身份证410105199003071234）来电要求改为窗口自取"
    resp = await api.post(f"/v1/shipments/{created['id']}/cancel", json={"reason": reason}, headers=auth(hall))
    assert resp.status == 200, await resp.text()
    for output in await public_outputs(api, created["tracking_code"]):
        assert "已取消" in output
        for secret in ("欧阳娜娜", "410105199003071234", "来电要求改为窗口自取"):
            assert secret not in output
    mine = await (await api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))).json()
    assert reason in [e["carrier_text"] for e in mine["events"]]


async def test_a_scan_note_typed_by_staff_is_never_public(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    await push(db, shipment["id"], "picked_up", "收件人欧阳娜娜不在家，邻居代收", source="scan")
    for output in await public_outputs(api, shipment["tracking_code"]):
        assert "邮政已揽收" in output
        assert "欧阳娜娜" not in output and "邻居代收" not in output


async def test_a_carrier_text_naming_the_recipient_and_address_is_masked(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    text = "您的邮件已由投递员王师傅（13912345678）送至欧阳娜娜，新安路街道济源路8号院3号楼2单元501室，娜娜已签收"
    await push(db, shipment["id"], "out_for_delivery", text)
    for output in await public_outputs(api, shipment["tracking_code"]):
        assert "欧阳**" in output and "139******78" in output and "3号楼*单元***室" in output
        # The room number is looked for beside its words: "501" alone also turns up in a time's microseconds.
        for secret in ("欧阳娜娜", "娜娜已签收", "13912345678", "2单元501室", "501室", "单元501"):
            assert secret not in output


async def test_a_phone_written_inside_an_address_is_masked_in_the_json(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    recipient = {**APPLICANT, "address": "新安路街道济源路8号 电话13803712345 转0371-67891234"}
    shipment = await ordered(api, db, hall, recipient=recipient)
    for output in await public_outputs(api, shipment["tracking_code"]):
        assert "13803712345" not in output and "67891234" not in output
        assert "济源路8号 电话138******45" in output


async def test_a_room_number_without_a_unit_or_room_marker_is_masked(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall, recipient={**APPLICANT, "address": "新安路街道济源路72号501"})
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)).json()
    assert view["recipient"]["address"] == "河南省郑州市上街区新安路街道济源路72号***"


async def test_moves_refused_after_delivery_stay_off_the_public_timeline(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit", "out_for_delivery", "delivered")
    await advance(db, shipment["id"], "in_transit", "delivery_failed")
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)).json()
    assert view["status"] == "delivered"
    assert [e["status"] for e in view["events"]].count("in_transit") == 1
    assert "delivery_failed" not in [e["status"] for e in view["events"]]
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert "本次派送未成功" not in page
    mine = await (await api.get(f"/v1/shipments/{shipment['id']}", headers=auth(hall))).json()
    assert [e["status"] for e in mine["events"]][-2:] == ["in_transit", "delivery_failed"]


# Properties: generated Chinese personal data embedded in free text never reaches the rendered page or JSON.

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "欧阳", "司马", "诸葛", "上官"]
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红"
names = st.builds(lambda s, g: s + g, st.sampled_from(SURNAMES), st.text(GIVEN, min_size=1, max_size=2))
mobiles = st.builds(lambda p, r: f"1{p}{r:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1))
landlines = st.builds(
    lambda area, sep, n: f"{area}{sep}{n}",
    st.sampled_from(["0371", "010", "021", "0379", "0755"]),
    st.sampled_from(["-", "", " "]),
    st.integers(20_000_000, 89_999_999).map(str),
)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["410105", "410106", "110101", "440305"]))
    born = draw(st.dates(min_value=datetime(1930, 1, 1).date(), max_value=datetime(2020, 12, 31).date()))
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    valid = draw(st.booleans())
    return first17 + (id_checksum(first17) if valid else draw(st.sampled_from("0123456789X")))


@st.composite
def addresses(draw: st.DrawFn) -> tuple[str, str]:
    """(address, its private tail) in the wordings people write."""
    road = draw(st.sampled_from(["济源路", "中心路", "农业路", "花园路", "金水东路"]))
    no, bld, unit = draw(st.integers(1, 300)), draw(st.integers(1, 30)), draw(st.integers(1, 9))
    room = f"{draw(st.integers(1, 33))}{draw(st.integers(1, 4)):02d}"
    shape = draw(st.sampled_from(["unit", "bare", "dashed", "zhuang", "zuo", "street"]))
    tails = {
        "unit": (f"{road}{no}号院{bld}号楼", f"{unit}单元{room}室"),
        "bare": (f"{road}{no}号院{bld}号楼", room),
        "dashed": (f"{road}{no}号院{bld}栋", f"{unit}-{room}"),
        "zhuang": (f"{road}{no}号{bld}幢", room),
        "zuo": (f"{road}{no}号B座", room),
        "street": (f"{road}{no}号", room),
    }
    public, tail = tails[shape]
    return public + tail, tail


TEMPLATES = [
    "投递员已将邮件送至{name}（{address}），联系电话{phone}，证件号{id}",
    "{name}{phone}已签收，地址：{address}。身份证：{id}",
    "【郑州市】{address} {name}本人签收，电话 {phone}；{id}",
]

HALL_SENDER = dict(HALL)


def render(recipient: dict[str, str], event: SimpleNamespace) -> str:
    row = {
        "tracking_code": "K7Q2M9X4P3W8H",
        "kind": "delivery",
        "status": event.status,
        "carrier": "ems",
        "waybill_no": "1295780512499",
        "department": "上街区市场监督管理局",
        "sender": HALL_SENDER,
        "recipient": recipient,
        "pickup_start": None,
        "pickup_end": None,
        "updated_at": datetime(2026, 12, 4, 2, 0, tzinfo=UTC),
    }
    view = public_view(row, [event], [SimpleNamespace(item_name="食品经营许可证核发")])
    response = tracking_page(view)
    assert response.text is not None
    return response.text + json.dumps(view, ensure_ascii=False)


def event_with(text: str, source: str) -> SimpleNamespace:
    return SimpleNamespace(
        sequence=3,
        status="out_for_delivery",
        occurred_at=datetime(2026, 12, 4, 1, 30, tzinfo=UTC),
        source=source,
        carrier_text=text,
        location="郑州市上街区",
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    phone=st.one_of(mobiles, landlines),
    other_phone=st.one_of(mobiles, landlines),
    resident_id=resident_ids(),
    address=addresses(),
    template=st.sampled_from(TEMPLATES),
    source=st.sampled_from(["carrier_push", "carrier_poll", "system", "api", "scan", "applicant"]),
)
def test_personal_data_in_any_event_text_never_reaches_the_public_page(
    name: str,
    phone: str,
    other_phone: str,
    resident_id: str,
    address: tuple[str, str],
    template: str,
    source: str,
) -> None:
    full_address, tail = address
    assume("68123456" not in phone + other_phone)  # the hall's own public number
    recipient = {**APPLICANT, "name": name, "phone": phone, "address": full_address}
    text = template.format(name=name, address=full_address, phone=other_phone, id=resident_id)
    output = render(recipient, event_with(text, source))
    # A bare room number ("502") may occur by chance in a date; the address around it may not.
    tail_secret = (tail,) if not tail.isdigit() else ()
    for secret in (name, phone, other_phone, resident_id, full_address, *tail_secret):
        assert secret not in output


@settings(max_examples=200, deadline=None)
@given(address=addresses(), phone=st.one_of(mobiles, landlines))
def test_an_address_is_masked_after_its_building_whatever_its_wording(address: tuple[str, str], phone: str) -> None:
    full_address, tail = address
    masked = mask_address(f"{full_address} 电话{phone}")
    kept = full_address[: len(full_address) - len(tail)]
    assert masked.startswith(kept)
    # Only after what is kept: the room may repeat the street number (济源路101号院1号楼101).
    assert tail not in masked[len(kept) :] and phone not in masked
    assert len(masked) == len(full_address) + 3 + len(phone)


@pytest.mark.parametrize(
    ("carrier_text", "hidden", "shown"),
    [
        ("已签收,他人代收:王芳,投递员:高静", "王芳", "王*"),
        ("已签收,本人签收:司马光;,投递员:高静", "司马光", "司马*"),
        ("已签收,他人收[邻居赵敏]", "赵敏", "他人收[邻***]"),
    ],
)
def test_a_person_who_signed_for_the_applicant_is_not_named_on_the_public_page(
    carrier_text: str, hidden: str, shown: str
) -> None:
    masked = public_masked(carrier_text, {"name": "欧阳娜娜", "address": "济源路8号院3号楼2单元501室"})
    assert hidden not in masked and shown in masked


def test_a_station_that_signed_keeps_its_name_on_the_public_page() -> None:
    text = "快件已由【上街区济源路菜鸟驿站】代收"
    assert public_masked(text, {"name": "欧阳娜娜", "address": "济源路8号院3号楼2单元501室"}) == text
