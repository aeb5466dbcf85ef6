"""Plain-Chinese words for the people's side: statuses, kinds, scan actions, and masked views of a shipment.

One place for the wording, so the tracking page, the staff answers and the applicant page say the same thing.
Every view here is masked with labels.privacy; nothing in this module ever returns a 取件验证码.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carriers.ems.codes import FAILURE_REASONS, reason_text
from carriers.ems.signers import classify as classify_signer
from labels.privacy import mask_address, mask_name, mask_phone, mask_text

STATUS_TEXT: dict[str, str] = {
    "awaiting_applicant": "等待申请人选择寄递方式",
    "pending": "已受理，等待安排邮政寄递",
    "ordered": "已通知邮政，等待揽收",
    "picked_up": "邮政已揽收",
    "in_transit": "运输中",
    "out_for_delivery": "正在派送",
    "delivered": "已送达签收",
    "delivery_failed": "本次派送未成功，邮政将再次派送",
    "returning": "未能送达，邮件正在退回办件窗口",
    "returned": "邮件已退回办件窗口",
    "cancelled": "已取消",
    "failed": "寄递失败",
    "declined": "申请人选择窗口自取",
}

# An intake ends at the hall, not at a front door.
INTAKE_STATUS_TEXT: dict[str, str] = {
    "pending": "已受理，等待邮政上门取件",
    "ordered": "已预约邮政上门取件",
    "picked_up": "邮政已上门取走材料",
    "out_for_delivery": "正在送往政务服务中心",
    "delivered": "材料已送达政务服务中心",
    "delivery_failed": "材料本次未能送达政务服务中心，邮政将再次派送",
    "returning": "材料未能送达，正在退回寄件人",
    "returned": "材料已退回寄件人",
    "failed": "邮政上门取件未成功，本次预约已作废",
    "declined": "申请人选择到窗口递交材料",
}

KIND_TEXT: dict[str, str] = {
    "intake": "快递接件：申请材料寄到政务服务中心",
    "delivery": "快递送达：办理结果寄给申请人",
}

ACTION_TEXT: dict[str, str] = {
    "pickup": "揽收",
    "arrive": "到达",
    "deliver": "投递签收",
    "fail": "投递未成功",
    "returned": "退件签收",
}

ACTION_STATUS: dict[str, str] = {
    "pickup": "picked_up",
    "arrive": "in_transit",
    "deliver": "delivered",
    "fail": "delivery_failed",
    "returned": "returned",
}

SOURCE_TEXT: dict[str, str] = {
    "api": "办件窗口",
    "carrier_push": "中国邮政",
    "carrier_poll": "中国邮政",
    "scan": "扫描登记",
    "applicant": "申请人",
    "system": "系统",
    "console": "办件窗口",
}


def failure_reasons() -> dict[str, str]:
    """EMS 未妥投 reason code → the Chinese meaning (the English gloss in the table is for developers)."""
    return {code: reason_text(code) or code for code in FAILURE_REASONS}


def status_text(status: str, kind: str) -> str:
    if kind == "intake" and status in INTAKE_STATUS_TEXT:
        return INTAKE_STATUS_TEXT[status]
    return STATUS_TEXT.get(status, status)


def masked_party(party: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not party:
        return None
    return {
        "name": mask_name(str(party.get("name") or "")),
        "phone": mask_phone(str(party.get("phone") or "")),
        "address": "".join(str(party.get(k) or "") for k in ("province", "city", "district"))
        + mask_address(str(party.get("address") or "")),
    }


def hall_party(party: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The hall's side of a shipment: an office, not a person, so its name, address and phone are public and
    stay whole, as the label prints them."""
    if not party:
        return None
    return {
        "name": str(party.get("name") or ""),
        "phone": str(party.get("phone") or ""),
        "address": "".join(str(party.get(k) or "") for k in ("province", "city", "district", "address")),
    }


# Sources whose texts come from the carrier or from our own code; every other source's text was typed by a
# person (a cancel reason, a scan note) and is never shown on a public page.
PUBLIC_TEXT_SOURCES = frozenset({"carrier_push", "carrier_poll", "system"})


# The fixed wording of the console's actions that keep the status (a clerk's cancel reason is typed: private).
RESOLUTION_TEXT = {"window_pickup": "办件窗口已登记：请申请人到窗口领取", "closed": "办件窗口已登记：结案"}
RESENT_TEXT = "办件窗口已更正收件信息，重新寄递"
LINK_REISSUED_TEXT = "办件窗口已重新发送选择寄递方式的链接"
CONSOLE_PUBLIC_TEXTS = frozenset({*RESOLUTION_TEXT.values(), RESENT_TEXT, LINK_REISSUED_TEXT})


def public_detail(text: str | None, source: str, applicant: Mapping[str, Any] | None) -> str | None:
    """An event's text as a public page may show it: None for a person's text, a carrier's text masked, the
    console's own fixed wording as it is."""
    if source == "console" and text in CONSOLE_PUBLIC_TEXTS:
        return text
    if not text or source not in PUBLIC_TEXT_SOURCES:
        return None
    return public_masked(text, applicant)


# Signers who are people: the name EMS wrote for them (他人代收:王芳) is hidden like the applicant's. A station's
# or a mail-room's name is a place, shown as written.
_PERSON_SIGNERS = frozenset({"addressee", "family", "other"})


def public_masked(text: str, applicant: Mapping[str, Any] | None) -> str:
    """``text`` with the applicant's name, a signing person's name, the address tail and every phone and ID
    number hidden."""
    party = applicant or {}
    names = [str(party.get("name") or "")]
    signer = classify_signer(text)
    if signer.cls in _PERSON_SIGNERS and signer.name:
        names.append(signer.name)
    return mask_text(text, names=tuple(names), addresses=(str(party.get("address") or ""),))


def applicant_side(kind: str) -> str:
    return "sender" if kind == "intake" else "recipient"


def next_action(status: str, kind: str) -> tuple[str | None, str]:
    """What a courier or clerk is expected to do next with this parcel, in words."""
    if status == "awaiting_applicant":
        return None, "等待申请人选择寄递方式，暂不能揽收"
    if status in ("pending", "ordered"):
        return "pickup", "揽收" if kind == "delivery" else "上门取件（揽收）"
    if status == "picked_up":
        return "arrive", "运往目的地，到达时扫描“到达”"
    if status in ("in_transit", "out_for_delivery", "delivery_failed"):
        return "deliver", "投递给收件人" if kind == "delivery" else "送达政务服务中心窗口"
    if status == "returning":
        if kind == "delivery":
            return "returned", "退回件：交回办件窗口，由窗口人员扫描“退件签收”"
        return None, "退回件：由邮政退回寄件人"
    return None, "已结束，无需再操作"


def staff_view(row: Mapping[str, Any], cases: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What a scan answer says about the parcel: enough to recognise it, masked, and never the 取件验证码."""
    action, action_text = next_action(row["status"], row["kind"])
    if action == "deliver" and row.get("verification_code"):
        action_text += "（需核对取件验证码）"
    return {
        "tracking_code": row["tracking_code"],
        "waybill_no": row["waybill_no"],
        "kind": row["kind"],
        "kind_text": KIND_TEXT.get(row["kind"], row["kind"]),
        "status": row["status"],
        "status_text": status_text(row["status"], row["kind"]),
        "department": row["department"],
        "window": row["window"],
        "cases": [{"case_no": c["case_no"], "item_name": c["item_name"]} for c in cases],
        "recipient": masked_party(row.get("recipient")),
        "verification_required": bool(row.get("verification_code")),
        "next_action": action,
        "next_action_text": action_text,
    }
