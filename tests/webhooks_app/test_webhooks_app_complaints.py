"""The complaint webhooks, verified by the approval system's standardwebhooks receiver: the applicant's
complaint, then the hall's answer from the console (``shipment.complaint_answered``)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from webhooks_app_support import Clock, Receiver, drain, new_shipment

from logistics.accounts import staff
from logistics.accounts.clients import Credentials
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database

from support import auth, sign_in

ANSWER = "已联系EMS上街区揽投部，邮件明天上午送达，请保持电话畅通。"


async def test_the_halls_answer_to_a_complaint_reaches_the_client_as_complaint_answered(
    api: TestClient, db: Database, subscribed: Credentials, receiver: Receiver, rt: Runtime, clock: Clock
) -> None:
    sid = await new_shipment(db, subscribed.id)
    shipment = await (await api.get(f"/v1/shipments/{sid}", headers=auth(subscribed))).json()
    filed = await api.post(
        f"/t/{shipment['tracking_code']}/complaints", json={"category": "delay", "text": "等了五天还没有收到许可证"}
    )
    complaint_id = (await filed.json())["id"]
    clerk = await staff.create(db, "李秀英", "clerk", ["上街区市场监督管理局"])
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        f"/console/shipments/{sid}/complaints/{complaint_id}/answer", data={"csrf": csrf, "answer": ANSWER}
    )
    assert resp.status == 200
    await drain(rt, clock)

    assert len(receiver.verified()) == len(receiver.received) == 2  # both verified by the reference library
    complaint, answered = (r.payload for r in receiver.verified())
    assert complaint["type"] == "shipment.complaint"
    assert complaint["data"]["complaint"]["answer"] is None
    assert answered["type"] == "shipment.complaint_answered"
    data = answered["data"]
    assert data["id"] == sid and data["tracking_code"] == shipment["tracking_code"]
    assert data["complaint"]["id"] == complaint_id
    assert data["complaint"]["text"] == "等了五天还没有收到许可证"  # the client's own applicant's words
    assert data["complaint"]["answer"]["text"] == ANSWER  # in full: the client owns the case
    assert data["complaint"]["answer"]["answered_at"].endswith("Z")
    assert clerk.token not in str(answered) and clerk.member.id not in str(answered)  # who answered stays with the hall
