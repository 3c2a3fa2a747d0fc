"""Surfaces under the simplified atmosphere: the ocean's bulk fluxes, the ``LandSurface`` seam
through which the land's fluxes arrive, and a bucket land for standalone use.

The coupled runs get the land's fluxes from the landcoupler service (``coupler.atmosphere.
service_land``); :class:`BucketLand` (Manabe 1969) is a stand-in that needs no service, used
to spin up the atmosphere, to calibrate it, and in tests of the column model. It is not the
land model of landcoupler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from coupler.atmosphere import physics as phys
from emulators import constants as C

#: The land fields the atmosphere consumes (registry names, SI units, fluxes positive upward).
LAND_FLUXES: tuple[str, ...] = ("hfls", "hfss", "rlus", "rsus", "evspsbl", "ts", "albedo")


@runtime_checkable
class LandSurface(Protocol):
    """Whatever returns the land's fluxes for the land cells, step by step."""

    def exchange(self, index: int, forcing: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Step ``index``: the registry's forcing fields (land cells,) in, at least
        :data:`LAND_FLUXES` (land cells,) out."""
        ...


@dataclass(frozen=True)
class OceanConfig:
    """Open-ocean surface constants. albedo: 0.06 (Payne 1972, JAS 29, 959, the mean open-water
    albedo); emissivity 0.97; bulk transfer coefficients C_H = C_E = 1.2e-3 (Large & Yeager
    2004)."""

    albedo: float = 0.06
    emissivity: float = 0.97
    ch: float = 1.2e-3
    ce: float = 1.2e-3

    def __post_init__(self) -> None:
        for name in ("albedo", "emissivity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must lie in [0, 1], got {getattr(self, name)}")
        for name in ("ch", "ce"):
            if not 0.0 < getattr(self, name) < 0.05:
                raise ValueError(f"{name}: must lie in (0, 0.05), got {getattr(self, name)}")


def ocean_fluxes(
    cfg: OceanConfig,
    sst: np.ndarray,
    tas: np.ndarray,
    huss: np.ndarray,
    wind: np.ndarray,
    ps: np.ndarray,
    rsds: np.ndarray,
    rlds: np.ndarray,
) -> dict[str, np.ndarray]:
    """Bulk fluxes of the open ocean [W m-2 up; evspsbl kg m-2 s-1 up] with the registry's names:
    rsus = α rsds, rlus = ε σ SST⁴ + (1 − ε) rlds, H and E by bulk formulas, hfls = L_v E."""
    rho = phys.air_density(tas, huss, ps)
    evap = phys.bulk_evaporation(
        rho, wind, phys.saturation_specific_humidity(sst, ps), huss, cfg.ce
    )
    return {
        "rsus": cfg.albedo * rsds,
        "rlus": phys.upwelling_longwave(sst, rlds, cfg.emissivity),
        "hfss": phys.bulk_sensible_heat(rho, wind, sst, tas, cfg.ch),
        "evspsbl": evap,
        "hfls": phys.L_V * evap,
    }


@dataclass(frozen=True)
class BucketConfig:
    """Manabe (1969, MWR 97, 739) bucket: field capacity 150 kg m-2, evaporation efficiency
    β = min(1, W / (0.75 W_fc)); surface heat capacity 2e6 J m-2 K-1 (≈ 1 m of moist soil);
    albedo 0.2, emissivity 0.95, C_H = C_E = 3e-3 (rough land)."""

    capacity: float = 150.0
    heat_capacity: float = 2.0e6
    albedo: float = 0.2
    emissivity: float = 0.95
    ch: float = 3.0e-3
    ce: float = 3.0e-3

    def __post_init__(self) -> None:
        if self.capacity <= 0 or self.heat_capacity <= 0:
            raise ValueError("capacity and heat_capacity must be > 0")
        if not 0.0 <= self.albedo <= 1.0 or not 0.0 < self.emissivity <= 1.0:
            raise ValueError("albedo must lie in [0, 1] and emissivity in (0, 1]")


class BucketLand:
    """A standalone land surface (see module docstring): skin temperature with one heat capacity,
    solved implicitly (linearised) every step, and a bucket of soil water."""

    def __init__(self, n_cells: int, dt: float, config: BucketConfig | None = None) -> None:
        self.config = config or BucketConfig()
        self.dt = float(dt)
        self.ts = np.full(n_cells, 288.0)
        self.water = np.full(n_cells, 0.75 * self.config.capacity)
        self._initialised = False

    def exchange(self, index: int, forcing: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cfg, dt = self.config, self.dt
        ta, qa, ps = forcing["tas"], forcing["huss"], forcing["ps"]
        wind, pr = forcing["sfcWind"], forcing["pr"]
        rsds, rlds = forcing["rsds"], forcing["rlds"]
        if not self._initialised:
            self.ts = np.array(ta, dtype=np.float64)
            self._initialised = True
        beta = np.minimum(1.0, self.water / (0.75 * cfg.capacity))
        rho = phys.air_density(ta, qa, ps)
        t0 = self.ts
        qs0 = phys.saturation_specific_humidity(t0, ps)
        dqs = (phys.saturation_specific_humidity(t0 + 0.01, ps) - qs0) / 0.01
        beta_eff = np.where(qs0 < qa, 1.0, beta)  # dew forms at full efficiency
        k_h = rho * C.CP_AIR * cfg.ch * wind
        k_e = rho * phys.L_V * cfg.ce * wind * beta_eff
        sigma_t3 = cfg.emissivity * C.STEFAN_BOLTZMANN * t0**3
        absorbed = (1.0 - cfg.albedo) * rsds + cfg.emissivity * rlds
        # linearised f(T) = absorbed − εσT⁴ − k_h (T − Ta) − k_e (qs(T) − qa) − C (T − T0)/dt = 0
        resid = absorbed - sigma_t3 * t0 - k_h * (t0 - ta) - k_e * (qs0 - qa)
        slope = 4.0 * sigma_t3 + k_h + k_e * dqs + cfg.heat_capacity / dt
        t1 = t0 + resid / slope
        evap = k_e * (qs0 + dqs * (t1 - t0) - qa) / phys.L_V
        evap = np.minimum(evap, self.water / dt + pr)  # cannot evaporate more than it holds
        water = self.water + (pr - evap) * dt
        self.water = np.clip(water, 0.0, cfg.capacity)  # the excess runs off
        self.ts = t1
        rlus = phys.upwelling_longwave(t1, rlds, cfg.emissivity)
        return {
            "hfls": phys.L_V * evap,
            "hfss": k_h * (t1 - ta),
            "rlus": rlus,
            "rsus": cfg.albedo * rsds,
            "evspsbl": evap,
            "ts": t1,
            "albedo": np.full_like(t1, cfg.albedo),
        }
