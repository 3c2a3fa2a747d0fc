"""The canopy emulator of the ``hybrid`` backend: canopy photosynthesis and stomatal conductance,
``forward(x) -> (GPP, g_s)``, in place of the reference's iterative solve
(``emulators.reference.photosynthesis.canopy_photosynthesis``, same inputs and outputs).

Physics-constrained (the hybrid-modelling pattern of Reichstein et al. 2019, Nature 566, 195-204;
for evaporation, Zhao et al. 2019, GRL 46, 14496-14507: a network for the biological term, the
energy balance kept as physics). The network learns one number per row, the leaf's gross
assimilation as a fraction r ∈ (0, 1) of its physical ceiling, the smaller of the export limit
V_m/2 and the CO₂-saturated light limit ε·PAR (Collatz et al. 1991): A = r · min(V_m/2, ε PAR).
Everything else is the reference's own algebra, inside the exported graph:

* V_m(T) with water stress f_w (``photosynthesis.vmax_temperature``), PAR from shortwave;
* Ball-Berry conductance g_s = m A_n h_s p / c_s + b f_w [mol m-2 s-1], A_n = A − 0.015 V_m;
* big-leaf scaling Π = (1 − e^{−kL})/k and mol → m s-1 (× R T/p).

So at night, without leaves or without water, GPP is exactly 0 and g_s the cuticular b f_w Π, and
g_s can never leave the Ball-Berry range; the network's inputs are the reference's (no pressure,
humidity or light dependence has to be extrapolated by the network alone).

Inputs (row, 12) float32 in :data:`CANOPY_INPUTS` order and units; output (row, 2): GPP
[mol CO₂ m-2 s-1] and canopy conductance to vapour [m s-1], both per vegetated area.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emulators import constants as C
from emulators.nets.registry import register
from emulators.reference import photosynthesis as ph

Tensor = torch.Tensor

#: (name, units, long name) of the inputs, the keyword arguments of ``canopy_photosynthesis``
CANOPY_INPUTS: tuple[tuple[str, str, str], ...] = (
    ("rsds", "W m-2", "downwelling shortwave"),
    ("t_leaf", "K", "leaf temperature (the previous step's skin temperature)"),
    ("ps", "Pa", "surface air pressure"),
    ("rh", "1", "near-surface relative humidity"),
    ("co2_ppm", "1e-6", "CO2 mole fraction"),
    ("lai", "1", "leaf area index of the vegetated part"),
    ("vmax0", "mol m-2 s-1", "maximum Rubisco capacity at 25 C"),
    ("effcon", "mol mol-1", "quantum efficiency"),
    ("gradm", "1", "Ball-Berry slope"),
    ("binter", "mol m-2 s-1", "Ball-Berry intercept"),
    ("rlfv", "1", "leaf reflectance (visible)"),
    ("f_w", "1", "soil water stress factor"),
)
CANOPY_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("gpp", "mol m-2 s-1", "canopy gross assimilation per vegetated area"),
    ("conductance", "m s-1", "canopy stomatal conductance to vapour per vegetated area"),
)
N_CANOPY_INPUTS = len(CANOPY_INPUTS)
N_FEATURES = 12


@register("canopy_mlp")
@dataclass(frozen=True)
class CanopyConfig:
    hidden: int = 64
    layers: int = 2

    def __post_init__(self) -> None:
        for name in ("hidden", "layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"canopy_mlp: {name} must be a positive integer, got {value!r}")

    def build(self) -> CanopyNet:
        return CanopyNet(self)


def ceiling(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(V_m [mol m-2 s-1] with water stress, PAR [mol m-2 s-1], the ceiling of gross assimilation
    min(V_m/2, ε PAR) [mol m-2 s-1]) of inputs ``x`` (row, 12) in :data:`CANOPY_INPUTS` order."""
    vm = ph.vmax_temperature(x[:, 6], x[:, 1]) * x[:, 11]
    par = (
        ph.PAR_FRACTION
        * ph.PHOTONS_PER_JOULE
        * x[:, 0]
        * (1.0 - x[:, 10] - ph.LEAF_TRANSMITTANCE_VIS)
    )
    cap = torch.minimum(0.5 * vm, x[:, 7] * par.clamp_min(0.0))
    return vm, par, cap


