"""One webhook delivery attempt over HTTP.

The sender makes exactly one attempt and reports what happened; retrying, ordering per shipment and the
durable record of what is still owed belong to the app's outbox. Each attempt is signed afresh with the
current time, because receivers reject timestamps older than a few minutes and a retry can come days later.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from webhooks import signing
from webhooks.schedule import Outcome, classify
from webhooks.ssrf import AddressPolicy, BlockedAddress, check_url, make_connector

__all__ = ["DEFAULT_USER_AGENT", "AttemptResult", "Sender"]

DEFAULT_USER_AGENT = "gov-logistics-webhooks/0.1"
_BLOCKED_MARKER = "blocked by webhook address policy"
_URL_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """What one attempt did, in the shape the app stores in its delivery log."""

    status: int | None
    latency_ms: float
    error: str | None
    response_body: bytes
    outcome: Outcome
    retry_after: float | None
    blocked: bool
    timestamp: int
    response_truncated: bool = False

    @property
    def response_text(self) -> str:
        return self.response_body.decode("utf-8", "replace")


def _is_blocked(exc: BaseException) -> bool:
    """Whether the SSRF guard caused this failure, wherever aiohttp and aiohappyeyeballs wrapped it.

    When several resolved addresses all fail, aiohappyeyeballs merges their errors into one plain OSError
    carrying only the messages, hence the text check as the last resort.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, BlockedAddress):
            return True
        # Only the merged plain OSError is read as text: other errors (a malformed response line, say) can
        # carry receiver-controlled text that must not pass for a policy refusal.
        if type(cur) is OSError and _BLOCKED_MARKER in str(cur):
            return True
        stack.extend((cur.__cause__, cur.__context__, getattr(cur, "os_error", None)))
    return False


class Sender:
    """Posts signed deliveries through one pooled ``aiohttp.ClientSession`` guarded by ``policy``.

    Redirects are never followed and proxies from the environment are never used: both would send our
    request to an address the guard did not approve. Cookies are not kept, so one receiver cannot set
    state that another receiver would see.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        connect_timeout: float = 5,
        total_timeout: float = 15,
        max_response_bytes: int = 4096,
        user_agent: str = DEFAULT_USER_AGENT,
        limit: int = 100,
        limit_per_host: int = 0,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self.policy = policy
        self.connect_timeout = float(connect_timeout)
        self.total_timeout = float(total_timeout)
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._resolver = resolver
        # Halls often run approval systems behind a government CA; the app can pass a context trusting it.
        # Certificate verification itself is never switched off here.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # Parsing and pre-checking the same few endpoint URLs on every attempt would cost throughput.
        # Only approvals are cached: the policy is immutable, and the connect-time check runs regardless.
        self._checked_urls: dict[str | URL, URL] = {}
        self._closed = False
        self._request_timeout = aiohttp.ClientTimeout(
            # The overall bound is enforced around the whole attempt in send(); aiohttp only watches the
            # TCP/TLS connect so that a dead host is reported as a connect failure.
            total=None,
            connect=None,
            sock_connect=self.connect_timeout,
            sock_read=None,
        )

    @property
    def limit(self) -> int:
        """How many connections may be open at once (0: no limit); attempts beyond it wait for one."""
        return self._limit

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so that a Sender can be built outside the event loop (app wiring, settings).
        if self._closed:
            raise RuntimeError("Sender is closed")
        if self._session is None:
            connector = make_connector(
                self.policy,
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                resolver=self._resolver,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                # Response bodies are only kept as a short diagnostic; never inflate what a receiver sends.
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                headers={"User-Agent": self.user_agent},
            )
        return self._session

    async def send(
        self,
        url: str | URL,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str],
        *,
        timestamp: int | None = None,
    ) -> AttemptResult:
        """Make one delivery attempt; network trouble comes back in the result, never as an exception.

        Raises ``ValueError`` only for caller bugs found before any I/O (bad secret or id).
        """
        ts = int(self._clock()) if timestamp is None else int(timestamp)
        hdrs = signing.headers(msg_id, ts, body, secrets)
        session = self._get_session()
        started = time.perf_counter()

        def result(
            status: int | None,
            error: str | None,
            *,
            response_headers: Mapping[str, str] | None = None,
            response_body: bytes = b"",
            truncated: bool = False,
            blocked: bool = False,
        ) -> AttemptResult:
            outcome = classify(
                status,
                response_headers,
                error,
                now=datetime.fromtimestamp(self._clock(), UTC),
            )
            return AttemptResult(
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                error=error,
                response_body=response_body,
                outcome=outcome,
                retry_after=None if outcome.retry_after is None else outcome.retry_after.total_seconds(),
                blocked=blocked,
                timestamp=ts,
                response_truncated=truncated,
            )

        target = self._checked_urls.get(url)
        if target is None:
            try:
                target = check_url(url, self.policy)
            except BlockedAddress as exc:
                return result(None, str(exc), blocked=True)
            except ValueError as exc:
                return result(None, f"invalid webhook URL: {exc}")
            if len(self._checked_urls) >= _URL_CACHE_SIZE:
                self._checked_urls.clear()
            self._checked_urls[url] = target

        status: int | None = None
        response_headers: Mapping[str, str] | None = None
        buf = bytearray()
        truncated = False
        deadline = asyncio.timeout(self.total_timeout)
        try:
            async with deadline:
                async with session.post(
                    target,
                    data=body,
                    headers=hdrs,
                    allow_redirects=False,
                    timeout=self._request_timeout,
                ) as resp:
                    status = resp.status
                    response_headers = resp.headers
                    cap = self.max_response_bytes
                    while len(buf) < cap:
                        chunk = await resp.content.read(cap - len(buf))
                        if not chunk:
                            break
                        buf += chunk
                    # Leaving a longer body unread makes aiohttp drop this connection instead of pooling it.
                    truncated = len(buf) >= cap and not resp.content.at_eof()
        except TimeoutError as exc:
            if deadline.expired():
                error = f"timed out after {self.total_timeout:g}s"
            elif isinstance(exc, aiohttp.ConnectionTimeoutError):
                error = f"connect timed out after {self.connect_timeout:g}s"
            else:
                error = f"{type(exc).__name__}: {exc}"
            blocked = False
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            blocked = _is_blocked(exc)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            return result(
                status, None, response_headers=response_headers, response_body=bytes(buf), truncated=truncated
            )
        # A failure after the status line arrived (a stalled or broken body) still counts by its status: the
        # receiver has already decided, e.g. a 200 means it accepted the event.
        return result(status, error, response_headers=response_headers, response_body=bytes(buf), blocked=blocked)

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
