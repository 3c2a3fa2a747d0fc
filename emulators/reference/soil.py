"""Soil water (root-zone bucket with runoff and drainage) and soil heat (3-layer implicit
conduction). Pure functions; units in docstrings.

Hydraulics: Clapp & Hornberger (1978, Water Resour. Res. 14, 601-604) power laws,
ψ = ψ_sat (θ/θ_sat)^(−b), K = K_sat (θ/θ_sat)^(2b+3), with their loam values (Table 2).
Runoff: saturation excess over a saturated-area fraction (W/W_max)^4 (Arno/VIC-type
distribution, Zhao 1992; Liang et al. 1994) plus infiltration excess above K_sat.
Heat: three layers (0.1, 0.3, 1.6 m), backward-Euler conduction, zero flux at the bottom; the
column's heat content changes by exactly G·dt (to round-off).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators import constants as C

Tensor = torch.Tensor


@dataclass(frozen=True)
class SoilConfig:
    """Soil properties (default: loam, Clapp & Hornberger 1978 Table 2)."""

    porosity: float = 0.451  # θ_sat, m3 m-3
    psi_sat_kpa: float = -4.69  # ψ_sat (−47.8 cm of water)
    b: float = 5.39
    k_sat: float = 6.95e-6  # m s-1
    theta_residual: float = 0.05  # m3 m-3, floor of the bucket
    layer_thickness: tuple[float, float, float] = (0.1, 0.3, 1.6)  # m
    heat_capacity: float = 2.0e6  # J m-3 K-1, moist mineral soil (de Vries 1963 orders)
    conductivity: float = 1.2  # W m-1 K-1
    runoff_shape: float = 4.0  # exponent of the saturated-area fraction

    def __post_init__(self) -> None:
        if not 0.1 < self.porosity < 0.9:
            raise ValueError(f"porosity {self.porosity} outside (0.1, 0.9)")
        if not 0.0 <= self.theta_residual < self.porosity:
            raise ValueError("theta_residual must lie in [0, porosity)")
        if self.psi_sat_kpa >= 0 or self.b <= 0 or self.k_sat <= 0:
            raise ValueError("psi_sat_kpa < 0, b > 0 and k_sat > 0 are required")
        if len(self.layer_thickness) != 3 or min(self.layer_thickness) <= 0:
            raise ValueError("layer_thickness must be three positive depths")
        if self.heat_capacity <= 0 or self.conductivity <= 0:
            raise ValueError("heat_capacity and conductivity must be positive")


def matric_potential_kpa(theta: Tensor, soil: SoilConfig) -> Tensor:
    """ψ [kPa] = ψ_sat (θ/θ_sat)^(−b), θ clipped to [0.01, θ_sat]."""
    rel = (theta / soil.porosity).clamp(0.01, 1.0)
    return soil.psi_sat_kpa * rel ** (-soil.b)


def water_content_at(psi_kpa: Tensor | float, soil: SoilConfig) -> Tensor:
    """θ [m3 m-3] at matric potential ψ [kPa] (inverse of :func:`matric_potential_kpa`)."""
    psi = torch.as_tensor(psi_kpa, dtype=torch.float64)
    return soil.porosity * (psi / soil.psi_sat_kpa) ** (-1.0 / soil.b)


def surface_resistance(theta: Tensor, soil: SoilConfig) -> Tensor:
    """Bare-soil evaporation resistance r_soil [s m-1] = exp(8.206 − 4.255 θ/θ_sat)
    (Sellers et al. 1992, Remote Sens. Environ. 42, 187-216)."""
    return torch.exp(8.206 - 4.255 * (theta / soil.porosity).clamp(0.0, 1.0))


def runoff_and_drainage(
    storage: Tensor,
    capacity: Tensor,
    precip: Tensor,
    impervious: Tensor,
    soil: SoilConfig,
    dt: float,
) -> Tensor:
    """R [kg m-2 s-1]: direct runoff from sealed surfaces, saturation excess, infiltration
    excess and gravity drainage K(θ)·ρ_w, with drainage limited to the water above the residual."""
    rel = (storage / capacity).clamp(0.0, 1.0)
    sealed = impervious * precip
    infil_input = precip - sealed
    saturation_excess = infil_input * rel**soil.runoff_shape
    infiltration = infil_input - saturation_excess
    infiltration_excess = (infiltration - soil.k_sat * C.RHO_WATER).clamp_min(0.0)
    floor = capacity * soil.theta_residual / soil.porosity
    drainage = soil.k_sat * C.RHO_WATER * rel ** (2.0 * soil.b + 3.0)
    drainage = torch.minimum(drainage, ((storage - floor) / dt).clamp_min(0.0))
    return sealed + saturation_excess + infiltration_excess + drainage


def _tridiagonal3(
    d1: Tensor, d2: Tensor, d3: Tensor, k12: float, k23: float, r1: Tensor, r2: Tensor, r3: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Solve [d1, -k12, 0; -k12, d2, -k23; 0, -k23, d3] x = r (Thomas algorithm)."""
    m2 = -k12 / d1
    d2p = d2 + m2 * k12
    r2p = r2 - m2 * r1
    m3 = -k23 / d2p
    d3p = d3 + m3 * k23
    x3 = (r3 - m3 * r2p) / d3p
    x2 = (r2p + k23 * x3) / d2p
    x1 = (r1 + k12 * x2) / d1
    return x1, x2, x3


