"""Structured logs: one JSON object per line, with the request id that follows a shipment into the workers.

Log events carry ids, statuses and counts — never names, phones or addresses (mask with labels.privacy
when a person must be referred to).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # an exception already rendered (and redacted) by RedactCredentials
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


# Credentials in the shapes this service issues (API keys lgk_, staff tokens stk_, webhook secrets whsec_), the
# applicant link /a/{token} (the link is the credential), and any Authorization header or Bearer value. A match
# runs to the next space or quote, so that a credential broken by an escaped control byte is hidden whole.
_CREDENTIAL = re.compile(
    r"(?i)(?P<prefix>\b(?:lgk|stk|whsec)_)[^\s'\"]*"
    r"|(?P<link>/a/)[^\s/?#'\"]+"
    r"|(?P<header>authorization\s*[:=]\s*)[^\r\n'\"]*"
    r"|(?P<bearer>\bbearer\s+)[^\s'\"]+"
)


def _hidden(match: re.Match[str]) -> str:
    if match["link"]:
        return "/a/{token}"
    return (match["prefix"] or match["header"] or match["bearer"]) + "[redacted]"


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced by a placeholder."""
    return _CREDENTIAL.sub(_hidden, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def _exception_summary(exc: BaseException) -> str:
    # aiohttp's parse errors (BadHttpMessage, LineTooLong, InvalidURLError…) quote the raw request line or header
    # they choked on, Authorization included: only the kind of error is kept, never the bytes the client sent.
    from aiohttp.http_exceptions import HttpProcessingError

    if isinstance(exc, HttpProcessingError):
        reason = str(exc.message).strip().split(":", 1)[0].splitlines()[0][:100]
        return f"{type(exc).__name__}: {redact(reason)}"
    return redact("".join(logging.Formatter().formatException((type(exc), exc, exc.__traceback__))))


class RedactCredentials(logging.Filter):
    """Rewrites the records of a library's logger that may quote what a client sent (aiohttp's server, access
    and web loggers print raw request lines, header lines and paths): message, extra fields and exception text
    leave with every credential hidden. A logger's filter changes the record itself, before any handler sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and not key.startswith("_"):
                setattr(record, key, _redact_value(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = _exception_summary(record.exc_info[1])
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# aiohttp's own loggers (aiohttp.log): each gets the filter, as a record is only filtered by the logger it is
# created on, not by the ancestors it propagates to.
LIBRARY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)


def protect_library_loggers() -> None:
    """Install RedactCredentials on aiohttp's loggers, once per process whoever configures logging."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())


def route_template(request: Any) -> str:
    """The matched route's template (``/a/{token}``, never the path with its token): what a log line may name."""
    route = getattr(getattr(request, "match_info", None), "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def setup(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # We log requests and tasks ourselves, with ids; these libraries' per-request/per-job lines are noise.
    # aiosqlite logs every statement with its parameters at DEBUG: personal data and 取件验证码.
    for name in ("aiohttp.access", "arq.worker", "arq.jobs", "alembic", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    protect_library_loggers()


ACCESS = logging.getLogger("logistics.access")


def access(request_id: str, method: str, route: str, status: int, seconds: float) -> None:
    """The access line of one API request, ``http_request``, on the ``logistics.access`` logger.

    ``route`` is the matched route's template (``/v1/shipments/{id}``, ``/a/{token}``), never the path asked
    for: paths and queries hold tokens, applicant links and personal data.

    One record, made here and handed to the logger: every request of the create endpoint pays for this line,
    and ``Logger.info`` would also walk the stack for the caller's file and line, which the line never shows.
    """
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    record = logging.LogRecord(ACCESS.name, logging.INFO, __file__, 0, "http_request", None, None)
    record.__dict__.update(
        request_id=request_id, method=method, route=route, status=status, ms=round(seconds * 1000, 2)
    )
    ACCESS.handle(record)
