"""Prescribed climatologies of the simplified atmosphere: sea-surface temperature, near-surface
wind speed and surface pressure, and the initial atmospheric state.

No observational data set ships with the installed packages, so these are analytic fits,
landcoupler's own, to the familiar zonal means of standard climatologies (e.g. the figures in
Hartmann 2016, *Global Physical Climatology*, ch. 7 and 8), and are documented as such:

- SST: T(φ) = T_f + (T_eq − T_f) exp(−(|φ|/φ₀)^p), T_eq = 27.5 °C, T_f = −1.8 °C (sea water
  freezing), φ₀ = 49.9°, p = 2.71: about 27.5 °C at the equator, 21 °C at 30°, 12 °C at 45°,
  4 °C at 60°, near freezing poleward of 75°. The seasonal cycle moves the profile north and
  south by 5° (northernmost in late August, ~2 months after the solstice, the ocean's lag).
  Neale & Hoskins (2000)'s QOBS profile has the same shape but is 5–7 K colder in mid-latitudes.
- Wind speed over the ocean (m s-1), piecewise linear in latitude through: 5 at the equator
  (doldrums), 7.5 at 15° (trades), 5.5 at 30° (subtropical highs), 9 at 50° (westerlies; 10 in
  the southern ocean), 6 at 70°, 5 at the poles, with the same seasonal shift and the westerlies
  1.5 m s-1 stronger in winter. Over land ×0.55 (rougher surface), at least 1.5 m s-1.
- Surface pressure: 101 325 Pa everywhere (no orography).
"""

from __future__ import annotations

import numpy as np

from coupler.atmosphere import physics as phys

SST_EQUATOR = 273.15 + 27.5
SST_FREEZING = 273.15 - 1.8
SST_WIDTH = 49.9  # degrees
SST_POWER = 2.71
SEASONAL_SHIFT = 5.0  # degrees of latitude
SEASON_PEAK_DAY = 232.0  # day of year of the northernmost position
SURFACE_PRESSURE = 101_325.0
LAND_WIND_FACTOR = 0.55
MIN_LAND_WIND = 1.5

_WIND_LAT = np.array([-90.0, -70.0, -50.0, -30.0, -15.0, 0.0, 15.0, 30.0, 50.0, 70.0, 90.0])
_WIND_SPEED = np.array([5.0, 6.0, 10.0, 5.5, 7.5, 5.0, 7.5, 5.5, 9.0, 6.0, 5.0])


def seasonal_shift(day_of_year: float) -> float:
    """Northward displacement [degrees] of the SST and wind profiles on ``day_of_year``."""
    return float(SEASONAL_SHIFT * np.cos(2.0 * np.pi * (day_of_year - SEASON_PEAK_DAY) / 365.0))


def sst(lat_deg: np.ndarray, day_of_year: float) -> np.ndarray:
    """Climatological SST [K] (see module docstring)."""
    x = np.abs(np.asarray(lat_deg, dtype=np.float64) - seasonal_shift(day_of_year)) / SST_WIDTH
    return SST_FREEZING + (SST_EQUATOR - SST_FREEZING) * np.exp(-(x**SST_POWER))


def sst_tendency(lat_deg: np.ndarray, day_of_year: float, dt: float) -> np.ndarray:
    """d SST / dt [K s-1] of the climatology, centred difference over ``dt`` s."""
    half = 0.5 * dt / 86_400.0
    return (sst(lat_deg, day_of_year + half) - sst(lat_deg, day_of_year - half)) / dt


def wind_speed(lat_deg: np.ndarray, land_fraction: np.ndarray, day_of_year: float) -> np.ndarray:
    """Climatological near-surface wind speed [m s-1] (see module docstring); over a cell's land
    part the land factor applies, and a cell's value is the land-fraction-weighted mean."""
    lat = np.asarray(lat_deg, dtype=np.float64)
    shifted = lat - seasonal_shift(day_of_year)
    ocean = np.interp(shifted, _WIND_LAT, _WIND_SPEED)
    # winter westerlies: +1.5 in the winter hemisphere's 35-65 degree band
    winter_north = np.cos(2.0 * np.pi * (day_of_year - 15.0) / 365.0)  # +1 mid-January
    band = np.clip(1.0 - np.abs(np.abs(lat) - 50.0) / 15.0, 0.0, 1.0)
    winter = np.where(lat >= 0.0, winter_north, -winter_north)
    ocean = ocean + 1.5 * band * np.maximum(winter, 0.0)
    land = np.maximum(LAND_WIND_FACTOR * ocean, MIN_LAND_WIND)
    f = np.asarray(land_fraction, dtype=np.float64)
    return f * land + (1.0 - f) * ocean


def land_wind_speed(lat_deg: np.ndarray, day_of_year: float) -> np.ndarray:
    """The wind speed over land [m s-1] (what the land side receives)."""
    return wind_speed(lat_deg, np.ones_like(np.asarray(lat_deg, dtype=np.float64)), day_of_year)


def surface_pressure(n_cells: int) -> np.ndarray:
    """Surface pressure [Pa] (no orography)."""
    return np.full(n_cells, SURFACE_PRESSURE)


def initial_state(lat_deg: np.ndarray, day_of_year: float) -> tuple[np.ndarray, np.ndarray]:
    """(tas [K], huss [kg kg-1]) to start from: 1 K below the climatological SST of the latitude,
    at 75 % relative humidity. A spin-up removes the memory of this guess."""
    t = sst(lat_deg, day_of_year) - 1.0
    q = 0.75 * phys.saturation_specific_humidity(t, SURFACE_PRESSURE)
    return t, q
