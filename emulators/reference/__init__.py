"""The reference land model (the teacher): see ``model`` for the equations.

``ReferenceBackend``, ``ReferenceConfig`` and ``Surface`` (``model``) and ``aggregate``
(``emulators.landstep``) are imported on first use: the shared land step
(``emulators.landstep``) builds on this package's process modules (soil, photosynthesis,
phenology), and the model builds on the land step.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emulators.reference.soil import SoilConfig

if TYPE_CHECKING:
    from emulators.landstep import aggregate
    from emulators.reference.model import ReferenceBackend, ReferenceConfig, Surface

__all__ = ["ReferenceBackend", "ReferenceConfig", "SoilConfig", "Surface", "aggregate"]

_LAZY = {
    "ReferenceBackend": "emulators.reference.model",
    "ReferenceConfig": "emulators.reference.model",
    "Surface": "emulators.reference.model",
    "aggregate": "emulators.landstep",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
