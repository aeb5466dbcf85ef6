import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from carriers.base import FinalCarrierError, Item, OrderRequest, Party, RetryableCarrierError
from carriers.ems import messages
from carriers.ems.envelope import open_

FIXTURES = Path(__file__).parent / "fixtures" / "ems"
SIGN_KEY = "TvaBgrhE46sft3nZlfe7xw=="
BEIJING = timezone(timedelta(hours=8))
ORDER_NO = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
WAYBILL = "1295780512499"

HALL = Party(
    name="上街区政务服务中心",
    phone="0371-68123456",
    province="河南省",
    city="郑州市",
    district="上街区",
    address="中心路132号",
    postcode="450041",
)
APPLICANT = Party(
    name="欧阳娜娜",
    phone="13803712345",
    province="河南省",
    city="郑州市",
    district="上街区",
    address="新安路街道济源路8号院3号楼2单元501室",
)


def _fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _delivery() -> OrderRequest:
    return OrderRequest(
        order_no=ORDER_NO,
        kind="delivery",
        sender=HALL,
        receiver=APPLICANT,
        items=(Item("食品经营许可证正本", 1), Item("食品经营许可证副本", 2)),
        created_at=datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
        safety_code="K7Q2M9",
        weight_grams=150,
    )


def _intake() -> OrderRequest:
    applicant = Party(
        name="张伟", phone="13803712345", province="河南省", city="郑州市", district="上街区",
        address="中心路街道工业路19号院5号楼1单元302室",
    )
    return OrderRequest(
        order_no="shp_01JD90A1B2C3D4E5F6G7H8J9K0",
        kind="intake",
        sender=applicant,
        receiver=HALL,
        items=(Item("营业执照申请材料"),),
        created_at=datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
        pickup_start=datetime(2026, 11, 26, 6, 0, tzinfo=UTC),
        pickup_end=datetime(2026, 11, 26, 8, 0, tzinfo=UTC),
        safety_code="IGNORED",
        notes="请敲门,勿放门口",
    )


def _order(req: OrderRequest) -> dict[str, Any]:
    body = messages.build_order_body(req, ecommerce_user_id="sjzwfw", biz_product_no="1")
    assert isinstance(body, list) and len(body) == 1
    return body[0]


# --- 020003 build ---------------------------------------------------------------------------------------


def test_order_uses_our_order_number_as_logistics_order_no() -> None:
    assert _order(_delivery())["logisticsOrderNo"] == ORDER_NO


def test_order_is_documents_with_configured_product_and_user() -> None:
    order = _order(_delivery())
    assert order["contentsAttribute"] == "1"
    assert order["bizProductNo"] == "1"
    assert order["ecommerceUserId"] == "sjzwfw"
    assert order["weight"] == 150


def test_delivery_is_door_delivery_with_safety_code() -> None:
    order = _order(_delivery())
    assert order["deliverType"] == "2"
    assert order["receiverSafetyCode"] == "K7Q2M9"
    assert "pickupPreBeginTime" not in order


def test_delivery_without_safety_code_sends_none() -> None:
    assert "receiverSafetyCode" not in _order(replace(_delivery(), safety_code=None))


def test_intake_is_door_pickup_in_beijing_time_window() -> None:
    order = _order(_intake())
    assert order["pickupType"] == "1"
    assert order["pickupPreBeginTime"] == "2026-11-26 14:00:00"
    assert order["pickupPreEndTime"] == "2026-11-26 16:00:00"
    assert order["pickupNotes"] == "请敲门,勿放门口"


def test_intake_never_sends_a_safety_code() -> None:
    assert "receiverSafetyCode" not in _order(_intake())


def test_created_time_is_beijing_time() -> None:
    assert _order(_delivery())["createdTime"] == "2026-11-26 09:30:00"


def test_naive_datetimes_are_taken_as_utc() -> None:
    assert messages.beijing_time(datetime(2026, 11, 26, 16, 30)) == "2026-11-27 00:30:00"


def test_mobile_goes_to_mobile_and_landline_to_phone() -> None:
    order = _order(_delivery())
    assert order["receiver"]["mobile"] == "13803712345"
    assert "phone" not in order["receiver"]
    assert order["sender"]["phone"] == "0371-68123456"
    assert "mobile" not in order["sender"]


