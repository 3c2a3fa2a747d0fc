"""The reference model's flux prediction: bulk conductances of the tiles and the surface energy
balance solved for the skin temperature. Pure functions on (member, cell, tile) tensors.

Surface energy balance, solved by Newton iteration on T_s [K]:
    f(T_s) = S_abs + ε rlds − ε σ T_s⁴ − ρ c_p g_H (T_s − T_a) − ρ λ g_E (q_s(T_s) − q_a)
             − G(T_s) = 0,
with G(T_s) = a T_s − b the implicit response of the soil column (``soil.surface_coupling``) and
bulk conductances g_H, g_E [m s-1] combining the aerodynamic resistance (stability-corrected),
the leaf boundary layer (``chl``, ``cdl``), the stomata and the bare-soil resistance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators import physics
from emulators.landstep import Fluxes
from emulators.reference import photosynthesis

Tensor = torch.Tensor
SKIN_BELOW_AIR_MAX = 30.0  # K; strongest observed surface inversions are ~10-25 K
SKIN_ABOVE_AIR_MAX = 60.0  # K; hot dry surfaces reach ~30-40 K above air
FAO56_SURFACE_RESISTANCE = 70.0  # s m-1 (Allen et al. 1998, eq. 3-5)


@dataclass(frozen=True)
class Exchange:
    """What the bulk conductances of the tiles depend on, apart from the skin temperature.

    ``ra_neutral``: neutral aerodynamic resistance [s m-1]; ``ta`` air temperature [K];
    ``wind`` [m s-1] at ``height_wind`` [m]; ``g_bh``, ``g_bv``: leaf boundary-layer
    conductances for heat and vapour [m s-1]; ``g_stomata``: canopy stomatal conductance
    [m s-1]; ``lai`` [m2 m-2] and ``vgcov`` [1] of the vegetated part; ``r_soil``: bare-soil
    resistance [s m-1]; ``water``: 1 on the lake tile; ``fao56``: the FAO-56 reference grass
    (neutral stability, fixed surface resistance)."""

    ra_neutral: Tensor
    ta: Tensor
    wind: Tensor
    height_wind: float
    g_bh: Tensor
    g_bv: Tensor
    g_stomata: Tensor
    lai: Tensor
    vgcov: Tensor
    r_soil: Tensor
    water: Tensor
    fao56: bool = False


def conductances(t_s: Tensor, ex: Exchange) -> tuple[Tensor, Tensor, Tensor]:
    """Conductances phase: (g_H, g_E, g_T) [m s-1] for heat, for evaporation (transpiration
    plus soil or open water) and for transpiration alone at skin temperature ``t_s`` [K]."""
    if ex.fao56:
        ra = ex.ra_neutral / torch.ones_like(t_s)
        g_tr = 1.0 / (ra + FAO56_SURFACE_RESISTANCE)
        return 1.0 / ra, g_tr, g_tr
    stab = physics.stability_factor(physics.bulk_richardson(t_s, ex.ta, ex.wind, ex.height_wind))
    ra = ex.ra_neutral / stab
    vg, lai = ex.vgcov, ex.lai
    g_tr = 1.0 / (ra + 1.0 / ex.g_bv + 1.0 / ex.g_stomata.clamp_min(1e-9))
    g_tr = g_tr * (lai > 0).to(g_tr.dtype)
    soil_exposure = (1.0 - vg) + vg * torch.exp(-photosynthesis.K_EXTINCTION * lai)
    g_soil = soil_exposure / (ra + ex.r_soil)
    g_soil = torch.where(ex.water > 0, 1.0 / ra, g_soil)
    g_h = vg / (ra + 1.0 / ex.g_bh) + (1.0 - vg) / ra
    return g_h, vg * g_tr + g_soil, vg * g_tr


#: ``conductances(t_s, ex) -> (g_H, g_E, g_T)`` [m s-1] (:func:`conductances`)
Conductances = Callable[[Tensor, Exchange], tuple[Tensor, Tensor, Tensor]]


@dataclass(frozen=True)
class EnergyBalance:
    """The terms of the surface energy balance that do not depend on T_s: absorbed shortwave
    ``s_abs`` and downwelling longwave ``rlds`` [W m-2], emissivity ``emis`` [1], air density
    ``rho`` [kg m-3], latent heat ``lam`` [J kg-1], air temperature ``ta`` [K], specific
    humidity ``qa`` [kg kg-1], pressure ``ps`` [Pa], and the soil column's implicit ground heat
    flux G(T_s) = ``g_slope`` T_s − ``g_offset`` [W m-2 K-1, W m-2]."""

    s_abs: Tensor
    rlds: Tensor
    emis: Tensor
    rho: Tensor
    lam: Tensor
    ta: Tensor
    qa: Tensor
    ps: Tensor
    g_slope: Tensor
    g_offset: Tensor


def solve_energy_balance(
    t_start: Tensor,
    eb: EnergyBalance,
    ex: Exchange,
    iterations: int,
    stability_updates: int,
    conductances_fn: Conductances = conductances,
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Energy balance solve phase: the skin temperature [K] from ``iterations`` Newton steps
    from ``t_start``, and the conductances (g_H, g_E, g_T) it ends with. Stability follows T_s
    for the first ``stability_updates`` iterations, then is frozen, so the remaining iterations
    are a true Newton method on a smooth function (quadratic convergence). ``conductances_fn``:
    :func:`conductances` by default; a function that gives the same values for the tiles at
    hand may stand in (``compiled.open_water``: the water tile's, with no canopy terms).

    The terms that do not change between iterations (ε rlds, ρ c_p, ρ λ, ε σ, the guard's
    bounds) are formed once, each the sub-expression the residual and its derivative evaluate
    first, so every iteration's arithmetic, and every bit of T_s, is that of the written-out
    expressions (tested against them)."""
    t_s = t_start.clone()
    g = conductances_fn(t_s, ex)
    absorbed = eb.s_abs + eb.emis * eb.rlds  # S_abs + ε rlds
    emis_sigma = eb.emis * C.STEFAN_BOLTZMANN
    emis_sigma_4 = -4.0 * eb.emis * C.STEFAN_BOLTZMANN
    rho_cp = eb.rho * C.CP_AIR
    rho_lam = eb.rho * eb.lam
    low, high = eb.ta - SKIN_BELOW_AIR_MAX, eb.ta + SKIN_ABOVE_AIR_MAX
    for it in range(iterations):
        if it < stability_updates:
            g = conductances_fn(t_s, ex)
        g_h, g_e, _ = g
        qs, dqs = physics.saturation_specific_humidity(t_s, eb.ps)
        resid = (
            absorbed
            - emis_sigma * t_s**4
            - rho_cp * g_h * (t_s - eb.ta)
            - rho_lam * g_e * (qs - eb.qa)
            - (eb.g_slope * t_s - eb.g_offset)
        )
        deriv = emis_sigma_4 * t_s**3 - rho_cp * g_h - rho_lam * g_e * dqs - eb.g_slope
        t_s = t_s - (resid / deriv).clamp(-15.0, 15.0)
        # physical guard: with the stable-stratification cap a weakly coupled tile (minimum
        # chl and binter) could otherwise cool without bound on clear nights (seen: 40 K)
        t_s = torch.minimum(torch.maximum(t_s, low), high)
    return t_s, g


def turbulent_fluxes(
    t_s: Tensor, g: tuple[Tensor, Tensor, Tensor], eb: EnergyBalance, gpp: Tensor
) -> Fluxes:
    """The predicted fluxes at the solved skin temperature ``t_s`` [K] with conductances ``g``:
    H = ρ c_p g_H (T_s − T_a) [W m-2], evaporation demand ρ g_E (q_s(T_s) − q_a)
    [kg m-2 s-1], transpiration share g_T/g_E [1], and the tiles' ``gpp`` [kg m-2 s-1]."""
    g_h, g_e, g_tr = g
    qs, _ = physics.saturation_specific_humidity(t_s, eb.ps)
    hfss = eb.rho * C.CP_AIR * g_h * (t_s - eb.ta)
    evap_demand = eb.rho * g_e * (qs - eb.qa)
    tran_share = torch.where(g_e > 0, g_tr / g_e.clamp_min(1e-12), torch.zeros_like(g_e))
    return Fluxes(t_s, hfss, evap_demand, tran_share, gpp)
