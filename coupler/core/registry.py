"""The land-backend registry: backend name -> factory.

Backends are imported lazily (inside the factory), so importing the coupler never imports a
model, and a backend whose code is missing or broken is reported as unavailable rather than
breaking the service. A backend instance is stateless across sessions (the session owns the
``LandState``), so the session manager builds one instance per name and shares it.

Registered: ``reference`` (``emulators.reference.ReferenceBackend``), the compiled emulators
``torchscript``, ``aoti`` and ``onnx`` (``emulators.compiled.emulator``), ``triton`` (the same
emulators served by a Triton Inference Server, ``emulators.serving.triton_backend``) and
``hybrid`` (the reference with its canopy phase from the ``canopy-mlp`` network,
``emulators.compiled.hybrid``).

:class:`BackendOptions` are the server-wide choices a factory receives (``landcoupler serve
--device``, ``--triton-url``): the device of the compiled emulators and the Triton server's URL
(default: the environment variable ``LANDCOUPLER_TRITON_URL``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coupler.errors import FailedPrecondition, InvalidArgument
from emulators.protocol import LandBackend

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class BackendOptions:
    """Server-wide backend choices. ``device``: where the compiled emulators (``torchscript``,
    ``aoti``, ``onnx``) run, "cpu", "cuda" or "cuda:N"; None = each backend's default (CUDA when
    present for ``torchscript``, else CPU). ``triton_url``: the Triton server's gRPC address
    (HOST:PORT) for the ``triton`` backend; None = ``$LANDCOUPLER_TRITON_URL``."""

    device: str | None = None
    triton_url: str | None = None

    def __post_init__(self) -> None:
        if self.device is not None and self.device.split(":", 1)[0] not in DEVICES:
            raise ValueError(f"device: must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.triton_url is not None and ":" not in self.triton_url:
            raise ValueError(f"triton_url: must be HOST:PORT, got {self.triton_url!r}")


#: what :func:`register` takes: builds a backend, no arguments
BackendFactory = Callable[[], LandBackend]
#: what the registry holds: builds a backend with the server's options
OptionsFactory = Callable[[BackendOptions], LandBackend]


def _import_factory(module: str, attribute: str) -> OptionsFactory:
    """A backend class built without options (it ignores the device: the reference model)."""

    def factory(options: BackendOptions) -> LandBackend:
        cls = getattr(importlib.import_module(module), attribute)
        backend: LandBackend = cls()
        return backend

    factory.__qualname__ = f"{module}.{attribute}"
    return factory


def _emulator_factory(
    attribute: str, module: str = "emulators.compiled.emulator"
) -> OptionsFactory:
    """A compiled-emulator backend class (``module.attribute``) on the options' device."""

    def factory(options: BackendOptions) -> LandBackend:
        config = importlib.import_module("emulators.compiled.emulator").EmulatorConfig(
            device=options.device
        )
        backend: LandBackend = getattr(importlib.import_module(module), attribute)(config)
        return backend

    factory.__qualname__ = f"{module}.{attribute}"
    return factory


def _triton_factory(options: BackendOptions) -> LandBackend:
    module = importlib.import_module("emulators.serving.triton_backend")
    backend: LandBackend = module.TritonBackend(url=options.triton_url)
    return backend


_FACTORIES: dict[str, OptionsFactory] = {
    "reference": _import_factory("emulators.reference", "ReferenceBackend"),
    "torchscript": _emulator_factory("TorchScriptBackend"),
    "aoti": _emulator_factory("AOTIBackend"),
    "onnx": _emulator_factory("OnnxBackend"),
    "fused": _emulator_factory("FusedBackend"),
    "triton": _triton_factory,
    "hybrid": _import_factory("emulators.compiled.hybrid", "HybridBackend"),
    "transformer": _emulator_factory("TransformerBackend", "emulators.compiled.transformer"),
}


def names() -> tuple[str, ...]:
    """Registered backend names, sorted."""
    return tuple(sorted(_FACTORIES))


def register(name: str, factory: BackendFactory) -> None:
    """Register (or replace) the factory of backend ``name`` (it gets no options)."""
    if not name or not name.isidentifier():
        raise ValueError(f"backend name {name!r} must be a non-empty identifier")

    def with_options(options: BackendOptions) -> LandBackend:
        return factory()

    _FACTORIES[name] = with_options


def create(name: str, options: BackendOptions | None = None) -> LandBackend:
    """A new instance of backend ``name`` built with ``options`` (default: none).

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
        backend = factory(options or BackendOptions())
    except (ImportError, AttributeError, OSError, RuntimeError, ConnectionError) as exc:
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
