"""POST /carriers/ems/push: tracking events pushed by the carrier.

Authenticated by decryption with our key. Each event is stored durably as an outbox task before we answer
success; the worker applies it (de-duplicated, forward-only). If storing fails we answer failure, and EMS
pushes again.
"""

from __future__ import annotations

import logging

from aiohttp import web

from carriers.base import PushRejected
from logistics.api.appkeys import CARRIER, REQUEST_ID, SIGNAL, TASK_BATCHER
from logistics.carrier import event_payload
from logistics.storage.outbox import task_row

routes = web.RouteTableDef()
log = logging.getLogger("logistics.api")


@routes.post("/carriers/{carrier}/push")
async def carrier_push(request: web.Request) -> web.Response:
    carrier = request.app[CARRIER]
    if request.match_info["carrier"] != carrier.name:
        raise web.HTTPNotFound()
    body = await request.read()
    try:
        result = carrier.parse_push(body, request.content_type)
    except PushRejected as exc:
        log.warning("carrier_push_rejected", extra={"reason": str(exc)[:200]})
        return web.Response(body=exc.reply, content_type="application/json")
    rows = [
        task_row(
            "carrier_event", None, {**event_payload(e), "source": "carrier_push"}, request_id=request[REQUEST_ID]
        )
        for e in result.events
    ]
    await request.app[TASK_BATCHER].insert(rows)  # with the other pushes arriving meanwhile
    request.app[SIGNAL].poke()
    return web.Response(body=result.reply, content_type=result.reply_content_type)
