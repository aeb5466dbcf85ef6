"""Realistic label data: a licence mailed from the Shangjie hall to an applicant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from labels.model import LabelData, LabelParty

CST = timezone(timedelta(hours=8), "CST")

WAYBILL = "1295780512499"
URL = "http://127.0.0.1:8080/t/K7Q2M4X7V3K9T"

RECIPIENT = LabelParty(
    name="欧阳娜娜",
    phone="13803712345",
    province="河南省",
    city="郑州市",
    district="上街区",
    address="新安路街道济源路8号院3号楼2单元501室",
)
SENDER = LabelParty(
    name="上街区政务服务中心",
    phone="0371-68123456",
    province="河南省",
    city="郑州市",
    district="上街区",
    address="中心路132号",
    is_organisation=True,
)
# An intake: the applicant sends their documents, so the private person is the sender.
APPLICANT_SENDER = RECIPIENT
HALL_RECIPIENT = SENDER


def make_label(waybill: str = WAYBILL, url: str = URL, kind: str = "delivery", **changes: object) -> LabelData:
    fields: dict[str, object] = dict(
        waybill_no=waybill,
        tracking_url=url,
        kind=kind,
        carrier_name="EMS",
        product_name="特快专递",
        destination_name="郑州上街",
        destination_code="450041",
        route_code="451-A07",
        sender=SENDER,
        recipient=RECIPIENT,
        contents=(("食品经营许可证正本", 1),),
        cases=(("410106-2018-00095", "食品经营许可证核发"),),
        department="上街区市场监督管理局",
        window="综合受理3号窗口",
        printed_at=datetime(2025, 11, 26, 14, 30, tzinfo=CST),
    )
    fields.update(changes)
    return LabelData(**fields)  # type: ignore[arg-type]
