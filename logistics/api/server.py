"""Serving the API: aiohttp's runner, answering the requests aiohttp itself refuses in the API's own shape.

A request aiohttp cannot parse (a control byte in a header, a 100 KB header line, a bad request line) never
reaches the application or its middleware: aiohttp answers it from its connection handler, as plain text that
quotes the offending line, credentials included. aiohttp has no public hook for that answer (aio-libs/aiohttp
#3287), so the connection handler is subclassed, and the runner builds its server with it. Everything else about
the server is aiohttp's own: the same arguments, limits and shutdown as ``web.run_app``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from logistics.api.appkeys import REQUEST_ID
from logistics.api.errors import Problem
from logistics.domain import ids

log = logging.getLogger("logistics.api")

# What the client is told about a request aiohttp could not read: never the bytes it quoted.
_REFUSALS: dict[int, Problem] = {
    400: Problem(400, "bad-request", "Bad request", "The request line or a header is malformed or too long."),
    504: Problem(504, "timeout", "Gateway timeout", "The request took too long; retry later."),
}
_INTERNAL = Problem(500, "internal", "Internal error", "Retry later; the request id helps the operators.")


def refusal_response(request: web.BaseRequest, status: int) -> web.Response:
    """The problem+json answer to a request that failed outside the application (aiohttp's own error path)."""
    rid = request.setdefault(REQUEST_ID, ids.request_id())
    problem = _REFUSALS.get(status) or _INTERNAL
    response = problem.response(request)  # type: ignore[arg-type]  # reads only path and request_id
    response.headers["X-Request-ID"] = rid
    response.force_close()  # as aiohttp does: after a parse error the connection's framing cannot be trusted
    return response


class ProblemRequestHandler(web.RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            # The client's fault, not ours: one line with the kind of error (never its text, which quotes the
            # request) instead of aiohttp's traceback at ERROR.
            request[REQUEST_ID] = rid = ids.request_id()  # the answer carries it: a report can be matched
            log.warning(
                "http_unparseable_request", extra={"request_id": rid, "error": type(exc).__name__, "status": status}
            )
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent")
        else:
            # Logs through aiohttp.server (credentials redacted there), and raises when a response was under way.
            super().handle_error(request, status, exc, message)
        return refusal_response(request, status)


class ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer aiohttp's own errors as problem+json."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **made._kwargs,
        )