def test_parties_carry_official_region_names_and_postcode() -> None:
    sender = _order(_delivery())["sender"]
    assert (sender["prov"], sender["city"], sender["county"]) == ("河南省", "郑州市", "上街区")
    assert sender["address"] == "中心路132号"
    assert sender["postCode"] == "450041"


def test_cargos_come_from_items() -> None:
    assert _order(_delivery())["cargos"] == [
        {"cargoName": "食品经营许可证正本", "cargoQuantity": 1},
        {"cargoName": "食品经营许可证副本", "cargoQuantity": 2},
    ]


def test_compact_json_keeps_chinese_and_has_no_spaces() -> None:
    text = messages.compact_json(messages.build_order_body(_delivery(), ecommerce_user_id="u", biz_product_no="1"))
    assert "欧阳娜娜" in text
    assert ", " not in text and ": " not in text


# --- 020006 / 040001 build ------------------------------------------------------------------------------


def test_cancel_body() -> None:
    assert messages.build_cancel_body(ORDER_NO, WAYBILL, "申请人改为窗口领取") == {
        "logisticsOrderNo": ORDER_NO,
        "waybillNo": WAYBILL,
        "cancelReason": "申请人改为窗口领取",
    }


def test_cancel_body_before_a_waybill_exists() -> None:
    assert messages.build_cancel_body(ORDER_NO, None, "重复下单")["waybillNo"] == ""


def test_track_body() -> None:
    assert messages.build_track_body(WAYBILL) == {"waybillNo": WAYBILL, "direction": "0"}


# --- form -----------------------------------------------------------------------------------------------


def _form() -> dict[str, str]:
    return messages.build_form(
        "040001",
        messages.build_track_body(WAYBILL),
        sender_no="1100012345678",
        authorization="AUTHsandbox01",
        sign_key=SIGN_KEY,
        now=datetime(2026, 11, 27, 8, 45, 34, tzinfo=UTC),
    )


def test_form_carries_the_plain_fields() -> None:
    form = _form()
    assert form["apiCode"] == "040001"
    assert form["senderNo"] == "1100012345678"
    assert form["authorization"] == "AUTHsandbox01"
    assert form["timeStamp"] == "2026-11-27 16:45:34"
    assert form["msgType"] == "0"
    assert form["version"] == "V1.0.0"


def test_form_body_is_sealed_with_the_key_appended() -> None:
    sealed = _form()["logitcsInterface"]
    assert sealed.startswith("|$4|")
    assert open_(sealed, SIGN_KEY, strip_key=False) == '{"waybillNo":"1295780512499","direction":"0"}' + SIGN_KEY


def test_form_values_are_all_strings() -> None:
    assert all(isinstance(v, str) for v in _form().values())


def test_encoded_form_decodes_to_the_same_fields() -> None:
    form = _form()
    assert parse_qs(messages.encode_form(form).decode("ascii"), keep_blank_values=True) == {
        k: [v] for k, v in form.items()
    }


@pytest.mark.parametrize(
    "value",
    [
        "|$4|Mf6qBc+nR/0Ab==",  # a sealed body: base64 behind the envelope prefix
        "2026-11-27 16:45:34",  # spaces and colons
        "郑州市金水区花园路 36 号 3 单元 502 室",  # UTF-8, several bytes per character
        "a&b=c%d+e~f_g.h-i*j'k(l)m!n\n\t",
        "",
    ],
)
def test_form_encoding_is_exactly_what_urlencode_sends(value: str) -> None:
    form = {"logitcsInterface": value, "timeStamp": value, "msgType": "0"}
    assert messages.encode_form(form) == urlencode(form).encode("ascii")


# --- parse_response -------------------------------------------------------------------------------------


def test_success_ret_body_is_decoded_a_second_time() -> None:
    body = messages.parse_response("020003", 200, _fixture_text("order_020003_success.json"))
    assert body["waybillNo"] == WAYBILL


def test_b01_is_final_with_code_and_message() -> None:
    with pytest.raises(FinalCarrierError) as caught:
        messages.parse_response("020003", 200, _fixture_text("order_020003_b01.json"))
    assert caught.value.code == "B01"
    assert "必填字段缺失" in caught.value.message
    assert caught.value.retryable is False


