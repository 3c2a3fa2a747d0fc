"""From network predictions to closed fluxes: the constraint layer applied to emulator outputs.

A flux emulator predicts, per tile row, five quantities (``FLUX_OUTPUTS``): the skin temperature
(as T_s − T_a), the sensible heat flux H, the latent heat of the evaporation *demand* LE*, the
transpiration share of evaporation and the gross primary production. Whatever those values are,
this layer builds fluxes that close exactly (in float64):

- ``rlus = ε σ T_s⁴ + (1 − ε) rlds`` from the predicted T_s; ``Rn = rsds(1 − α) + rlds − rlus``
  with the exact albedo α (``landstep.surface``);
- runoff R from ``reference.soil.runoff_and_drainage``; evaporation E = LE*/λ(T_a) cut to the
  available water by ``constraints.close_water`` (ET limited by available water, overflow to
  runoff), so ``ΔW = (P − E − R)·dt``; LE = λ E;
- ``G = Rn − LE − H`` (``constraints.close_energy``) and the soil column conducts G
  (``reference.soil.conduct_heat``), so its heat content changes by exactly G·dt;
- transpiration = E · clip(share, 0, 1); GPP = max(gpp, 0).
The water, energy and soil-heat phases are the land step's own (``landstep.close``, the same
code the reference model closes its fluxes with); this module turns predictions into
``landstep.Fluxes``. Works in any float dtype and is differentiable (training runs it in the
loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators import landstep, physics
from emulators.compiled import open_water
from emulators.landstep import Fluxes, TileSurface
from emulators.reference.soil import SoilConfig

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
    surface: TileSurface  # the exact diagnostics the step used (state before the step)


def predicted_fluxes(pred: Tensor, tas: Tensor, lam: Tensor) -> Fluxes:
    """The fluxes of predictions ``pred`` (row, 5) in physical units (order of
    ``FLUX_OUTPUTS``): T_s = T_a + (T_s − T_a), H, evaporation demand LE*/λ [kg m-2 s-1], the
    transpiration share clipped to [0, 1] and GPP ≥ 0. ``tas`` K, ``lam`` J kg-1."""
    return Fluxes(
        ts=tas + pred[:, 0],
        hfss=pred[:, 1],
        evap_demand=pred[:, 2] / lam,
        tran_share=pred[:, 3].clamp(0.0, 1.0),
        gpp=pred[:, 4].clamp_min(0.0),
    )


def close(
    pred: Tensor,
    *,
    forcing: dict[str, Tensor],
    w: Tensor,
    tsoil: Tensor,
    surf: TileSurface,
    const: dict[str, Tensor],
    soil: SoilConfig,
    dt: float,
    exact: tuple[Tensor, Fluxes] | None = None,
) -> Closed:
    """Apply the constraint layer to predictions ``pred`` (row, 5) in physical units (order of
    ``FLUX_OUTPUTS``). ``forcing``: (row,) forcing tensors; ``w`` (row,) kg m-2; ``tsoil``
    (row, 3) K; ``const``: per-row class constants (``landstep.class_constants`` gathered).
    ``exact``: (row indices, their fluxes) that replace the predicted ones of those rows
    (``open_water``)."""
    pred = pred.to(w.dtype)
    tas = forcing["tas"]
    lam = physics.latent_heat_vaporisation(tas)
    fluxes = predicted_fluxes(pred, tas, lam)
    if exact is not None:
        fluxes = open_water.replace(fluxes, *exact)
    closed = landstep.close(
        fluxes,
        w=w,
        tsoil=tsoil,
        precip=forcing["pr"],
        rsds=forcing["rsds"],
        rlds=forcing["rlds"],
        lam=lam,
        albedo=surf.albedo,
        emissivity=const["emissivity"],
        z0=surf.z0,
        lai=surf.lai * surf.vgcov,
        capacity=const["capacity"],
        const=const,
        soil=soil,
        dt=dt,
    )
    return Closed(closed.w, closed.tsoil, fluxes.ts, closed.fields, surf)
