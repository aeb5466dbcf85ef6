"""The 好差评 webhooks, verified by the approval system's standardwebhooks receiver: ``shipment.rated`` with the
cleaned comment, then ``shipment.follow_up_closed`` when a clerk closed the follow-up on the console."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from webhooks_app_support import Clock, Receiver, drain, new_shipment

from logistics.accounts import staff
from logistics.accounts.clients import Credentials
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database

from support import auth, sign_in

ACTION = "已电话回访申请人，说明延误原因并致歉，已督促揽投部改进。"


async def test_a_bad_rating_and_its_close_reach_the_client(
    api: TestClient, db: Database, subscribed: Credentials, receiver: Receiver, rt: Runtime, clock: Clock
) -> None:
    sid = await new_shipment(db, subscribed.id, status="delivered")
    shipment = await (await api.get(f"/v1/shipments/{sid}", headers=auth(subscribed))).json()
    rated = await api.post(
        f"/t/{shipment['tracking_code']}/rating", json={"level": 2, "comment": "等了五天，打13803712345没人接"}
    )
    assert rated.status == 201
    clerk = await staff.create(db, "李秀英", "clerk", ["上街区市场监督管理局"])
    csrf = await sign_in(api, clerk.token)
    closed = await api.post(f"/console/shipments/{sid}/follow-up/close", data={"csrf": csrf, "action": ACTION})
    assert closed.status == 200
    await drain(rt, clock)

    assert len(receiver.verified()) == len(receiver.received) == 2  # both verified by the reference library
    rating, close = (r.payload for r in receiver.verified())
    assert rating["type"] == "shipment.rated" and rating["data"]["id"] == sid
    given = rating["data"]["rating"]
    assert (given["level"], given["level_text"], given["follow_up_opened"]) == (2, "不满意", True)
    assert given["comment"] == "等了五天，打[号码已隐去]没人接"
    assert close["type"] == "shipment.follow_up_closed"
    follow_up = close["data"]["follow_up"]
    assert (follow_up["id"], follow_up["action"], follow_up["status"]) == (given["follow_up"]["id"], ACTION, "closed")
    assert follow_up["closed_by"] == "hall" and follow_up["late"] is False
    assert clerk.member.id not in str(close) and clerk.token not in str(close)  # which clerk stays with the hall
