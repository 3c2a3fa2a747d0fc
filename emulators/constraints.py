"""The constraint layer shared by every land backend: closed energy and water budgets.

Closure is by construction, not by penalty (DESIGN.md, land step 4):
- energy: ``Rn = rsds − rsus + rlds − rlus`` and the ground heat flux is the remainder
  ``G = Rn − LE − H`` (``hfdsl``), so ``Rn − LE − H − G`` is zero to round-off;
- water: evapotranspiration is limited by the water available in the step, runoff takes any
  excess over the storage capacity, and storage is updated as ``W' = W + (P − E − R)·dt``.
All tensors float64 (the budgets must close to 1e-6 kg m-2 on stores of ~10³ kg m-2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def net_radiation(
    rsds: Tensor, rlds: Tensor, albedo: Tensor, rlus: Tensor
) -> tuple[Tensor, Tensor]:
    """(rns, rsus) [W m-2]: rsus = albedo·rsds; rns = rsds − rsus + rlds − rlus (positive down)."""
    rsus = albedo * rsds
    return rsds - rsus + rlds - rlus, rsus


def close_energy(rns: Tensor, hfls: Tensor, hfss: Tensor) -> Tensor:
    """Ground heat flux hfdsl [W m-2, positive into the ground] closing Rn = LE + H + G."""
    return rns - hfls - hfss


def energy_residual(rns: Tensor, hfls: Tensor, hfss: Tensor, hfdsl: Tensor) -> Tensor:
    """Rn − LE − H − G [W m-2]; zero to round-off for closed outputs."""
    return rns - hfls - hfss - hfdsl


@dataclass(frozen=True)
class WaterUpdate:
    """Result of :func:`close_water`; fluxes in kg m-2 s-1, storage in kg m-2."""

    storage: Tensor  # W' after the step
    evap: Tensor  # E actually taken (≤ demand where water-limited; negative = dew)
    runoff: Tensor  # R ≥ 0, surface + drainage + overflow
    limited: Tensor  # bool, where E was cut to the available water


def close_water(
    storage: Tensor,
    precip: Tensor,
    evap_demand: Tensor,
    runoff: Tensor,
    capacity: Tensor,
    dt: float,
    floor: Tensor | float = 0.0,
) -> WaterUpdate:
    """Update a water store W [kg m-2] with precipitation P, evaporation demand E and runoff R
    [kg m-2 s-1] so that ΔW = (P − E − R)·dt holds exactly and floor ≤ W' ≤ capacity.

    E is cut so that W' ≥ floor (ET limited by available water); R is raised by any overflow above
    ``capacity``. Returns the fluxes actually applied.
    """
    available = (storage - floor) / dt + precip - runoff  # kg m-2 s-1 that E may take
    evap = torch.minimum(evap_demand, available.clamp_min(0.0))
    limited = evap < evap_demand
    tentative = storage + (precip - evap - runoff) * dt
    overflow = (tentative - capacity).clamp_min(0.0) / dt
    runoff = runoff + overflow
    new = storage + (precip - evap - runoff) * dt
    return WaterUpdate(new, evap, runoff, limited)


def water_residual(
    storage_old: Tensor,
    storage_new: Tensor,
    precip: Tensor,
    evap: Tensor,
    runoff: Tensor,
    dt: float,
) -> Tensor:
    """(W' − W) − (P − E − R)·dt [kg m-2]; zero to round-off for a closed update."""
    return (storage_new - storage_old) - (precip - evap - runoff) * dt