def features(x: Tensor) -> Tensor:
    """(row, 12) network features, each O(1) over the parameter ranges and weather: temperature,
    pressure, humidity, CO₂, log PAR, log V_m, the parameters, f_w, log ceiling and the log ratio
    of the two limits (which one binds). Guards are clamps, not added epsilons: the ONNX
    exporter of torch 2.13 dropped ``+ 1e-9`` from a quotient (0/0 at night in the ONNX graph
    only; ``tests/emulators/nets/test_canopy.py``)."""
    vm, par, cap = ceiling(x)
    return torch.stack(
        [
            (x[:, 1] - 293.0) / 10.0,
            x[:, 2] / 1e5 - 0.9,
            x[:, 3].clamp(0.05, 1.0) * 2.0 - 1.0,
            x[:, 4] / 400.0 - 1.0,
            torch.log(par.clamp_min(0.0) * 1e6 + 1.0) / 3.0 - 1.0,
            torch.log(vm * 1e6 + 1.0) / 2.0 - 1.0,
            x[:, 7] * 10.0 - 0.8,
            x[:, 8] / 10.0 - 0.9,
            x[:, 9] * 100.0 - 1.0,
            x[:, 11] * 2.0 - 1.0,
            torch.log(cap * 1e6 + 1.0) / 2.0 - 1.0,
            torch.log((0.5 * vm).clamp_min(1e-9) / (x[:, 7] * par).clamp_min(1e-9)) / 5.0,
        ],
        dim=-1,
    )


class CanopyNet(nn.Module):
    """``forward(x) -> (row, 2)`` GPP and canopy conductance (module docstring)."""

    def __init__(self, config: CanopyConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = N_FEATURES
        for _ in range(config.layers):
            layers += [nn.Linear(width, config.hidden), nn.SiLU()]
            width = config.hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def fraction(self, x: Tensor) -> Tensor:
        """(row,) r ∈ (0, 1): gross assimilation / its ceiling."""
        return torch.sigmoid(self.mlp(features(x))[:, 0])

    def forward(self, x: Tensor) -> Tensor:
        vm, _, cap = ceiling(x)
        a_gross = self.fraction(x) * cap
        a_net = (a_gross - 0.015 * vm).clamp_min(0.0)
        ps, cs = x[:, 2], x[:, 4] * 1e-6 * x[:, 2]
        g_leaf = x[:, 8] * a_net * x[:, 3].clamp(0.05, 1.0) * ps / cs + x[:, 9] * x[:, 11]
        big_leaf = (1.0 - torch.exp(-ph.K_EXTINCTION * x[:, 5])) / ph.K_EXTINCTION
        to_ms = C.GAS_CONSTANT * x[:, 1] / ps
        return torch.stack([a_gross * big_leaf, g_leaf * big_leaf * to_ms], dim=-1)


def target_fraction(x: Tensor, gpp: Tensor) -> tuple[Tensor, Tensor]:
    """(r, where r is defined) of the reference's canopy ``gpp`` [mol m-2 s-1] at inputs ``x``:
    gpp / (Π · ceiling), defined where the canopy has leaves and the ceiling is positive."""
    _, _, cap = ceiling(x)
    big_leaf = (1.0 - torch.exp(-ph.K_EXTINCTION * x[:, 5])) / ph.K_EXTINCTION
    ok = (big_leaf > 1e-9) & (cap > 1e-18)
    r = torch.where(ok, gpp / (big_leaf * cap).clamp_min(1e-30), torch.zeros_like(gpp))
    return r.clamp(0.0, 1.0), ok
