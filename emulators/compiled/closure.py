"""From network predictions to closed fluxes: the constraint layer applied to emulator outputs.

A flux emulator predicts, per tile row, five quantities (``FLUX_OUTPUTS``): the skin temperature
(as T_s − T_a), the sensible heat flux H, the latent heat of the evaporation *demand* LE*, the
transpiration share of evaporation and the gross primary production. Whatever those values are,
this layer builds fluxes that close exactly (in float64):

- ``rlus = ε σ T_s⁴ + (1 − ε) rlds`` from the predicted T_s; ``Rn = rsds(1 − α) + rlds − rlus``
  with the exact albedo α (``tiles.surface``);
- runoff R from ``reference.soil.runoff_and_drainage``; evaporation E = LE*/λ(T_a) cut to the
  available water by ``constraints.close_water`` (ET limited by available water, overflow to
  runoff), so ``ΔW = (P − E − R)·dt``; LE = λ E;
- ``G = Rn − LE − H`` (``constraints.close_energy``) and the soil column conducts G
  (``reference.soil.conduct_heat``), so its heat content changes by exactly G·dt;
- transpiration = E · clip(share, 0, 1); GPP = max(gpp, 0).
Works in any float dtype and is differentiable (training runs it in the loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators import constraints, physics
from emulators.compiled.tiles import Surface
from emulators.reference.soil import SoilConfig, conduct_heat, runoff_and_drainage

Tensor = torch.Tensor

#: (name, units, long name) of the flux emulators' outputs, in order
FLUX_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("ts_minus_tas", "K", "skin temperature minus near-surface air temperature"),
    ("hfss", "W m-2", "sensible heat flux, positive up"),
    ("hfls_demand", "W m-2", "latent heat of the evaporation demand (before water limiting)"),
    ("tran_share", "1", "transpiration / evapotranspiration"),
    ("gpp", "kg m-2 s-1", "gross primary production (carbon), per tile area"),
)
N_FLUX_OUTPUTS = len(FLUX_OUTPUTS)


@dataclass(frozen=True)
class Closed:
    """Closed per-row fields (units of the registry) and the new prognostic state."""

    w: Tensor  # soil water after the step [kg m-2]
    tsoil: Tensor  # (row, 3) soil temperatures [K]
    ts: Tensor  # skin temperature [K]
    fields: dict[str, Tensor]
    surface: Surface  # the exact diagnostics the step used (state before the step)


def close(
    pred: Tensor,
    *,
    forcing: dict[str, Tensor],
    w: Tensor,
    tsoil: Tensor,
    surf: Surface,
    const: dict[str, Tensor],
    soil: SoilConfig,
    dt: float,
) -> Closed:
    """Apply the constraint layer to predictions ``pred`` (row, 5) in physical units (order of
    ``FLUX_OUTPUTS``). ``forcing``: (row,) forcing tensors; ``w`` (row,) kg m-2; ``tsoil``
    (row, 3) K; ``const``: per-row class constants (``tiles.class_constants`` gathered)."""
    dtype = w.dtype
    pred = pred.to(dtype)
    tas, pr, rsds, rlds = forcing["tas"], forcing["pr"], forcing["rsds"], forcing["rlds"]
    ts = tas + pred[:, 0]
    hfss = pred[:, 1]
    lam = physics.latent_heat_vaporisation(tas)
    evap_demand = pred[:, 2] / lam
    water = const["water"]
    capacity = const["capacity"]
    runoff = runoff_and_drainage(w, capacity, pr, const["impervious"], soil, dt) * (1.0 - water)
    floor = capacity * soil.theta_residual / soil.porosity * (1.0 - water)
    upd = constraints.close_water(w, pr, evap_demand, runoff, capacity, dt, floor)
    hfls = lam * upd.evap
    rlus = physics.upwelling_longwave(ts, rlds, const["emissivity"])
    rns, rsus = constraints.net_radiation(rsds, rlds, surf.albedo, rlus)
    hfdsl = constraints.close_energy(rns, hfls, hfss)
    tsoil_new = conduct_heat(tsoil, hfdsl, const["heat_capacity_scale"], soil, dt)
    share = pred[:, 3].clamp(0.0, 1.0)
    top = 0.1 / const["root_depth"]
    fields = {
        "hfls": hfls,
        "hfss": hfss,
        "hfdsl": hfdsl,
        "ts": ts,
        "albedo": surf.albedo,
        "rsus": rsus,
        "rlus": rlus,
        "rns": rns,
        "evspsbl": upd.evap,
        "tran": upd.evap * share,
        "mrro": upd.runoff,
        "mrso": upd.storage,
        "mrsos": upd.storage * top,
        "z0": surf.z0,
        "lai": surf.lai * surf.vgcov,
        "gpp": pred[:, 4].clamp_min(0.0),
        "pr_in": pr,
        "mrso_old": w,
    }
    return Closed(upd.storage, tsoil_new, ts, fields, surf)
