"""Leaf photosynthesis and stomatal conductance (C3), big-leaf canopy scaling, water stress.

- Farquhar, von Caemmerer & Berry (1980) limitation rates in the Collatz et al. (1991, Agric.
  For. Meteorol. 54, 107-136) form used by SiB2 (Sellers et al. 1996, J. Climate 9, 676-705):
  Rubisco w_c, light w_e (quantum efficiency ``effcon``), export w_s = V_m/2, co-limited by two
  quadratic smoothings (θ = 0.98, 0.95); dark respiration R_d = 0.015 V_m.
- Temperature responses of V_m, K_c, K_o, Γ* from Collatz et al. (1991) Table 2 (Q10 forms;
  high/low temperature inhibition of V_m with SiB2's s1..s4).
- Ball, Woodrow & Berry (1987) stomatal conductance g_s = m A_n h_s p / c_s + b (``gradm``,
  ``binter``), solved with c_i by a damped fixed point (leaf surface taken at air humidity and CO2:
  boundary-layer CO2 drawdown left out).
- Big-leaf scaling Π = (1 − exp(−k L)) / k with V_m decreasing with canopy depth like the light
  (Sellers et al. 1992, Remote Sens. Environ. 42, 187-216), k = 0.5.
- Water stress: the FAO-56 soil-water stress coefficient (Allen et al. 1998, eq. 84) in soil
  moisture, f_w = clip((θ − θ_cr) / ((1 − p)(θ_fc − θ_cr)), 0, 1), depletion fraction p = 0.5,
  θ_fc at −33 kPa and θ_cr at ψ = ``psicr`` (MdPL's critical potential in place of the wilting
  point), potentials from Clapp & Hornberger (1978); f_w scales V_m and b (MATSIRO-like,
  Takata et al. 2003).
Units: conductances mol m-2 s-1 unless stated; partial pressures Pa; PAR mol photons m-2 s-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators import constants as C

Tensor = torch.Tensor
K_EXTINCTION = 0.5
PAR_FRACTION = 0.5  # of rsds (Monteith & Unsworth)
PHOTONS_PER_JOULE = 4.57e-6  # mol photons J-1 of PAR (McCree 1972)
LEAF_TRANSMITTANCE_VIS = 0.05  # SiB2 default (not among the calibrated parameters)
PSI_FIELD_CAPACITY_KPA = -33.0
DEPLETION_FRACTION = 0.5  # FAO-56 p: share of the available water used before stress begins


@dataclass(frozen=True)
class CanopyExchange:
    gpp: Tensor  # canopy gross assimilation, mol CO2 m-2 (vegetated area) s-1
    conductance: Tensor  # canopy stomatal conductance to vapour, m s-1 (vegetated area)


def water_stress(theta: Tensor, theta_fc: Tensor | float, theta_cr: Tensor) -> Tensor:
    """f_w [1] in [0, 1] (FAO-56 eq. 84 form): 1 while less than p of the water between field
    capacity θ_fc and the critical content θ_cr is used, falling linearly to 0 at θ_cr."""
    span = ((1.0 - DEPLETION_FRACTION) * (theta_fc - theta_cr)).clamp_min(1e-9)
    return ((theta - theta_cr) / span).clamp(0.0, 1.0)


def vmax_temperature(vmax0: Tensor, t_leaf: Tensor) -> Tensor:
    """V_m(T) [mol m-2 s-1] = V_m0 2^(0.1 (T − 298)) / ((1 + e^{0.3 (T − 313)})
    (1 + e^{0.2 (288 − T)})) (SiB2, Sellers et al. 1996 eq. C17 with C3 constants)."""
    q = 2.0 ** (0.1 * (t_leaf - 298.0))
    hi = 1.0 + torch.exp(0.3 * (t_leaf - 313.0))
    lo = 1.0 + torch.exp(0.2 * (288.0 - t_leaf))
    return vmax0 * q / (hi * lo)


def canopy_photosynthesis(
    *,
    rsds: Tensor,
    t_leaf: Tensor,
    ps: Tensor,
    rh: Tensor,
    co2_ppm: Tensor,
    lai: Tensor,
    vmax0: Tensor,
    effcon: Tensor,
    gradm: Tensor,
    binter: Tensor,
    rlfv: Tensor,
    f_w: Tensor,
    iterations: int = 6,
) -> CanopyExchange:
    """Big-leaf canopy GPP and stomatal conductance (see module docstring)."""
    p = ps
    dtc = (t_leaf - 298.0) / 10.0
    kc = 30.0 * 2.1**dtc  # Pa
    ko = 30_000.0 * 1.2**dtc  # Pa
    tau = 2600.0 * 0.57**dtc  # CO2/O2 specificity
    o2 = 0.209 * p  # Pa
    gamma_star = o2 / (2.0 * tau)  # Pa
    vm = vmax_temperature(vmax0, t_leaf) * f_w
    par = PAR_FRACTION * PHOTONS_PER_JOULE * rsds * (1.0 - rlfv - LEAF_TRANSMITTANCE_VIS)
    ca = co2_ppm * 1e-6 * p  # Pa
    cs = ca
    hs = rh.clamp(0.05, 1.0)
    b = binter * f_w
    ci = 0.7 * ca
    a_gross = torch.zeros_like(ci)
    gs = b
    for _ in range(iterations):
        wc = vm * (ci - gamma_star) / (ci + kc * (1.0 + o2 / ko))
        we = effcon * par * (ci - gamma_star) / (ci + 2.0 * gamma_star)
        ws = 0.5 * vm
        wp = _colimit(wc, we, 0.98)
        a_gross = _colimit(wp, ws, 0.95).clamp_min(0.0)
        a_net = a_gross - 0.015 * vm
        gs = gradm * a_net.clamp_min(0.0) * hs * p / cs + b
        ci_new = (cs - 1.6 * a_net * p / gs.clamp_min(1e-9)).clamp(gamma_star, ca)
        ci = 0.5 * (ci + ci_new)
    big_leaf = (1.0 - torch.exp(-K_EXTINCTION * lai)) / K_EXTINCTION
    g_ms = gs * big_leaf * C.GAS_CONSTANT * t_leaf / p  # mol m-2 s-1 -> m s-1
    return CanopyExchange(gpp=a_gross * big_leaf, conductance=g_ms)


def _colimit(a: Tensor, b: Tensor, theta: float) -> Tensor:
    """Smaller root of θ x² − (a + b) x + a b = 0 (smooth minimum of a and b)."""
    s = a + b
    disc = (s * s - 4.0 * theta * a * b).clamp_min(0.0)
    return (s - torch.sqrt(disc)) / (2.0 * theta)