def _layer_terms(heat_capacity_scale: Tensor, soil: SoilConfig, dt: float):
    dz = soil.layer_thickness
    cap = [soil.heat_capacity * heat_capacity_scale * d / dt for d in dz]  # W m-2 K-1
    k12 = soil.conductivity / (0.5 * (dz[0] + dz[1]))
    k23 = soil.conductivity / (0.5 * (dz[1] + dz[2]))
    return cap, k12, k23


def conduct_heat(
    t_layers: Tensor,
    ground_flux: Tensor,
    heat_capacity_scale: Tensor,
    soil: SoilConfig,
    dt: float,
) -> Tensor:
    """Backward-Euler step of 3-layer conduction. ``t_layers`` (..., 3) K; ``ground_flux`` (...)
    W m-2 into the top layer; zero flux at the bottom. Returns new (..., 3) temperatures; the
    column heat content changes by exactly ``ground_flux``·dt (to round-off)."""
    cap, k12, k23 = _layer_terms(heat_capacity_scale, soil, dt)
    t1, t2, t3 = t_layers.unbind(-1)
    x = _tridiagonal3(
        cap[0] + k12,
        cap[1] + k12 + k23,
        cap[2] + k23,
        k12,
        k23,
        cap[0] * t1 + ground_flux,
        cap[1] * t2,
        cap[2] * t3,
    )
    return torch.stack(x, dim=-1)


def surface_coupling(
    t_layers: Tensor,
    kappa: Tensor,
    heat_capacity_scale: Tensor,
    soil: SoilConfig,
    dt: float,
) -> tuple[Tensor, Tensor]:
    """Implicit surface-soil coupling: with the skin at T_s joined to layer 1 by a conductance
    κ [W m-2 K-1], the backward-Euler column gives T_1' = α T_s + β, so the ground heat flux is
    G(T_s) = κ ((1 − α) T_s − β), linear in T_s. Returns (κ (1 − α), κ β). Using this G in the
    surface energy balance keeps long steps (a day) stable, unlike an explicit G = κ (T_s − T_1)."""
    cap, k12, k23 = _layer_terms(heat_capacity_scale, soil, dt)
    t1, t2, t3 = t_layers.unbind(-1)
    d1 = cap[0] + k12 + kappa
    d2, d3 = cap[1] + k12 + k23, cap[2] + k23
    beta, _, _ = _tridiagonal3(d1, d2, d3, k12, k23, cap[0] * t1, cap[1] * t2, cap[2] * t3)
    zero = torch.zeros_like(t1)
    unit, _, _ = _tridiagonal3(d1, d2, d3, k12, k23, kappa + zero, zero, zero)
    return kappa * (1.0 - unit), kappa * beta


def column_heat_content(t_layers: Tensor, heat_capacity_scale: Tensor, soil: SoilConfig) -> Tensor:
    """Σ C_i dz_i T_i [J m-2] (for conservation checks)."""
    dz = torch.tensor(soil.layer_thickness, dtype=t_layers.dtype)
    return soil.heat_capacity * heat_capacity_scale * (t_layers * dz).sum(-1)
