"""Time loops over the column model: ``integrate`` (any land surface, any forcing), the standalone
spin-up and the q-flux control phase. The coupled experiment (``experiment``) composes these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from coupler.atmosphere.column import ColumnModel, ColumnState, Forcing, Prepared, StepBudget
from coupler.atmosphere.ocean import QFlux
from coupler.atmosphere.scenario import as_seconds
from coupler.atmosphere.surface import LandSurface

#: called after every step with (prepared inputs, new state, budget, cell fields, land fields)
StepHook = Callable[
    [Prepared, ColumnState, StepBudget, dict[str, np.ndarray], dict[str, np.ndarray]], None
]
ForcingFn = Callable[[np.datetime64], Forcing]


@dataclass
class OceanMode:
    """How the ocean runs: SST held at climatology (``qflux`` None; ``diagnose`` collects the
    q-flux) or prognostic with the ``qflux`` table."""

    qflux: np.ndarray | None = None
    diagnose: QFlux | None = None

    @property
    def hold_sst(self) -> bool:
        return self.qflux is None


@dataclass
class LoopResult:
    state: ColumnState
    budgets: list[StepBudget] = field(default_factory=list)


def steps_between(start: np.datetime64, end: np.datetime64, dt: float) -> int:
    """Whole steps of ``dt`` s from ``start`` to ``end`` (end exclusive)."""
    span = int((as_seconds(end) - as_seconds(start)).astype(np.int64))
    if span < 0 or span % int(dt):
        raise ValueError(f"{start}..{end} is not a whole number of {dt:g} s steps")
    return span // int(dt)


def integrate(
    model: ColumnModel,
    state: ColumnState,
    land: LandSurface,
    steps: int,
    forcing: ForcingFn,
    ocean: OceanMode,
    *,
    land_index0: int = 0,
    hook: StepHook | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoopResult:
    """Run ``steps`` steps from ``state``. The land sees step indices ``land_index0 + i``."""
    result = LoopResult(state)
    for i in range(steps):
        prep = model.prepare(state, forcing(state.time), ocean.hold_sst)
        land_out = land.exchange(land_index0 + i, model.land_forcing(state, prep))
        state, budget, fields = model.advance(
            state, prep, land_out, qflux=ocean.qflux, diagnose=ocean.diagnose
        )
        result.budgets.append(budget)
        if hook is not None:
            hook(prep, state, budget, fields, land_out)
        if progress is not None:
            progress(1)
    result.state = state
    return result


def add_years(time: np.datetime64, years: int) -> np.datetime64:
    """``time`` moved by whole calendar years (keeps month, day and time of day)."""
    t = as_seconds(time)
    y = t.astype("datetime64[Y]")
    offset = t - y.astype("datetime64[s]")
    return (y + np.timedelta64(years, "Y")).astype("datetime64[s]") + offset