def test_s07_is_retryable_with_code() -> None:
    with pytest.raises(RetryableCarrierError) as caught:
        messages.parse_response("020003", 200, _fixture_text("order_020003_s07.json"))
    assert caught.value.code == "S07"
    assert caught.value.retryable is True


def test_unknown_error_code_is_retryable() -> None:
    text = json.dumps({"retCode": "E0420", "retMsg": "限流", "retBody": "", "success": False})
    with pytest.raises(RetryableCarrierError) as caught:
        messages.parse_response("040001", 200, text)
    assert caught.value.code == "E0420"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_http_errors_are_retryable(status: int) -> None:
    with pytest.raises(RetryableCarrierError) as caught:
        messages.parse_response("020003", status, "<html>Service Unavailable</html>")
    assert caught.value.code == f"HTTP{status}"


def test_malformed_json_is_retryable() -> None:
    with pytest.raises(RetryableCarrierError) as caught:
        messages.parse_response("020003", 200, '{"retCode": "00000", "retBody": ')
    assert caught.value.code == "BADJSON"


def test_malformed_ret_body_is_retryable() -> None:
    text = json.dumps({"retCode": "00000", "retMsg": "成功", "retBody": "{waybillNo:", "success": True})
    with pytest.raises(RetryableCarrierError):
        messages.parse_response("020003", 200, text)


def test_empty_ret_body_is_an_empty_dict() -> None:
    text = json.dumps({"retCode": "00000", "retMsg": "成功", "retBody": "", "success": True})
    assert messages.parse_response("020006", 200, text) == {}


# --- parse_order_result ---------------------------------------------------------------------------------


def test_order_result_from_success_fixture() -> None:
    body = messages.parse_response("020003", 200, _fixture_text("order_020003_success.json"))
    result = messages.parse_order_result(body, order_no=ORDER_NO)
    assert result.order_no == ORDER_NO
    assert result.waybill_no == WAYBILL
    assert result.route_code == "450041-02"
    assert (result.package_code, result.package_name) == ("45000900", "郑州中心")
    assert (result.destination_code, result.destination_name) == ("410106", "郑州 上街")


def test_order_result_from_an_array_ret_body() -> None:
    body = {"items": [{"logisticsOrderNo": ORDER_NO, "waybillNo": WAYBILL}]}
    assert messages.parse_order_result(body).waybill_no == WAYBILL


def test_success_without_waybill_is_retryable() -> None:
    with pytest.raises(RetryableCarrierError) as caught:
        messages.parse_order_result({"logisticsOrderNo": ORDER_NO})
    assert caught.value.code == "NOWAYBILL"


def test_answer_for_another_order_is_final() -> None:
    with pytest.raises(FinalCarrierError):
        messages.parse_order_result(
            {"logisticsOrderNo": "shp_OTHER", "waybillNo": WAYBILL}, order_no=ORDER_NO
        )


# --- 040001 parse ---------------------------------------------------------------------------------------


def _trace() -> list[Any]:
    body = messages.parse_response("040001", 200, _fixture_text("track_040001.json"))
    return messages.parse_track_items(body, waybill_no=WAYBILL)


def test_track_items_in_order_with_statuses() -> None:
    assert [e.status for e in _trace()] == [
        "picked_up",
        "in_transit",
        "in_transit",
        "in_transit",
        "in_transit",
        "out_for_delivery",
        "delivery_failed",
        "out_for_delivery",
        "delivered",
    ]


def test_track_items_take_the_waybill_from_trace_no() -> None:
    assert {e.waybill_no for e in _trace()} == {WAYBILL}


def test_failed_attempt_carries_its_reason_code() -> None:
    failed = next(e for e in _trace() if e.status == "delivery_failed")
    assert failed.code == "705"
    assert failed.reason_code == "103"


def test_track_items_are_sorted_by_time() -> None:
    body = json.loads(json.loads(_fixture_text("track_040001.json"))["retBody"])
    body["responseItems"].reverse()
    events = messages.parse_track_items(body)
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)


