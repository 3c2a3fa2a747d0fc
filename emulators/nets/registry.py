"""Architectures registered by name (ACE ``ModuleSelector`` style).

A config dataclass validates itself in ``__post_init__`` and knows how to build its module::

    @register("flux_lstm")
    @dataclass(frozen=True)
    class FluxLSTMConfig:
        hidden: int = 128
        def build(self) -> nn.Module: ...

    module = build("flux_lstm", {"hidden": 64})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from torch import nn


class ModuleConfig(Protocol):
    def build(self) -> nn.Module: ...


_REGISTRY: dict[str, type] = {}
C = TypeVar("C", bound=type)


def register(name: str) -> Callable[[C], C]:
    """Class decorator: register a config dataclass under ``name``."""

    def wrap(cls: C) -> C:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass to be registered")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"architecture name {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return wrap


def names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def config(name: str, options: Mapping[str, Any] | None = None) -> ModuleConfig:
    """The validated config of architecture ``name`` with ``options`` overriding defaults."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; registered: {', '.join(names())}"
        ) from None
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(options or {}) - fields
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}; known: {sorted(fields)}")
    cfg: ModuleConfig = cls(**(options or {}))
    return cfg


def build(name: str, options: Mapping[str, Any] | None = None) -> nn.Module:
    return config(name, options).build()
