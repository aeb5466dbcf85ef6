"""Checks on decrypted business bodies, answering the way EMS does: B01 names a missing field, B02 a bad one.

The simulator is deliberately at least as strict as the README says the real platform is, so a client bug
shows up here and not in production.
"""

from __future__ import annotations

import re
from typing import Any

from carriers.simulator.geo import in_service
from carriers.simulator.parcels import ParcelError
from carriers.simulator.wire import B_FORMAT, B_MISSING, B_OUT_OF_RANGE, parse_time

_MOBILE = re.compile(r"^1\d{10}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")
_POSTCODE = re.compile(r"^\d{6}$")

_PARTY_REQUIRED = ("name", "prov", "city", "county", "address")
_CHOICES = {
    "contentsAttribute": {"1", "3"},
    "bizProductNo": {"1", "10", "11"},
    "pickupType": {"0", "1"},
    "paymentMode": {"1", "2", "4"},
    "deliverType": {"1", "2"},
}


def _missing(name: str) -> ParcelError:
    return ParcelError(B_MISSING, f"必填字段缺失: {name}")


def _bad(name: str, why: str) -> ParcelError:
    return ParcelError(B_FORMAT, f"字段格式错误: {name} {why}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad(what, "应为 JSON 对象")
    return body


def _party(order: dict[str, Any], role: str, service_provinces: frozenset[str]) -> None:
    party = order.get(role)
    if party is None or party == {}:
        raise _missing(role)
    party = _require_object(party, role)
    for name in _PARTY_REQUIRED:
        if not _text(party.get(name)):
            raise _missing(f"{role}.{name}")
    mobile, phone = _text(party.get("mobile")), _text(party.get("phone"))
    if not mobile and not phone:
        raise _missing(f"{role}.mobile")
    if mobile and not _MOBILE.match(mobile):
        raise _bad(f"{role}.mobile", "应为11位手机号")
    if phone and not (_MOBILE.match(phone) or _LANDLINE.match(phone)):
        raise _bad(f"{role}.phone", "应为手机号或固定电话")
    post_code = _text(party.get("postCode"))
    if post_code and not _POSTCODE.match(post_code):
        raise _bad(f"{role}.postCode", "应为6位数字")
    if not in_service(_text(party.get("prov")), service_provinces):
        raise ParcelError(B_OUT_OF_RANGE, f"{role}.prov 超出服务范围: {_text(party.get('prov'))}")


def _time(order: dict[str, Any], name: str, *, required: bool) -> Any:
    raw = _text(order.get(name))
    if not raw:
        if required:
            raise _missing(name)
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise _bad(name, "应为 yyyy-MM-dd HH:mm:ss") from None


def check_order(body: Any, service_provinces: frozenset[str]) -> dict[str, Any]:
    """020003: the one order object of the array, or ParcelError."""
    if not isinstance(body, list):
        raise _bad("logitcsInterface", "020003 报文应为数组")
    if len(body) != 1:
        raise _bad("logitcsInterface", "每次只能提交一个订单")
    order = _require_object(body[0], "order")
    order_no = _text(order.get("logisticsOrderNo"))
    if not order_no:
        raise _missing("logisticsOrderNo")
    if len(order_no) > 50:
        raise _bad("logisticsOrderNo", "长度不能超过50")
    if len(_text(order.get("ecommerceUserId"))) >= 50:
        raise _bad("ecommerceUserId", "长度应小于50")
    _time(order, "createdTime", required=False)
    for name, allowed in _CHOICES.items():
        value = _text(order.get(name))
        if value and value not in allowed:
            raise _bad(name, f"取值应为 {'/'.join(sorted(allowed))}")
    weight = order.get("weight")
    if weight not in (None, ""):
        try:
            grams = float(weight)
        except (TypeError, ValueError):
            raise _bad("weight", "应为数字(克)") from None
        if grams <= 0:
            raise _bad("weight", "应大于0")
    if _text(order.get("pickupType")) == "1":
        # A door collection may leave the window to EMS (no times), but half a window is a client bug.
        has_begin, has_end = bool(_text(order.get("pickupPreBeginTime"))), bool(_text(order.get("pickupPreEndTime")))
        begin = _time(order, "pickupPreBeginTime", required=has_end)
        end = _time(order, "pickupPreEndTime", required=has_begin)
        if begin is not None and end is not None and end <= begin:
            raise _bad("pickupPreEndTime", "应晚于 pickupPreBeginTime")
    _party(order, "sender", service_provinces)
    _party(order, "receiver", service_provinces)
    cargos = order.get("cargos")
    if cargos is not None:
        if not isinstance(cargos, list):
            raise _bad("cargos", "应为数组")
        for index, cargo in enumerate(cargos):
            if not isinstance(cargo, dict) or not _text(cargo.get("cargoName")):
                raise _missing(f"cargos[{index}].cargoName")
    return order


def check_cancel(body: Any) -> tuple[str | None, str | None, str]:
    """020006: (logisticsOrderNo, waybillNo, cancelReason)."""
    body = _require_object(body, "logitcsInterface")
    order_no, waybill_no = _text(body.get("logisticsOrderNo")), _text(body.get("waybillNo"))
    if not order_no and not waybill_no:
        raise _missing("logisticsOrderNo")
    return order_no or None, waybill_no or None, _text(body.get("cancelReason"))


def check_track(body: Any) -> str:
    """040001: the waybill to report on."""
    body = _require_object(body, "logitcsInterface")
    waybill_no = _text(body.get("waybillNo"))
    if not waybill_no:
        raise _missing("waybillNo")
    direction = _text(body.get("direction")) or "0"
    if direction not in {"0", "1"}:
        raise _bad("direction", "取值应为 0/1")
    return waybill_no


def check_coverage(body: Any) -> dict[str, Any]:
    """030005: the address fields (prov is the one that decides)."""
    body = _require_object(body, "logitcsInterface")
    if not _text(body.get("prov")):
        raise _missing("prov")
    return body


def check_split(body: Any) -> list[str]:
    """060001: the whole addresses to split."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not body:
        raise _bad("logitcsInterface", "060001 报文应为数组")
    addresses = []
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not _text(item.get("wholeAddress")):
            raise _missing(f"[{index}].wholeAddress")
        addresses.append(_text(item.get("wholeAddress")))
    return addresses
