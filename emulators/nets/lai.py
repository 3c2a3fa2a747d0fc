"""The LAI emulator: a daily step, ``forward(x) -> ΔLAI``.

Inputs (``emulators.compiled.lai_step.LAI_FEATURES``, physical units, normalised inside): daily
forcing aggregates (mean and maximum air temperature, mean shortwave, mean saturation deficit),
soil water and the mean water-stress factor, the previous LAI, the day-of-year encoding, the 12
parameters normalised to their ranges and the land-cover class. Output: the change of LAI over the
day [m² m⁻²]; the backend clips LAI to [0, LAI_max] of the class and sets leaf carbon = LAI/SLA.
A small MLP (SiLU): the daily step is cheap either way (once per day per tile).

With ``members`` > 1 the network is an ensemble of such MLPs (``LAIEnsemble``, Lakshminarayanan
et al. 2017's deep ensemble without the variance head): members trained alone from different
seeds (``training.lai``), served as the mean of their ΔLAI. A free-running year amplifies what
one seed learned differently; the mean does not follow any one member's drift
(docs/emulators.md, "An ensemble of three seeds").
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
    #: MLPs averaged (``LAIEnsemble``); 1: one MLP (``LAIEmulator``)
    members: int = 1

    def __post_init__(self) -> None:
        for name in ("n_features", "hidden", "layers", "members"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"lai: {name} must be a positive integer, got {value!r}")

    def build(self) -> LAIEmulator | LAIEnsemble:
        return LAIEmulator(self) if self.members == 1 else LAIEnsemble(self)


def _mlp(cfg: LAIConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = cfg.n_features
    for _ in range(cfg.layers):
        layers += [nn.Linear(width, cfg.hidden), nn.SiLU()]
        width = cfg.hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class LAIEmulator(nn.Module):
    """``forward(x (N, F)) -> ΔLAI (N, 1)`` in m² m⁻² per day."""

    def __init__(self, cfg: LAIConfig) -> None:
        super().__init__()
        self.inputs = Normaliser(cfg.n_features)
        self.outputs = Normaliser(1)
        self.mlp = _mlp(cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.outputs.inverse(self.mlp(self.inputs(x)))


class LAIEnsemble(nn.Module):
    """``forward(x (N, F)) -> ΔLAI (N, 1)``: the mean of ``members`` MLPs' ΔLAI, all on the same
    normalisation (the output normalisation is affine, so the mean of the normalised outputs
    maps to the mean ΔLAI)."""

    def __init__(self, cfg: LAIConfig) -> None:
        super().__init__()
        self.inputs = Normaliser(cfg.n_features)
        self.outputs = Normaliser(1)
        self.members = nn.ModuleList([_mlp(cfg) for _ in range(cfg.members)])
        self.n_members = cfg.members

    @classmethod
    def of(cls, cfg: LAIConfig, members: list[LAIEmulator]) -> LAIEnsemble:
        """The ensemble of trained ``members`` (one ``LAIEmulator`` each, equal normalisation;
        ``cfg.members`` of them)."""
        if len(members) != cfg.members:
            raise ValueError(f"lai: members: expected {cfg.members} networks, got {len(members)}")
        first = members[0]
        for k, m in enumerate(members):
            for name in ("inputs", "outputs"):
                a, b = getattr(first, name), getattr(m, name)
                if not (torch.equal(a.mean, b.mean) and torch.equal(a.std, b.std)):
                    raise ValueError(f"lai: member {k} has another {name} normalisation")
        net = cls(cfg)
        net.inputs.load_state_dict(first.inputs.state_dict())
        net.outputs.load_state_dict(first.outputs.state_dict())
        for target, m in zip(net.members, members, strict=True):
            target.load_state_dict(m.mlp.state_dict())
        return net.eval()

    def forward(self, x: Tensor) -> Tensor:
        z = self.inputs(x)
        total = torch.zeros_like(z[:, :1])
        for mlp in self.members:
            total = total + mlp(z)
        return self.outputs.inverse(total / self.n_members)
