"""Solar geometry and top-of-atmosphere (TOA) insolation: pure, vectorised functions.

Angles are radians unless a name ends in ``_deg``; times are ``numpy.datetime64`` in UTC.
Two parameter sets are provided on purpose:

* Spencer (1971) Fourier series (declination, Earth–Sun distance factor) with the equation of
  time in the form given by Iqbal (1983, eq. 1.4.1) — used for interval-mean TOA irradiance
  (disaggregation shapes, the synthetic generator).
* The FAO-56 forms (Allen et al. 1998, eqs. 21–25) — used where a result is compared with or
  fed into FAO-56 (daily Ra, clear-sky radiation Rso), so that worked examples reproduce.

The interval mean of the horizontal TOA irradiance is integrated *analytically* over the hour
angle (Iqbal 1983, §1.5; the same integral as FAO-56 eq. 28 for hourly Ra), so that interval
means over any partition of a day add up exactly to the daily integral.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emulators.constants import SECONDS_PER_DAY, SOLAR_CONSTANT

F64 = NDArray[np.float64]

#: FAO-56 solar constant Gsc = 0.0820 MJ m-2 min-1, expressed in W m-2 (Allen et al. 1998, eq. 21).
SOLAR_CONSTANT_FAO56 = 0.0820e6 / 60.0


def day_of_year(time: ArrayLike) -> F64:
    """Fractional day of year (1.0 at 00:00 UTC on 1 January) of UTC ``time`` (datetime64)."""
    t = np.asarray(time, dtype="datetime64[ns]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[ns]")
    return 1.0 + (t - year_start).astype(np.int64) / (SECONDS_PER_DAY * 1e9)


def utc_hour(time: ArrayLike) -> F64:
    """Hour of the UTC day in [0, 24) of ``time`` (datetime64)."""
    t = np.asarray(time, dtype="datetime64[ns]")
    day_start = t.astype("datetime64[D]").astype("datetime64[ns]")
    return (t - day_start).astype(np.int64) / 3.6e12


def day_angle(doy: ArrayLike) -> F64:
    """Spencer's day angle Γ = 2π (doy − 1) / 365 [rad]; ``doy`` may be fractional."""
    return 2.0 * np.pi * (np.asarray(doy, dtype=np.float64) - 1.0) / 365.0


def declination(doy: ArrayLike) -> F64:
    """Solar declination δ [rad], Spencer (1971) Fourier series (max error ≈ 0.0006 rad)."""
    g = day_angle(doy)
    return (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )


def eccentricity_factor(doy: ArrayLike) -> F64:
    """(r0/r)², the Earth–Sun distance correction to the solar constant [1], Spencer (1971)."""
    g = day_angle(doy)
    return (
        1.000110
        + 0.034221 * np.cos(g)
        + 0.001280 * np.sin(g)
        + 0.000719 * np.cos(2 * g)
        + 0.000077 * np.sin(2 * g)
    )


def equation_of_time(doy: ArrayLike) -> F64:
    """Equation of time [hours] (apparent minus mean solar time), Spencer (1971) via Iqbal
    (1983, eq. 1.4.1); within ±0.28 h over the year."""
    g = day_angle(doy)
    minutes = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    return minutes / 60.0


def declination_fao56(doy: ArrayLike) -> F64:
    """Solar declination δ = 0.409 sin(2πJ/365 − 1.39) [rad], FAO-56 eq. 24."""
    return 0.409 * np.sin(2.0 * np.pi * np.asarray(doy, dtype=np.float64) / 365.0 - 1.39)


def inverse_distance_fao56(doy: ArrayLike) -> F64:
    """Inverse relative Earth–Sun distance dr = 1 + 0.033 cos(2πJ/365) [1], FAO-56 eq. 23."""
    return 1.0 + 0.033 * np.cos(2.0 * np.pi * np.asarray(doy, dtype=np.float64) / 365.0)


def sunset_hour_angle(lat_deg: ArrayLike, decl: ArrayLike) -> F64:
    """Sunset hour angle ωs = arccos(−tan φ tan δ) [rad] (FAO-56 eq. 25), clipped to [0, π]
    for polar night (0) and polar day (π)."""
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    d = np.asarray(decl, dtype=np.float64)
    # −tanφ tanδ written as −(sinφ sinδ)/(cosφ cosδ) is undefined at the poles; clip instead.
    with np.errstate(divide="ignore", invalid="ignore"):
        x = -np.tan(phi) * np.tan(d)
    return np.arccos(np.clip(np.nan_to_num(x, nan=0.0), -1.0, 1.0))


def daylight_hours(lat_deg: ArrayLike, decl: ArrayLike) -> F64:
    """Day length N = 24 ωs / π [hours] (FAO-56 eq. 34)."""
    return 24.0 / np.pi * sunset_hour_angle(lat_deg, decl)


