"""Surface-layer physics as pure functions on tensors (SI units; temperatures in K).

Each function states its equation source. Used by the reference land model and, through
``emulators.constraints``, by every backend.
"""

from __future__ import annotations

import torch

from emulators import constants as C

Tensor = torch.Tensor


# ---- thermodynamics --------------------------------------------------------------------------
def saturation_vapour_pressure(t: Tensor) -> Tensor:
    """e_s(T) [Pa] over water, Tetens form of FAO-56 eq. 11 (Allen et al. 1998):
    e° = 0.6108 exp(17.27 T_c / (T_c + 237.3)) kPa, T_c in degC."""
    tc = t - C.T_FREEZE
    return 610.8 * torch.exp(17.27 * tc / (tc + 237.3))


def saturation_vapour_pressure_slope(t: Tensor) -> Tensor:
    """d e_s / dT [Pa K-1], FAO-56 eq. 13: Δ = 4098 e°(T) / (T_c + 237.3)², with the exact
    derivative's constant 17.27 × 237.3 = 4098.17 (FAO-56 rounds it) so Newton steps agree."""
    tc = t - C.T_FREEZE
    return (17.27 * 237.3) * saturation_vapour_pressure(t) / (tc + 237.3) ** 2


def specific_humidity_from_vapour_pressure(e: Tensor, p: Tensor) -> Tensor:
    """q [kg kg-1] = ε e / (p − (1 − ε) e), e and p in Pa."""
    return C.EPSILON * e / (p - (1.0 - C.EPSILON) * e)


def vapour_pressure_from_specific_humidity(q: Tensor, p: Tensor) -> Tensor:
    """e [Pa] = q p / (ε + (1 − ε) q), the inverse of the above."""
    return q * p / (C.EPSILON + (1.0 - C.EPSILON) * q)


def saturation_specific_humidity(t: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """(q_s [kg kg-1], dq_s/dT [kg kg-1 K-1]) at temperature t [K] and pressure p [Pa]."""
    es = saturation_vapour_pressure(t)
    des = saturation_vapour_pressure_slope(t)
    denom = p - (1.0 - C.EPSILON) * es
    qs = C.EPSILON * es / denom
    dqs = C.EPSILON * des * p / denom**2
    return qs, dqs


def latent_heat_vaporisation(t: Tensor) -> Tensor:
    """λ(T) [J kg-1] = 2.501e6 − 2361 (T − 273.15) (linear fit, e.g. Henderson-Sellers 1984)."""
    return C.LATENT_HEAT_VAPORISATION - 2361.0 * (t - C.T_FREEZE)


def air_density(t: Tensor, q: Tensor, p: Tensor) -> Tensor:
    """ρ [kg m-3] = p / (R_d T_v), virtual temperature T_v = T (1 + 0.608 q)."""
    return p / (C.R_DRY_AIR * t * (1.0 + 0.608 * q))


def relative_humidity(q: Tensor, t: Tensor, p: Tensor) -> Tensor:
    """RH [1] = e / e_s(T), clipped to [0, 1]."""
    rh = vapour_pressure_from_specific_humidity(q, p) / saturation_vapour_pressure(t)
    return rh.clamp(0.0, 1.0)


# ---- radiation --------------------------------------------------------------------------------
def canopy_reflectance(omega: Tensor, lai: Tensor, soil_albedo: Tensor, k: float = 0.5) -> Tensor:
    """Band reflectance [1] of a canopy of leaf scattering coefficient ω = reflectance +
    transmittance over a soil, Goudriaan (1977) / Sellers (1985) form: the semi-infinite canopy
    reflects ρ_∞ = (1 − √(1−ω)) / (1 + √(1−ω)); a finite canopy of leaf area index L blends to
    the soil as ρ = ρ_∞ + (α_soil − ρ_∞) exp(−2 k √(1−ω) L), k the extinction coefficient
    (0.5 for a spherical leaf angle distribution)."""
    s = torch.sqrt((1.0 - omega).clamp_min(1e-6))
    rho_inf = (1.0 - s) / (1.0 + s)
    return rho_inf + (soil_albedo - rho_inf) * torch.exp(-2.0 * k * s * lai)


def upwelling_longwave(ts: Tensor, rlds: Tensor, emissivity: Tensor | float) -> Tensor:
    """rlus [W m-2] = ε σ T_s⁴ + (1 − ε) rlds (emission plus reflected downwelling)."""
    return emissivity * C.STEFAN_BOLTZMANN * ts**4 + (1.0 - emissivity) * rlds


# ---- turbulent exchange -----------------------------------------------------------------------
#: measurement heights below this multiple of the roughness length are raised to it
#: (``neutral_aerodynamic_resistance``)
ROUGHNESS_HEIGHT_FLOOR = 2.0


def neutral_aerodynamic_resistance(
    wind: Tensor, z_wind: float, z_temp: float, z0m: Tensor, z0h: Tensor
) -> Tensor:
    """r_a [s m-1] for neutral stability, FAO-56 eq. 4 (Allen et al. 1998):
    r_a = ln((z_m − d)/z0m) ln((z_h − d)/z0h) / (k² u_z). Here the measurement heights are taken
    above the zero-plane displacement d of each tile (z_wind = z_m − d, z_temp = z_h − d), so a
    forcing height means "that far above the canopy". Wind in m s-1, floored at 0.1 m s-1.

    The log profile holds only above the roughness length: a height below
    ``ROUGHNESS_HEIGHT_FLOOR`` × z0 (2-m station wind over a canopy taller than ~8 m: z0m =
    0.123 h) is raised to that floor, which would otherwise give a negative r_a, conductances of
    the wrong sign and an energy balance that cannot converge. A floor, not a shift: every
    height above it gives bitwise the same r_a."""
    ratio_m = (z_wind / z0m).clamp_min(ROUGHNESS_HEIGHT_FLOOR)
    ratio_h = (z_temp / z0h).clamp_min(ROUGHNESS_HEIGHT_FLOOR)
    return torch.log(ratio_m) * torch.log(ratio_h) / (C.VON_KARMAN**2 * wind.clamp_min(0.1))


def bulk_richardson(ts: Tensor, ta: Tensor, wind: Tensor, z: float) -> Tensor:
    """Bulk Richardson number Ri_b = g z (T_a − T_s) / (T_a u²) [1] (positive = stable)."""
    return C.GRAVITY * z * (ta - ts) / (ta * wind.clamp_min(0.1) ** 2)


def stability_factor(ri: Tensor) -> Tensor:
    """Multiplier F(Ri) on the neutral exchange conductance (r_a = r_a,neutral / F).
    Unstable (Ri < 0): F = (1 − 16 Ri)^0.75; stable: F = (1 − 5 Ri)², Ri capped at 0.19 so
    exchange never collapses entirely. Businger–Dyer-type forms as used for bulk resistances
    (Dyer 1974; Choudhury, Reginato & Idso 1986, Agric. For. Meteorol. 37, 75-88)."""
    ri = ri.clamp(-5.0, 0.19)
    unstable = (1.0 - 16.0 * ri.clamp(max=0.0)) ** 0.75
    stable = (1.0 - 5.0 * ri.clamp(min=0.0)) ** 2
    return torch.where(ri < 0.0, unstable, stable)