def test_unreadable_track_item_is_skipped() -> None:
    body = {
        "responseItems": [
            {"traceNo": WAYBILL, "opCode": "203", "opName": "收寄", "opTime": "not a time"},
            {"traceNo": WAYBILL, "opCode": "305", "opName": "揽投发运", "opTime": "2026-11-26 15:40:02"},
        ]
    }
    assert [e.code for e in messages.parse_track_items(body)] == ["305"]


# --- event_from_item ------------------------------------------------------------------------------------


def _delivered_item() -> dict[str, str]:
    return {
        "waybillNo": WAYBILL,
        "orderNo": ORDER_NO,
        "opTime": "2026-11-27 16:45:33",
        "opCode": "704",
        "opName": "投递结果反馈-妥投",
        "opDesc": "已签收,本人签收,投递员:刘洋",
        "opOrgCode": "45001600",
        "opOrgName": "郑州市二七区揽投部",
        "opOrgProvName": "河南省",
        "opOrgCity": "郑州市",
        "operatorNo": "41000901",
        "operatorName": "刘洋",
    }


def test_op_time_is_beijing_time_and_timezone_aware() -> None:
    occurred = messages.event_from_item(_delivered_item()).occurred_at
    assert occurred.utcoffset() == timedelta(hours=8)
    assert occurred == datetime(2026, 11, 27, 8, 45, 33, tzinfo=UTC)


def test_event_fields() -> None:
    event = messages.event_from_item(_delivered_item())
    assert (event.waybill_no, event.order_no, event.code) == (WAYBILL, ORDER_NO, "704")
    assert event.name == "投递结果反馈-妥投"
    assert event.description == "已签收,本人签收,投递员:刘洋"
    assert event.status == "delivered"
    assert event.reason_code is None


def test_location_drops_the_city_repeated_in_the_org_name() -> None:
    assert messages.event_from_item(_delivered_item()).location == "河南省 郑州市二七区揽投部"


def test_location_keeps_the_city_when_the_org_name_lacks_it() -> None:
    item = {**_delivered_item(), "opOrgName": "郑州中心"}
    assert messages.event_from_item(item).location == "河南省 郑州市 郑州中心"


def test_raw_item_is_kept() -> None:
    item = _delivered_item()
    assert messages.event_from_item(item).raw == item


def test_epoch_millisecond_op_time_is_accepted() -> None:
    item = {**_delivered_item(), "opTime": 1795769133000}
    assert messages.event_from_item(item).occurred_at == datetime.fromtimestamp(1795769133, tz=BEIJING)


@pytest.mark.parametrize("missing", ["opCode", "opTime", "waybillNo"])
def test_event_without_essentials_is_refused(missing: str) -> None:
    item = {k: v for k, v in _delivered_item().items() if k != missing}
    with pytest.raises(ValueError):
        messages.event_from_item(item)


def test_paths() -> None:
    assert messages.PROD_PATH == "/amp-prod-api/f/amp/api/open"
    assert messages.SANDBOX_PATH == "/amp-prod-api/f/amp/api/test"


# --- hostile times and nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op_time",
    [1e20, -1e20, float("inf"), float("nan"), "9999999999999", "0001-01-01 00:00:00", "9999-12-31 23:59:59"],
)
def test_an_event_time_outside_the_years_of_shipments_is_unreadable(op_time: object) -> None:
    with pytest.raises(ValueError):
        messages.parse_beijing_time(op_time)


def test_event_times_at_the_edges_of_the_years_still_read() -> None:
    assert messages.parse_beijing_time("2000-01-01 00:00:00") == datetime(2000, 1, 1, tzinfo=BEIJING)
    assert messages.parse_beijing_time("2099-12-31 23:59:59").year == 2099


def test_a_tracking_answer_skips_the_item_whose_time_is_no_time() -> None:
    good = {"waybillNo": WAYBILL, "opCode": "305", "opTime": "2026-11-26 14:05:00", "opName": "离开处理中心"}
    items = [{**good, "opCode": "203", "opTime": 1e20}, good]
    assert [e.code for e in messages.parse_track_items({"responseItems": items})] == ["305"]


def test_an_answer_nested_20000_deep_is_a_retryable_error_not_a_crash() -> None:
    with pytest.raises(RetryableCarrierError):
        messages.parse_response("040001", 200, "[" * 20_000 + "]" * 20_000)
