"""Task handlers by kind. Each is safe to run twice: it re-reads the shipment and acts only if still needed."""

from __future__ import annotations

from logistics.jobs.runner import Runtime


def setup(rt: Runtime) -> None:
    """Create the services the handlers use (carrier client, label store, webhook sender)."""


async def close(rt: Runtime) -> None:
    for service in rt.services.values():
        closer = getattr(service, "close", None)
        if closer is not None:
            await closer()
