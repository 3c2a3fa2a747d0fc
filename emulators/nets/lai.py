"""The LAI emulator: a daily step, ``forward(x) -> ΔLAI``.

Inputs (``emulators.compiled.lai_step.LAI_FEATURES``, physical units, normalised inside): daily
forcing aggregates (mean and maximum air temperature, mean shortwave, mean saturation deficit),
soil water and the mean water-stress factor, the previous LAI, the day-of-year encoding, the 12
parameters normalised to their ranges and the land-cover class. Output: the change of LAI over the
day [m² m⁻²]; the backend clips LAI to [0, LAI_max] of the class and sets leaf carbon = LAI/SLA.
A small MLP (SiLU): the daily step is cheap either way (once per day per tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emulators.compiled.lai_step import N_LAI_FEATURES
from emulators.nets.flux import Normaliser
from emulators.nets.registry import register

Tensor = torch.Tensor


@register("lai")
@dataclass(frozen=True)
class LAIConfig:
    n_features: int = N_LAI_FEATURES
    hidden: int = 64
    layers: int = 2

    def __post_init__(self) -> None:
        for name in ("n_features", "hidden", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"lai: {name} must be a positive integer, got {value!r}")

    def build(self) -> LAIEmulator:
        return LAIEmulator(self)


class LAIEmulator(nn.Module):
    """``forward(x (N, F)) -> ΔLAI (N, 1)`` in m² m⁻² per day."""

    def __init__(self, cfg: LAIConfig) -> None:
        super().__init__()
        self.inputs = Normaliser(cfg.n_features)
        self.outputs = Normaliser(1)
        layers: list[nn.Module] = []
        width = cfg.n_features
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.SiLU()]
            width = cfg.hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.outputs.inverse(self.mlp(self.inputs(x)))
