"""The reference land model (the teacher): see ``model`` for the equations."""

from emulators.reference.model import (
    ReferenceBackend,
    ReferenceConfig,
    Surface,
    aggregate,
)
from emulators.reference.soil import SoilConfig

__all__ = ["ReferenceBackend", "ReferenceConfig", "SoilConfig", "Surface", "aggregate"]
