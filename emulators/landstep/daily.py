"""Day boundaries of the land step: when a day ends, and the daily phenology phase of the
reference model with the class constants (used by the reference backend and, with
``phenology="reference"``, by the compiled emulators).

Daily quantities accumulate over the (UTC) day in the state (``acc_*``: sums × seconds) and are
consumed, then reset to zero, by the step that ends the day; at steps of a day or longer that is
every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators.protocol import StepClock
from emulators.reference import phenology

Tensor = torch.Tensor
#: the class constants ``phenology.daily_leaf_carbon`` takes (keyword arguments)
PHENOLOGY_CONSTANTS = ("sla", "lai_max", "longevity", "alloc", "deciduous", "t_onset", "vegetated")


def day_ends(clock: StepClock) -> bool:
    """True when the step that starts at ``clock`` ends a UTC day, and for every step of a day
    or longer."""
    dt = clock.dt
    return (clock.seconds_of_day + dt) % C.SECONDS_PER_DAY == 0 or dt >= C.SECONDS_PER_DAY


def reset(accumulators: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The daily accumulators at zero, for the day that starts after this step."""
    return {k: torch.zeros_like(v) for k, v in accumulators.items()}


@dataclass(frozen=True)
class Day:
    """What the day (or the period of several days) that ends with a step did, for phenology."""

    gpp: Tensor  # GPP over the period [kg C m-2 of vegetated area]
    t_mean: Tensor  # mean near-surface air temperature [K]
    fw_mean: Tensor  # mean soil water stress factor [1]
    days: float  # length of the period [d]
    in_spring: Tensor  # 1 in the spring half of the phenological year (``phenology.spring``)


def leaf_carbon(cleaf: Tensor, day: Day, const: Mapping[str, Tensor]) -> Tensor:
    """Phenology phase: leaf carbon [kg C m-2] after ``day`` from leaf carbon ``cleaf``
    (``reference.phenology.daily_leaf_carbon`` with the class constants ``const``)."""
    classes = {k: const[k] for k in PHENOLOGY_CONSTANTS}
    return phenology.daily_leaf_carbon(
        cleaf, day.gpp, day.t_mean, day.fw_mean, day.days, in_spring=day.in_spring, **classes
    )
