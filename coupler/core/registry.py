"""The land-backend registry: backend name -> factory.

Backends are imported lazily (inside the factory), so importing the coupler never imports a
model, and a backend whose code is missing or broken is reported as unavailable rather than
breaking the service. A backend instance is stateless across sessions (the session owns the
``LandState``), so the session manager builds one instance per name and shares it.

Today: ``reference`` (``emulators.reference.ReferenceBackend``). Later issues register
``torchscript``, ``aoti`` and ``triton`` here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from coupler.errors import FailedPrecondition, InvalidArgument
from emulators.protocol import LandBackend

BackendFactory = Callable[[], LandBackend]


def _import_factory(module: str, attribute: str) -> BackendFactory:
    def factory() -> LandBackend:
        cls = getattr(importlib.import_module(module), attribute)
        backend: LandBackend = cls()
        return backend

    factory.__qualname__ = f"{module}.{attribute}"
    return factory


_FACTORIES: dict[str, BackendFactory] = {
    "reference": _import_factory("emulators.reference", "ReferenceBackend"),
    "torchscript": _import_factory("emulators.compiled.emulator", "TorchScriptBackend"),
    "aoti": _import_factory("emulators.compiled.emulator", "AOTIBackend"),
}


def names() -> tuple[str, ...]:
    """Registered backend names, sorted."""
    return tuple(sorted(_FACTORIES))


def register(name: str, factory: BackendFactory) -> None:
    """Register (or replace) the factory of backend ``name``."""
    if not name or not name.isidentifier():
        raise ValueError(f"backend name {name!r} must be a non-empty identifier")
    _FACTORIES[name] = factory


def create(name: str) -> LandBackend:
    """A new instance of backend ``name``.

    Raises InvalidArgument(field="backend", rule="known_backend") for an unknown name and
    FailedPrecondition(field="backend", rule="available") when it cannot be built here.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise InvalidArgument(
            f"backend: unknown backend {name!r}; known: {', '.join(names())}",
            field="backend",
            rule="known_backend",
        )
    try:
        backend = factory()
    except (ImportError, AttributeError, OSError, RuntimeError) as exc:
        raise FailedPrecondition(
            f"backend: {name!r} is not available on this server: {exc}",
            field="backend",
            rule="available",
        ) from exc
    if not isinstance(backend, LandBackend):
        raise FailedPrecondition(
            f"backend: {name!r} built a {type(backend).__name__}, which does not implement "
            "the LandBackend protocol",
            field="backend",
            rule="available",
        )
    return backend


def available() -> dict[str, str]:
    """Name -> "available" or the reason it is not (for Describe)."""
    status: dict[str, str] = {}
    for name in names():
        try:
            create(name)
            status[name] = "available"
        except FailedPrecondition as exc:
            status[name] = str(exc)
    return status


def identity(backend: LandBackend) -> dict[str, Any]:
    """What identifies a backend's numerics, stored in checkpoints and records: its name, class
    and version (``backend.version`` if it has one) and manifest hashes if it exposes them."""
    cls = type(backend)
    ident: dict[str, Any] = {
        "name": backend.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "version": str(getattr(backend, "version", "")),
    }
    manifest = getattr(backend, "manifest_hash", None)
    if manifest:
        ident["manifest_hash"] = str(manifest)
    return ident
