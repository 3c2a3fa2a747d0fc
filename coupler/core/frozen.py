"""Frozen land: the session option ``freeze_vegetation_year`` wraps the session's backend so that
its vegetation is held at the start of a run.

``FrozenVegetation(inner, year)`` wraps any backend whose state has leaf carbon ``cleaf`` (the
reference model and the emulators): before 1 January of ``year`` it is the inner backend
unchanged (spin-up); during ``year`` it records the end-of-day leaf carbon of every day of the
year; afterwards it steps the inner backend and replaces the new leaf carbon with the recorded
value of the same day of the year. Vegetation (LAI, and all that follows from it: albedo,
roughness, transpiration capacity) thus repeats the seasonal cycle of the first run year, while
soil water, temperatures and the fluxes stay fully interactive. Land cover is static in every
run (one land-cover map per session), so it is "held" in both modes. The recorded cycle lives
in the land state (``frozen_cleaf``, NaN until recorded), so checkpoints carry it and the
backend stays stateless across sessions, as the ``LandBackend`` contract asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from emulators.constants import DAYS_PER_LEAP_YEAR as DAYS
from emulators.landstep import day_ends, follow_carbon
from emulators.protocol import LandBackend, LandState, LandStatic, StepClock

VEGETATION = "cleaf"
RECORD = "frozen_cleaf"


def frozen_name(inner: str, year: int) -> str:
    """The registry name of ``inner`` with vegetation held from 1 January ``year``."""
    return f"{inner}_frozen_{int(year)}"


class FrozenVegetation:
    """See the module docstring."""

    def __init__(self, inner: LandBackend, year: int) -> None:
        self.inner = inner
        self.year = int(year)
        self.name = frozen_name(inner.name, year)
        self.version = f"{getattr(inner, 'version', '')}+frozen-vegetation-from-{year}"
        manifest = getattr(inner, "manifest_hash", None)
        if manifest:
            self.manifest_hash = manifest

    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        state = self.inner.initial_state(static, clock)
        cleaf = state.tensors.get(VEGETATION)
        if cleaf is None:
            raise ValueError(
                f"backend: {self.inner.name!r} has no {VEGETATION!r} state; vegetation cannot be "
                "frozen"
            )
        record = torch.full((*cleaf.shape, DAYS), float("nan"), dtype=cleaf.dtype)
        return LandState({**state.tensors, RECORD: record})

    def change_cover(
        self, state: LandState, static: LandStatic, cover: torch.Tensor
    ) -> tuple[LandState, LandStatic, Any]:
        """The inner backend's cover change (the recorded cycle is tile state like the rest)."""
        return self.inner.change_cover(state, static, cover)  # type: ignore[attr-defined]

    def step(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, torch.Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, torch.Tensor]]:
        record = state.tensors[RECORD]
        inner_state = LandState({k: v for k, v in state.tensors.items() if k != RECORD})
        new, outputs = self.inner.step(inner_state, static, forcing, clock)
        tensors = dict(new.tensors)
        day = clock.day_of_year - 1
        end_of_day = day_ends(clock)
        year = clock.year
        if year == self.year:
            if end_of_day:
                record = record.clone()
                record[..., day] = tensors[VEGETATION]
        elif year > self.year and end_of_day:
            held = record[..., day]
            if torch.isnan(held).any():  # 29 Feb (or a day the record year lacked): the day before
                held = torch.where(torch.isnan(held), record[..., max(day - 1, 0)], held)
            if not torch.isnan(held).any():
                tensors[VEGETATION] = held.clone()
                tensors = follow_carbon(tensors)  # leaf nitrogen, where kept, with the carbon
        tensors[RECORD] = record
        return LandState(tensors), outputs
