"""``POST /v1/shipments/{id}/applicant-link``: a new choice link for a shipment still awaiting the applicant.

The create answer shows ``applicant_url`` once (only its hash is stored, like an API key); a client that lost
it, or whose link expired, asks for a new one here. The previous link stops working.
"""

from __future__ import annotations

from aiohttp import web

from logistics.accounts import applicant
from logistics.api.appkeys import DB, SETTINGS
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, not_found
from logistics.api.present import iso
from logistics.api.shipments import json_response

routes = web.RouteTableDef()


@routes.post("/v1/shipments/{id}/applicant-link")
async def reissue_link(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    settings = request.app[SETTINGS]
    try:
        issued = await applicant.reissue(
            request.app[DB], client_id, request.match_info["id"], settings.applicant_link_days
        )
    except ValueError as exc:
        raise Problem(
            409,
            "not-awaiting-applicant",
            "No choice to make",
            f"The shipment is {exc}; a link is only issued while it is awaiting_applicant.",
        ) from None
    if issued is None:
        raise not_found()
    token, expires_at = issued
    return json_response(
        {"applicant_url": applicant.link_url(settings.base_url, token), "expires_at": iso(expires_at)}, status=201
    )
