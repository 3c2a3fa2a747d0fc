"""Thermodynamic and radiative derivations used to complete forcing records: pure functions.

Units are in each docstring (SI unless the cited equation is written otherwise; FAO-56 forms take
degrees Celsius and kPa, as published). Citations (full entries in ``_references.py``):

* FAO-56: Allen, Pereira, Raes & Smith (1998), eqs. 7, 11, 14, 37 and the 2 m s-1 default wind.
* Brutsaert (1975): clear-sky emissivity ε_clr = 1.24 (e/T)^(1/7), e in hPa, T in K.
* Crawford & Duchon (1999): all-sky emissivity ε = clf + (1 − clf) ε_clr, cloud fraction clf.
* Kasten & Czeplak (1980): cloud attenuation of global radiation 1 − 0.75 (N/8)^3.4.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from emulators import physics
from emulators.constants import STEFAN_BOLTZMANN, T_FREEZE

F64 = NDArray[np.float64]


def _f(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def saturation_vapour_pressure(t_celsius: ArrayLike) -> F64:
    """e°(T) = 0.6108 exp(17.27 T / (T + 237.3)) [kPa], T in °C (FAO-56 eq. 11; Tetens 1930,
    Murray 1967). e°(20 °C) = 2.338 kPa (FAO-56 Annex 2, Table 2.3). Delegates to
    :func:`emulators.physics.saturation_vapour_pressure` (K, Pa)."""
    t = torch.as_tensor(_f(t_celsius) + T_FREEZE)
    return physics.saturation_vapour_pressure(t).numpy() / 1000.0


def vapour_pressure_from_dewpoint(tdew_celsius: ArrayLike) -> F64:
    """Actual vapour pressure e_a = e°(T_dew) [kPa] (FAO-56 eq. 14)."""
    return saturation_vapour_pressure(tdew_celsius)


def specific_humidity(e_pa: ArrayLike, p_pa: ArrayLike) -> F64:
    """Specific humidity q = ε e / (p − (1 − ε) e) [kg kg-1] from vapour pressure e and total
    pressure p (both Pa), ε = R_d/R_v ≈ 0.622 (exact relation, e.g. Wallace & Hobbs 2006 §3.5)."""
    q = physics.specific_humidity_from_vapour_pressure(
        torch.as_tensor(_f(e_pa)), torch.as_tensor(_f(p_pa))
    )
    return q.numpy()


def vapour_pressure_from_specific_humidity(q: ArrayLike, p_pa: ArrayLike) -> F64:
    """Inverse of :func:`specific_humidity`: e = q p / (ε + (1 − ε) q) [Pa]."""
    e = physics.vapour_pressure_from_specific_humidity(
        torch.as_tensor(_f(q)), torch.as_tensor(_f(p_pa))
    )
    return e.numpy()


def pressure_from_elevation(z_m: ArrayLike) -> F64:
    """Standard-atmosphere surface pressure p = 101.3 ((293 − 0.0065 z)/293)^5.26 kPa, returned in
    Pa; z in m above sea level (FAO-56 eq. 7)."""
    return 101.3e3 * ((293.0 - 0.0065 * _f(z_m)) / 293.0) ** 5.26


def clear_sky_emissivity_brutsaert(e_pa: ArrayLike, t_k: ArrayLike) -> F64:
    """Clear-sky atmospheric emissivity ε_clr = 1.24 (e/T)^(1/7) [1], e in hPa and T in K
    (Brutsaert 1975)."""
    e_hpa = np.clip(_f(e_pa), 0.0, None) / 100.0
    return 1.24 * (e_hpa / _f(t_k)) ** (1.0 / 7.0)


def all_sky_emissivity_crawford_duchon(eps_clear: ArrayLike, cloud_fraction: ArrayLike) -> F64:
    """All-sky emissivity ε = clf + (1 − clf) ε_clr [1] (Crawford & Duchon 1999), with
    ``cloud_fraction`` clf in [0, 1]: clouds radiate as black bodies at air temperature."""
    clf = np.clip(_f(cloud_fraction), 0.0, 1.0)
    return clf + (1.0 - clf) * _f(eps_clear)


def downwelling_longwave(t_k: ArrayLike, e_pa: ArrayLike, cloud_fraction: ArrayLike) -> F64:
    """Downwelling longwave at the surface rlds = ε σ T⁴ [W m-2] with Brutsaert (1975) clear-sky
    emissivity and the Crawford & Duchon (1999) cloud correction. T air temperature [K], e vapour
    pressure [Pa], cloud fraction [1]."""
    eps = all_sky_emissivity_crawford_duchon(
        clear_sky_emissivity_brutsaert(e_pa, t_k), cloud_fraction
    )
    return eps * STEFAN_BOLTZMANN * _f(t_k) ** 4


def clear_sky_transmissivity_fao56(z_m: ArrayLike) -> F64:
    """Clear-sky broadband transmissivity Rso/Ra = 0.75 + 2e-5 z [1], z in m (FAO-56 eq. 37)."""
    return 0.75 + 2e-5 * _f(z_m)


def cloud_fraction_from_transmissivity(rs: ArrayLike, rso: ArrayLike) -> F64:
    """Cloud fraction clf = 1 − Rs/Rso clipped to [0, 1] (Crawford & Duchon 1999); Rs the
    observed and Rso the clear-sky global radiation (same units). Where Rso = 0 the result is 0."""
    rso_a = _f(rso)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(rso_a > 0.0, _f(rs) / rso_a, 1.0)
    return np.clip(1.0 - s, 0.0, 1.0)


def cloud_attenuation_kasten_czeplak(cloud_fraction: ArrayLike) -> F64:
    """Global-radiation ratio G/G_clear = 1 − 0.75 c^3.4 [1] for cloud fraction c in [0, 1]
    (Kasten & Czeplak 1980, with c = N/8)."""
    c = np.clip(_f(cloud_fraction), 0.0, 1.0)
    return 1.0 - 0.75 * c**3.4


def wind_speed_2m_fao56(u_z: ArrayLike, z_m: float) -> F64:
    """Wind speed at 2 m from a measurement at height z [m s-1]: u2 = uz 4.87 / ln(67.8 z − 5.42)
    (FAO-56 eq. 47, logarithmic profile over short grass)."""
    if z_m <= 0.08:
        raise ValueError(f"z_m: measurement height must be > 0.08 m for FAO-56 eq. 47, got {z_m}")
    return _f(u_z) * 4.87 / np.log(67.8 * z_m - 5.42)


#: FAO-56 (ch. 3, "Missing wind speed data"): 2 m s-1 at 2 m, the average over 2000 stations.
FAO56_DEFAULT_WIND_2M = 2.0


def celsius_to_kelvin(t_celsius: ArrayLike) -> F64:
    """T [K] from T [°C]."""
    return _f(t_celsius) + T_FREEZE
