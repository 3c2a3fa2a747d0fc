"""Settings of the land twin experiment (``twin.py``), apart from it so that the experiment and
its statistics (``twin_metrics.py``) both import them one way."""

from __future__ import annotations

from dataclasses import dataclass, field

from coupler.assimilation.settings import AssimilationConfig, ParameterPerturbation, ParameterPrior
from coupler.errors import InvalidArgument
from emulators.constants import SECONDS_PER_DAY

#: the land backends the twin can run (``twin.make_backend``)
BACKENDS = ("reference", "torchscript", "aoti", "onnx")
#: the parameters the ensemble estimates, with their prior ranges
PRIORS = (
    ParameterPrior("vmax0", 1.5e-5, 1.0e-4, log=True),
    ParameterPrior("psicr", -400.0, -60.0),
)
#: the observation types the twin can assimilate: LAI composites, tower LE and H, LST
OBSERVATION_TYPES = ("lai", "flux", "lst")


def _default_assimilation() -> AssimilationConfig:
    return AssimilationConfig(parameters=ParameterPerturbation(PRIORS))


@dataclass(frozen=True)
class TwinConfig:
    """Settings of the twin experiment (times in UTC, timestep in s)."""

    members: int = 20
    cells: int = 16
    days: int = 365
    spinup_days: int = 30
    start: str = "2001-01-01"
    timestep: int = 3600
    towers: int = 4
    overpass_hour: float = 10.5  # local solar time
    lai_error: tuple[float, float] = (0.1, 0.1)  # sd = a + b * LAI
    flux_error: tuple[float, float] = (5.0, 0.1)  # sd = a + b * |flux|, W m-2
    lst_error: float = 1.0  # K
    seed: int = 0
    backend: str = "reference"  # the ensembles' land backend
    truth_backend: str = "reference"  # the truth's land backend
    assimilation: AssimilationConfig = field(default_factory=_default_assimilation)
    #: the parameters of ``PRIORS`` the ensemble estimates; the others are held at the truth's
    #: hidden values in every member (identifiability runs, docs/assimilation.md)
    estimate: tuple[str, ...] = tuple(p.name for p in PRIORS)
    #: the observation types assimilated (``OBSERVATION_TYPES``); all are still simulated
    observe: tuple[str, ...] = OBSERVATION_TYPES

    @property
    def priors(self) -> tuple[ParameterPrior, ...]:
        """The priors of the estimated parameters, in ``PRIORS`` order."""
        return tuple(p for p in PRIORS if p.name in self.estimate)

    def __post_init__(self) -> None:
        checks = {
            "members": self.members >= 2,
            "cells": self.cells >= 1,
            "days": self.days >= 9,
            "spinup_days": 0 <= self.spinup_days < self.days,
            "timestep": self.timestep > 0 and SECONDS_PER_DAY % self.timestep == 0,
            "towers": 0 <= self.towers <= self.cells,
            "lst_error": self.lst_error > 0,
        }
        for name in ("backend", "truth_backend"):
            if getattr(self, name) not in BACKENDS:
                raise InvalidArgument(
                    f"{name}: {getattr(self, name)!r} is not one of {', '.join(BACKENDS)}",
                    field=name,
                    rule="known_backend",
                )
        for name, known, empty_ok in (
            ("estimate", tuple(p.name for p in PRIORS), True),
            ("observe", OBSERVATION_TYPES, False),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, str)
                or not isinstance(value, tuple)
                or any(v not in known for v in value)
                or len(set(value)) != len(value)
                or not (value or empty_ok)
            ):
                raise InvalidArgument(
                    f"{name}: {value!r} must be a tuple of distinct names from "
                    f"{', '.join(known)}" + ("" if empty_ok else " (at least one)"),
                    field=name,
                    rule="known",
                )
        for name, ok in checks.items():
            if not ok:
                raise InvalidArgument(
                    f"{name}: invalid value {getattr(self, name)!r}", field=name, rule="range"
                )


__all__ = ["BACKENDS", "OBSERVATION_TYPES", "PRIORS", "TwinConfig"]
