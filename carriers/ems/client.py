"""The EMS carrier: a thin aiohttp transport around the pure messages in ``messages.py``.

One attempt per call. Retrying is the caller's decision (the app's jobs back off with tenacity and keep the
work in the database), so a failure here is only ever classified: RetryableCarrierError or FinalCarrierError.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from carriers.base import OrderRequest, OrderResult, PushResult, RetryableCarrierError, TrackingEvent
from carriers.ems import messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmsConfig:
    base_url: str  # scheme and host, e.g. https://api.ems.com.cn; the path follows from ``sandbox``
    sender_no: str
    authorization: str = field(repr=False)
    sign_key: str = field(repr=False)
    sandbox: bool
    ecommerce_user_id: str
    biz_product_no: str = "1"
    connect_timeout: float = 3.0
    total_timeout: float = 10.0

    def __post_init__(self) -> None:
        # A bad key would otherwise surface only as an error on the first order, long after start-up.
        try:
            key = base64.b64decode(self.sign_key, validate=True)
        except binascii.Error as exc:
            raise ValueError("EMS sign_key is not base64") from exc
        if len(key) != 16:
            raise ValueError("EMS sign_key must decode to 16 bytes")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("EMS base_url must start with http:// or https://")
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("EMS timeouts must be positive")

    @property
    def endpoint(self) -> str:
        path = messages.SANDBOX_PATH if self.sandbox else messages.PROD_PATH
        return self.base_url.rstrip("/") + path


class EmsCarrier:
    """The Carrier protocol for EMS. Pass ``session`` to share a pool; it is then not closed here."""

    name = "ems"

    def __init__(
        self,
        config: EmsConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._session = session
        self._owns_session = session is None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._timeout = aiohttp.ClientTimeout(
            total=config.total_timeout, connect=config.connect_timeout, sock_connect=config.connect_timeout
        )

    def _client_session(self) -> aiohttp.ClientSession:
        # Created on first use so that constructing the carrier needs no running event loop.
        if self._session is None or (self._owns_session and self._session.closed):
            # trust_env=False: a stray HTTP(S)_PROXY must not route encrypted orders through a third party.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
            self._owns_session = True
        return self._session

    async def _call(self, api_code: str, body: object) -> dict[str, Any]:
        form = messages.build_form(
            api_code,
            body,
            sender_no=self.config.sender_no,
            authorization=self.config.authorization,
            sign_key=self.config.sign_key,
            now=self._clock(),
        )
        session = self._client_session()
        started = time.monotonic()
        try:
            async with session.post(
                self.config.endpoint,
                data=messages.encode_form(form),
                headers={"Content-Type": messages.FORM_CONTENT_TYPE, "Accept": "application/json"},
                timeout=self._timeout,
            ) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError as exc:
            logger.warning("ems %s: no answer within %.1fs", api_code, self.config.total_timeout)
            raise RetryableCarrierError(
                "TIMEOUT", f"{api_code}: no answer within {self.config.total_timeout:g}s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Only the exception type: its text may echo the request.
            logger.warning("ems %s: network error %s", api_code, type(exc).__name__)
            raise RetryableCarrierError("NET", f"{api_code}: {type(exc).__name__}") from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info("ems %s: HTTP %s in %.0f ms", api_code, status, elapsed_ms)
        return messages.parse_response(api_code, status, raw.decode("utf-8", errors="replace"))

    async def create_order(self, request: OrderRequest) -> OrderResult:
        body = messages.build_order_body(
            request,
            ecommerce_user_id=self.config.ecommerce_user_id,
            biz_product_no=self.config.biz_product_no,
        )
        ret_body = await self._call(messages.API_CREATE_ORDER, body)
        return messages.parse_order_result(ret_body, order_no=request.order_no)

    async def cancel_order(self, order_no: str, waybill_no: str | None, reason: str) -> None:
        await self._call(messages.API_CANCEL_ORDER, messages.build_cancel_body(order_no, waybill_no, reason))

    async def track(self, waybill_no: str) -> list[TrackingEvent]:
        ret_body = await self._call(messages.API_TRACK, messages.build_track_body(waybill_no))
        return messages.parse_track_items(ret_body, waybill_no=waybill_no)

    def parse_push(self, body: bytes, content_type: str) -> PushResult:
        return messages.parse_push(
            body, content_type, sign_key=self.config.sign_key, sender_no=self.config.sender_no
        )

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
