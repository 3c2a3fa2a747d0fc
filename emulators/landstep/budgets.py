"""The closing phases of the land step, shared by every backend: water, energy, soil heat.

Whatever a backend predicts (:class:`Fluxes`: skin temperature, H, evaporation demand,
transpiration share, GPP), these phases build tile fields whose budgets close exactly
(``emulators.constraints``):

- water: runoff R (``reference.soil.runoff_and_drainage``; none on the lake tile), evaporation
  E cut to the available water above the residual floor, overflow to runoff, and
  ``W' = W + (P − E − R)·dt``; LE = λ E;
- energy: ``rlus = ε σ T_s⁴ + (1 − ε) rlds``, ``Rn = rsds(1 − α) + rlds − rlus`` and the
  ground heat flux is the remainder ``G = Rn − LE − H``;
- soil heat: the 3-layer column conducts G (``reference.soil.conduct_heat``), so its heat
  content changes by exactly G·dt.

Works in any float dtype and is differentiable (the emulators' training runs it in the loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from emulators import constraints, physics
from emulators.reference.soil import SoilConfig, conduct_heat, runoff_and_drainage

Tensor = torch.Tensor
TOP_LAYER_DEPTH = 0.1  # m, the surface soil layer of ``mrsos``


@dataclass(frozen=True)
class Fluxes:
    """What a backend predicts for its tiles; the one part of the step that differs."""

    ts: Tensor  # skin temperature [K]
    hfss: Tensor  # sensible heat flux [W m-2], positive up
    evap_demand: Tensor  # evaporation demand before water limiting [kg m-2 s-1]
    tran_share: Tensor  # transpiration / evapotranspiration [1]
    gpp: Tensor  # gross primary production per tile area [kg m-2 s-1]


@dataclass(frozen=True)
class ClosedTiles:
    """The new prognostic water and soil temperatures and the closed tile fields."""

    w: Tensor  # soil water after the step [kg m-2]
    tsoil: Tensor  # (…, 3) soil temperatures after the step [K]
    fields: dict[str, Tensor]  # registry units; plus ``rns``, ``tran``, ``pr_in``, ``mrso_old``


def water(
    w: Tensor,
    precip: Tensor,
    evap_demand: Tensor,
    capacity: Tensor,
    const: Mapping[str, Tensor],
    soil: SoilConfig,
    dt: float,
) -> constraints.WaterUpdate:
    """Water phase: runoff, evaporation limited by the water above the residual floor, and the
    exact storage update. ``w``, ``capacity`` kg m-2; ``precip``, ``evap_demand`` kg m-2 s-1."""
    lake = const["water"]
    runoff = runoff_and_drainage(w, capacity, precip, const["impervious"], soil, dt) * (1.0 - lake)
    floor = capacity * soil.theta_residual / soil.porosity * (1.0 - lake)
    return constraints.close_water(w, precip, evap_demand, runoff, capacity, dt, floor)


def energy(
    ts: Tensor,
    hfls: Tensor,
    hfss: Tensor,
    rsds: Tensor,
    rlds: Tensor,
    albedo: Tensor,
    emissivity: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Energy phase: (rlus, rns, rsus, hfdsl) [W m-2] with the ground heat flux hfdsl (positive
    down) the remainder of the net radiation after LE and H (``ts`` K, the rest W m-2 or 1)."""
    rlus = physics.upwelling_longwave(ts, rlds, emissivity)
    rns, rsus = constraints.net_radiation(rsds, rlds, albedo, rlus)
    return rlus, rns, rsus, constraints.close_energy(rns, hfls, hfss)


def soil_heat(
    tsoil: Tensor, hfdsl: Tensor, const: Mapping[str, Tensor], soil: SoilConfig, dt: float
) -> Tensor:
    """Soil heat phase: the (…, 3) soil temperatures [K] after the column conducts the ground
    heat flux ``hfdsl`` [W m-2, positive down] for ``dt`` seconds."""
    return conduct_heat(tsoil, hfdsl, const["heat_capacity_scale"], soil, dt)


def close(
    fluxes: Fluxes,
    *,
    w: Tensor,
    tsoil: Tensor,
    precip: Tensor,
    rsds: Tensor,
    rlds: Tensor,
    lam: Tensor,
    albedo: Tensor,
    emissivity: Tensor,
    z0: Tensor,
    lai: Tensor,
    capacity: Tensor,
    const: Mapping[str, Tensor],
    soil: SoilConfig,
    dt: float,
) -> ClosedTiles:
    """Water, energy and soil heat phases of a step from the predicted ``fluxes``. ``w`` kg m-2,
    ``tsoil`` (…, 3) K at the start of the step; ``precip`` kg m-2 s-1 (irrigation included),
    ``rsds``/``rlds`` W m-2; ``lam`` latent heat of vaporisation J kg-1; ``albedo``,
    ``emissivity`` 1; ``z0`` m and ``lai`` (grid-box) m2 m-2 passed through to the fields."""
    upd = water(w, precip, fluxes.evap_demand, capacity, const, soil, dt)
    hfls = lam * upd.evap
    rlus, rns, rsus, hfdsl = energy(fluxes.ts, hfls, fluxes.hfss, rsds, rlds, albedo, emissivity)
    tsoil_new = soil_heat(tsoil, hfdsl, const, soil, dt)
    top = TOP_LAYER_DEPTH / const["root_depth"]
    fields = {
        "hfls": hfls,
        "hfss": fluxes.hfss,
        "hfdsl": hfdsl,
        "ts": fluxes.ts,
        "albedo": albedo,
        "rsus": rsus,
        "rlus": rlus,
        "rns": rns,
        "evspsbl": upd.evap,
        "tran": upd.evap * fluxes.tran_share,
        "mrro": upd.runoff,
        "mrso": upd.storage,
        "mrsos": upd.storage * top,
        "z0": z0,
        "lai": lai,
        "gpp": fluxes.gpp,
        "pr_in": precip,
        "mrso_old": w,
    }
    return ClosedTiles(upd.storage, tsoil_new, fields)
