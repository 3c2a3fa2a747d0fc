"""Fresh starts from a spread of initial states (issue 14, item 1).

A session starts from the backends' initial state (``landstep.initial_state``): soil water at 3/4
of the capacity, skin and soil temperatures 302 − 45 sin²φ K. The fresh-start windows of the
flux emulators' training (``flux_cold``) start there too, so the network learns the transient
that follows from that one state. :class:`StartSpread` draws, per (cell, tile), the relative soil
water from [3/4 − ``water``, 3/4 + ``water``] of the capacity and one offset in
[−``temperature``, ``temperature``] K for the skin and the whole soil column, so the training
sees transients from other starts as well (the held-out evaluation keeps the backends' state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emulators.landstep.surface import INITIAL_RELATIVE_WATER
from emulators.protocol import LandState

WATER_MAX = 0.25  # 3/4 ± 1/4: from half to all of the capacity
TEMPERATURE_MAX = 20.0  # K


@dataclass(frozen=True)
class StartSpread:
    """Half-widths of the uniform draws around the backends' initial state: ``water`` of the
    relative soil water [1], ``temperature`` of the skin and soil temperatures [K]."""

    water: float = 0.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.water <= WATER_MAX:
            raise ValueError(f"water: must be in [0, {WATER_MAX}], got {self.water}")
        if not 0.0 <= self.temperature <= TEMPERATURE_MAX:
            raise ValueError(
                f"temperature: must be in [0, {TEMPERATURE_MAX}] K, got {self.temperature}"
            )

    @property
    def active(self) -> bool:
        return self.water > 0.0 or self.temperature > 0.0

    @property
    def suffix(self) -> str:
        """What names the spread in a cache file (empty when inactive)."""
        return f"-spread{self.water:g}w{self.temperature:g}K" if self.active else ""

    def apply(self, state: LandState, seed: int, offset_days: int) -> LandState:
        """``state`` (the backends' initial state, (member, cell, tile)) with soil water and
        temperatures drawn around it; the draws depend on ``seed`` and ``offset_days`` only.
        Inactive: ``state`` itself."""
        if not self.active:
            return state
        rng = np.random.default_rng([seed, offset_days, 104_729])
        w = state.tensors["w"]
        shape = tuple(w.shape)
        dw = torch.from_numpy(rng.uniform(-self.water, self.water, shape)).to(w.dtype)
        shift = torch.from_numpy(rng.uniform(-self.temperature, self.temperature, shape))
        shift = shift.to(state.tensors["ts"].dtype)
        tensors = dict(state.tensors)
        tensors["w"] = w * (1.0 + dw / INITIAL_RELATIVE_WATER)
        tensors["ts"] = state.tensors["ts"] + shift
        tensors["tsoil"] = state.tensors["tsoil"] + shift.unsqueeze(-1)
        return LandState(tensors)
