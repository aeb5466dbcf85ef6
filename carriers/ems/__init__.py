"""China Post EMS (国内协议客户 API): envelope crypto, messages, code tables and the carrier client.

Importing this package registers the carrier as ``"ems"``; ``registry.create("ems", **options)`` takes the
fields of EmsConfig as keywords, plus an optional ``session`` (a shared aiohttp.ClientSession).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from carriers import registry
from carriers.ems.client import EmsCarrier, EmsConfig

__all__ = ["EmsCarrier", "EmsConfig"]


def _create(*, session: aiohttp.ClientSession | None = None, **options: Any) -> EmsCarrier:
    return EmsCarrier(EmsConfig(**options), session=session)


registry.register("ems", _create)
