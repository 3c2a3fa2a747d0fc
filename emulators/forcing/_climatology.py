"""Zonal-mean climatology shapes for the synthetic weather generator: pure functions of latitude
[degrees], day of year and land fraction [0..1]. Shapes, not a reanalysis: each is a smooth curve
with the right order of magnitude and the right latitudinal structure, as stated per function.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emulators.constants import DAYS_PER_JULIAN_YEAR

F64 = NDArray[np.float64]

T0_GLOBAL = 287.0  # K, global-mean surface air temperature (≈ observed 287–288 K)
T2_LEGENDRE = -26.0  # K, P2 coefficient: 300 K at the equator, 261 K at the poles
LAPSE_RATE = 0.0065  # K m-1, standard atmosphere


def _g(x: ArrayLike, width: float) -> F64:
    """Unit Gaussian bump exp(−x²/(2 width²))."""
    xx = np.asarray(x, dtype=np.float64)
    return np.exp(-0.5 * (xx / width) ** 2)


def annual_mean_temperature(lat: ArrayLike, elevation: ArrayLike) -> F64:
    """Annual-mean near-surface temperature [K]: T0 + T2 P2(sin φ) (second Legendre polynomial,
    the zonal-mean fit of North et al. 1981) minus a 6.5 K km-1 lapse rate with elevation [m]."""
    x = np.sin(np.deg2rad(np.asarray(lat, dtype=np.float64)))
    p2 = 0.5 * (3.0 * x**2 - 1.0)
    return T0_GLOBAL + T2_LEGENDRE * p2 - LAPSE_RATE * np.asarray(elevation, dtype=np.float64)


def seasonal_anomaly(lat: ArrayLike, doy: ArrayLike, land: ArrayLike) -> F64:
    """Seasonal temperature anomaly [K]: amplitude (1 + 15 sin²φ) K over land, 40 % of it over
    ocean, coldest about 20 January in the north (20 July in the south), i.e. a month after the
    solstice."""
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
    amp = (1.0 + 15.0 * np.sin(phi) ** 2) * (0.4 + 0.6 * np.asarray(land, dtype=np.float64))
    phase = np.cos(2.0 * np.pi * (np.asarray(doy, dtype=np.float64) - 20.0) / DAYS_PER_JULIAN_YEAR)
    return -amp * np.sign(phi) * phase


def relative_humidity_mean(lat: ArrayLike, land: ArrayLike) -> F64:
    """Mean near-surface relative humidity [1]: 0.78 over land with a subtropical dry belt
    (0.50 at 25°), 0.80 over ocean."""
    a = np.abs(np.asarray(lat, dtype=np.float64))
    rh_land = 0.78 - 0.28 * _g(a - 25.0, 9.0)
    lf = np.asarray(land, dtype=np.float64)
    return lf * rh_land + (1.0 - lf) * 0.80


def diurnal_range(lat: ArrayLike, land: ArrayLike) -> F64:
    """Mean diurnal temperature range [K]: over land (3 + 26 (1 − RH)) (0.3 + 0.7 cos φ) K
    (≈ 9 K humid tropics, ≈ 16 K dry subtropics: drier air, larger range; shrinking towards
    the poles with the diurnal range of insolation, ≈ 4 K at 80°), 1 K over ocean."""
    lf = np.asarray(land, dtype=np.float64)
    rh_land = relative_humidity_mean(lat, np.ones_like(lf))
    damp = 0.3 + 0.7 * np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))
    return lf * (3.0 + 26.0 * (1.0 - rh_land)) * damp + (1.0 - lf) * 1.0


def itcz_latitude(doy: ArrayLike) -> F64:
    """Latitude of the intertropical convergence zone [degrees]: ±6°, northernmost in August."""
    return 6.0 * np.sin(
        2.0 * np.pi * (np.asarray(doy, dtype=np.float64) - 105.0) / DAYS_PER_JULIAN_YEAR
    )


def cloud_fraction_mean(lat: ArrayLike, doy: ArrayLike) -> F64:
    """Mean cloud fraction [1]: ≈ 0.74 in the ITCZ, ≈ 0.33 in the subtropics, ≈ 0.74 in the
    mid-latitude storm tracks, ≈ 0.62 at the poles."""
    la = np.asarray(lat, dtype=np.float64)
    a = np.abs(la)
    c = 0.62 + 0.12 * _g(la - itcz_latitude(doy), 10.0) - 0.30 * _g(a - 22.0, 8.0)
    return np.clip(c + 0.12 * _g(a - 58.0, 12.0), 0.05, 0.95)


def precipitation_mean(lat: ArrayLike, doy: ArrayLike) -> F64:
    """Mean precipitation [mm d-1]: ITCZ peak ≈ 6.5 following the seasonal ITCZ, ≈ 1 in the
    subtropics, ≈ 3 in the mid-latitude storm tracks, ≈ 0.3 at the poles."""
    la = np.asarray(lat, dtype=np.float64)
    a = np.abs(la)
    base = 0.3 + 0.4 * np.cos(np.deg2rad(la))
    return base + 5.5 * _g(la - itcz_latitude(doy), 9.0) + 2.4 * _g(a - 48.0, 11.0)


def wet_day_fraction(p_mean: ArrayLike) -> F64:
    """Fraction of wet days [1] given mean precipitation [mm d-1]: 0.12 + 0.11 P, in
    [0.08, 0.8] (≈ 0.23 at 1 mm d-1, ≈ 0.45 at 3 mm d-1)."""
    return np.clip(0.12 + 0.11 * np.asarray(p_mean, dtype=np.float64), 0.08, 0.8)


def wind_mean(lat: ArrayLike, land: ArrayLike) -> F64:
    """Mean 10 m wind speed [m s-1]: ≈ 3 over land with westerly (50°) and trade-wind (15°)
    maxima, twice that over ocean."""
    a = np.abs(np.asarray(lat, dtype=np.float64))
    w_land = 3.0 + 1.2 * _g(a - 50.0, 12.0) + 0.8 * _g(a - 15.0, 7.0)
    lf = np.asarray(land, dtype=np.float64)
    return w_land * (lf + 2.0 * (1.0 - lf))


def temperature_noise_std(lat: ArrayLike) -> F64:
    """Standard deviation of synoptic temperature anomalies [K]: 1 + 4 sin²φ."""
    return 1.0 + 4.0 * np.sin(np.deg2rad(np.asarray(lat, dtype=np.float64))) ** 2


def pressure_noise_rel_std(lat: ArrayLike) -> F64:
    """Relative standard deviation of synoptic surface-pressure anomalies [1]: 0.3 % + 0.9 %
    sin²φ (≈ 300 Pa in the tropics, ≈ 1200 Pa at high latitudes)."""
    return 0.003 + 0.009 * np.sin(np.deg2rad(np.asarray(lat, dtype=np.float64))) ** 2
