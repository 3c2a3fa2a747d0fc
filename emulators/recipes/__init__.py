"""The emulator recipes: one registered :class:`Recipe` per shipped emulator (``flux-lstm``,
``flux-lstm-daily``, ``flux-transformer``, ``lai``, ``lai-daily``, ``lulc-unet``,
``canopy-mlp``), each saying how the emulator is trained, exported and evaluated (``base``; the
registry: ``registry``). ``landcoupler emulators train|export|evaluate NAME`` runs them.
Importing this package imports no torch: the recipes' parts import the training code when they
run."""

from emulators.recipes import canopy, flux, lai, lulc  # noqa: F401  (register the shipped recipes)
from emulators.recipes.base import ARTIFACTS, WORK, Drift, Recipe, skill_drift, training_record
from emulators.recipes.registry import get, names, register

__all__ = [
    "ARTIFACTS",
    "WORK",
    "Drift",
    "Recipe",
    "get",
    "names",
    "register",
    "skill_drift",
    "training_record",
]