def ra_daily_fao56(
    lat_deg: ArrayLike, doy: ArrayLike, solar_constant: float = SOLAR_CONSTANT_FAO56
) -> F64:
    """Daily extraterrestrial radiation Ra [J m-2 d-1], FAO-56 eq. 21 with eqs. 23–25.

    ``solar_constant`` in W m-2 (default: FAO-56's Gsc = 0.0820 MJ m-2 min-1 ≈ 1366.7 W m-2).
    FAO-56 example 8: 20°S, 3 September (J = 246) gives Ra = 32.2 MJ m-2 d-1.
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    d = declination_fao56(doy)
    ws = sunset_hour_angle(lat_deg, d)
    dr = inverse_distance_fao56(doy)
    return (
        SECONDS_PER_DAY
        / np.pi
        * solar_constant
        * dr
        * (ws * np.sin(phi) * np.sin(d) + np.cos(phi) * np.cos(d) * np.sin(ws))
    )


def _clipped_cosine_antiderivative(
    omega: F64, sin_omega: F64, a: F64, b: F64, ws: F64, sin_ws: F64, period: F64
) -> F64:
    """∫_{-π}^{ω} max(0, a + b cos x) dx for any real ω (periodic continuation), b ≥ 0, given
    sin ω, the half-day length ws = arccos(clip(−a/b, −1, 1)), sin ws and the integral over one
    period 2 (a ws + b sin ws)."""
    turns = np.floor((omega + np.pi) * (0.5 / np.pi))
    x = omega - (2.0 * np.pi) * turns  # in [-π, π), sin x = sin ω
    inside = a * (x + ws) + b * (sin_omega + sin_ws)
    partial = np.where(x < -ws, 0.0, np.where(x > ws, period, inside))
    return turns * period + partial


def toa_mean_irradiance(
    time_start: ArrayLike,
    dt_seconds: float,
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    solar_constant: float = SOLAR_CONSTANT,
) -> F64:
    """Mean TOA irradiance on a horizontal surface over [t, t + dt) [W m-2].

    ``time_start`` (time,) UTC datetime64; ``lat_deg``/``lon_deg`` (cell,) degrees. Returns
    (time, cell). Declination, distance factor and equation of time are Spencer's, evaluated once
    per UTC day (at 12:00 UTC of the day the interval starts in; δ changes by < 0.5° a day);
    the cosine of the solar zenith angle, clipped at zero, is integrated exactly over the hour
    angle (Iqbal 1983, §1.5). Local apparent solar time = UTC + lon/15 + EoT.
    """
    t = np.asarray(time_start, dtype="datetime64[ns]").reshape(-1)
    lat = np.asarray(lat_deg, dtype=np.float64).reshape(-1)
    lon = np.asarray(lon_deg, dtype=np.float64).reshape(-1)
    if dt_seconds <= 0:
        raise ValueError(f"dt_seconds: must be > 0, got {dt_seconds}")
    days, inv = np.unique(t.astype("datetime64[D]"), return_inverse=True)
    doy = day_of_year(days.astype("datetime64[ns]") + np.timedelta64(12, "h"))
    decl = declination(doy)[:, None]
    phi = np.deg2rad(lat)[None, :]
    a_day = np.sin(phi) * np.sin(decl)  # (day, cell)
    b_day = np.clip(np.cos(phi) * np.cos(decl), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b_day > 0.0, -a_day / b_day, np.where(a_day > 0.0, -np.inf, np.inf))
    ws_day = np.arccos(np.clip(ratio, -1.0, 1.0))
    sws_day = np.sin(ws_day)
    period_day = 2.0 * (a_day * ws_day + b_day * sws_day)
    a, b, ws, sws, period = (arr[inv] for arr in (a_day, b_day, ws_day, sws_day, period_day))
    # hour angle ω = α(t) + β(lon): separable, so sin ω needs no per-element transcendental
    alpha1 = (utc_hour(t) + equation_of_time(doy)[inv] - 12.0) * (np.pi / 12.0)
    dw = dt_seconds / 3600.0 * (np.pi / 12.0)
    alpha2 = alpha1 + dw
    beta = np.deg2rad(lon)
    sb, cb = np.sin(beta)[None, :], np.cos(beta)[None, :]
    omega1 = alpha1[:, None] + beta[None, :]
    omega2 = omega1 + dw
    sin1 = np.sin(alpha1)[:, None] * cb + np.cos(alpha1)[:, None] * sb
    sin2 = np.sin(alpha2)[:, None] * cb + np.cos(alpha2)[:, None] * sb
    integral = _clipped_cosine_antiderivative(
        omega2, sin2, a, b, ws, sws, period
    ) - _clipped_cosine_antiderivative(omega1, sin1, a, b, ws, sws, period)
    e0 = eccentricity_factor(doy)[inv][:, None]
    return np.clip(solar_constant * e0 * integral / dw, 0.0, None)


def cos_zenith(time: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike) -> F64:
    """Instantaneous cosine of the solar zenith angle (time, cell), clipped at 0 (Spencer/Iqbal)."""
    t = np.asarray(time, dtype="datetime64[ns]").reshape(-1)
    doy = day_of_year(t)[:, None]
    decl = declination(doy)
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64).reshape(-1))[None, :]
    lon = np.asarray(lon_deg, dtype=np.float64).reshape(-1)[None, :]
    solar_hour = utc_hour(t)[:, None] + lon / 15.0 + equation_of_time(doy)
    w = (solar_hour - 12.0) * (np.pi / 12.0)
    mu = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(w)
    return np.clip(mu, 0.0, None)
