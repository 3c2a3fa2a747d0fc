"""Shared checks of the serving tests: run two backends side by side, compare to a tolerance."""

from __future__ import annotations

import numpy as np
import torch

from emulators.export import relative_error
from emulators.protocol import LandBackend, LandStatic, StepClock
from emulators.variables import LAND_OUTPUTS
from tests.contracts.backend_contract import contract_daily_forcing, contract_forcing


def run(
    backend: LandBackend, static: LandStatic, steps: int, dt: float, start: str
) -> list[dict[str, torch.Tensor]]:
    clock = StepClock(0, np.datetime64(start), dt)
    state = backend.initial_state(static, clock)
    outs = []
    for _ in range(steps):
        make = contract_daily_forcing if dt >= 86_400 else contract_forcing
        state, out = backend.step(state, static, make(static, clock, 2), clock)
        outs.append(out)
        clock = clock.advance()
    return outs


def worst_difference(
    a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]
) -> tuple[float, str]:
    """The largest relative error (``emulators.export.relative_error``: max |a − b| / max |b|
    per field) over every step and land output, and the field where it is."""
    worst, where = 0.0, ""
    for x, y in zip(a, b, strict=True):
        for name in LAND_OUTPUTS:
            e = relative_error(x[name].reshape(-1, 1).cpu(), y[name].reshape(-1, 1).cpu())
            if e > worst:
                worst, where = e, name
    return worst, where
