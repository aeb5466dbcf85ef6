"""Carriers by name, so the app picks one from configuration and a new carrier is one registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carriers.base import Carrier

Factory = Callable[..., Carrier]
_factories: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _factories[name] = factory


def create(name: str, **options: Any) -> Carrier:
    try:
        factory = _factories[name]
    except KeyError:
        raise KeyError(f"unknown carrier {name!r}; known: {', '.join(sorted(_factories))}") from None
    return factory(**options)


def names() -> list[str]:
    return sorted(_factories)
