"""Daily weather → sub-daily forcing (interval means), conserving daily totals exactly.

Methods (citations in ``_references.py``):

* Temperature: the cosine ("WAVE") interpolation compared by Reicosky et al. (1989) and used in
  the Wageningen models (Goudriaan & van Laar 1994): Tmin at sunrise, Tmax at 14:00 local mean
  solar time, half-cosine segments sunrise→14:00 and 14:00→next sunrise. Sunrise from the FAO-56
  sunset hour angle (eqs. 24–25). Interval means by the midpoint rule on ≤ 10-minute sub-steps.
  Daily means of the result are not (Tmin + Tmax)/2 and are not meant to be.
* Shortwave: the daily total is distributed in proportion to the interval-mean extraterrestrial
  irradiance (``_astro.toa_mean_irradiance``), normalised per UTC day → daily total conserved to
  round-off (uniform where the Sun does not rise, as in polar night).
* Precipitation: spread uniformly over a wet spell of ``pr_hours`` hours centred at 15:00 local
  mean solar time (default 24 h = uniformly over the day), normalised per UTC day → daily total
  conserved to round-off.
* Humidity: the daily vapour pressure is held constant through the day, capped at saturation
  at the interval temperature (count reported); ``huss`` from e and p.
* Pressure: FAO-56 eq. 7 from elevation (daily sources carry no pressure).
* Wind: the daily mean held constant.
* Longwave: Brutsaert (1975) + Crawford & Duchon (1999) with cloud fraction 1 − Rs/Rso from the
  daily ratio of observed to FAO-56 clear-sky radiation (eq. 37), constant through the day.

Daily values are assigned to UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emulators.constants import SECONDS_PER_DAY
from emulators.forcing import _astro as A
from emulators.forcing import _derive as D

F64 = NDArray[np.float64]

T_MAX_HOUR = 14.0  # local mean solar time of the daily maximum temperature (Reicosky et al. 1989)
PR_CENTRE_HOUR = 15.0  # local mean solar time at the centre of the wet spell
SUBSTEP_SECONDS = 600.0


@dataclass(frozen=True)
class DailyWeather:
    """Daily weather on consecutive UTC days for a list of cells.

    dates (day,) datetime64[D]; lat/lon/elevation (cell,) degrees, degrees, m; per (day, cell):
    tmin/tmax °C, vapour_pressure kPa, wind m s-1 (at the source's height), precipitation
    mm d-1 (= kg m-2 d-1), radiation J m-2 d-1 (global, horizontal).
    """

    dates: NDArray[np.datetime64]
    lat: F64
    lon: F64
    elevation: F64
    tmin: F64
    tmax: F64
    vapour_pressure: F64
    wind: F64
    precipitation: F64
    radiation: F64

    def __post_init__(self) -> None:
        nd, nc = self.dates.shape[0], self.lat.shape[0]
        if nd == 0 or nc == 0:
            raise ValueError("daily weather: needs at least one day and one cell")
        steps = np.diff(self.dates.astype("datetime64[D]").astype(np.int64))
        if np.any(steps != 1):
            raise ValueError("dates: must be consecutive days")
        for name in ("lon", "elevation"):
            if getattr(self, name).shape != (nc,):
                raise ValueError(f"{name}: shape {getattr(self, name).shape}, expected ({nc},)")
        for name in ("tmin", "tmax", "vapour_pressure", "wind", "precipitation", "radiation"):
            arr = getattr(self, name)
            if arr.shape != (nd, nc):
                raise ValueError(f"{name}: shape {arr.shape}, expected ({nd}, {nc})")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: contains non-finite values")
        for name in ("vapour_pressure", "wind", "precipitation", "radiation"):
            if np.any(getattr(self, name) < 0):
                raise ValueError(f"{name}: must be >= 0")
        if np.any(self.tmin > self.tmax):
            raise ValueError("tmin: must be <= tmax on every day")


def _sunrise_hour(lat: F64, doy: F64) -> F64:
    """Local mean solar time of sunrise [h] (day, cell), clipped to [0.5, 12]."""
    ws = A.sunset_hour_angle(lat[None, :], A.declination_fao56(doy)[:, None])
    return np.clip(12.0 - ws * 12.0 / np.pi, 0.5, 12.0)


def _temperature(tmin: F64, tmax: F64, t_sr: F64, tau_local: F64) -> F64:
    """Cosine interpolation at local mean solar times ``tau_local`` (sample, cell) in days since
    local midnight of day 0; anchors (Tmin at sunrise, Tmax at 14:00) per local day."""
    nd = tmin.shape[0]
    cells = np.arange(tmin.shape[1])[None, :]
    k = np.floor(tau_local).astype(np.int64)
    h = (tau_local - k) * 24.0

    def at(arr: F64, day: NDArray[np.int64]) -> F64:
        return arr[np.clip(day, 0, nd - 1), cells]

    sr_k = at(t_sr, k)
    sr_next = at(t_sr, k + 1)
    before = h < sr_k
    morning = ~before & (h < T_MAX_HOUR)
    t_a = np.where(before, at(tmax, k - 1), np.where(morning, at(tmin, k), at(tmax, k)))
    t_b = np.where(before, at(tmin, k), np.where(morning, at(tmax, k), at(tmin, k + 1)))
    elapsed = np.where(before, h + 24.0 - T_MAX_HOUR, np.where(morning, h - sr_k, h - T_MAX_HOUR))
    duration = np.where(
        before,
        24.0 - T_MAX_HOUR + sr_k,
        np.where(morning, T_MAX_HOUR - sr_k, 24.0 - T_MAX_HOUR + sr_next),
    )
    return t_a + (t_b - t_a) * 0.5 * (1.0 - np.cos(np.pi * elapsed / duration))


def _per_day_normalise(weights: F64, spd: int) -> F64:
    """weights (time, cell) → weights / (daily mean of weights), uniform (1) where a day's
    weights are all zero; each day's mean of the result is exactly 1 up to round-off."""
    nt, nc = weights.shape
    w = weights.reshape(nt // spd, spd, nc)
    m = w.mean(axis=1, keepdims=True)
    out = np.where(m > 0.0, w / np.where(m > 0.0, m, 1.0), 1.0)
    return out.reshape(nt, nc)


def disaggregate(
    daily: DailyWeather, timestep: int, *, pr_hours: float = 24.0
) -> tuple[NDArray[np.datetime64], dict[str, F64], dict[str, Any]]:
    """Sub-daily interval means at ``timestep`` seconds (must divide 86400) from ``daily``.

    Returns (time starts (time,), {forcing name: (time, cell) array in registry units},
    diagnostics for attrs).
    """
    if SECONDS_PER_DAY % timestep:
        raise ValueError(f"timestep: {timestep} s must divide a day")
    if not 0.5 <= pr_hours <= 24.0:  # ≥ 3 sub-steps of 10 min: the spell is always resolved
        raise ValueError(f"pr_hours: must be in [0.5, 24], got {pr_hours}")
    spd = SECONDS_PER_DAY // timestep
    nd, nc = daily.tmin.shape
    nt = nd * spd
    day0 = daily.dates[0].astype("datetime64[D]").astype("datetime64[ns]")
    times = day0 + np.arange(nt, dtype=np.int64) * np.timedelta64(timestep, "s")
    doy = A.day_of_year(daily.dates.astype("datetime64[ns]")).astype(np.float64)

    # --- temperature on sub-steps (midpoints), local mean solar time --------------------------
    nsub = max(1, int(np.ceil(timestep / SUBSTEP_SECONDS)))
    offs = (np.arange(nsub) + 0.5) / nsub * timestep
    tau = (np.arange(nt)[:, None] * timestep + offs[None, :]).reshape(-1) / SECONDS_PER_DAY
    tau_local = tau[:, None] + daily.lon[None, :] / 360.0
    t_sr = _sunrise_hour(daily.lat, doy)
    temp_c = _temperature(daily.tmin, daily.tmax, t_sr, tau_local)
    tas_c = temp_c.reshape(nt, nsub, nc).mean(axis=1)

    # --- precipitation: wet spell on the sub-steps, normalised per UTC day -------------------
    hour_local = (tau_local - np.floor(tau_local)) * 24.0
    spell_start = PR_CENTRE_HOUR - pr_hours / 2.0
    wet = np.mod(hour_local - spell_start, 24.0) < pr_hours
    wet_frac = wet.reshape(nt, nsub, nc).mean(axis=1)
    pr_daily = np.repeat(daily.precipitation, spd, axis=0) / SECONDS_PER_DAY
    pr = pr_daily * _per_day_normalise(wet_frac, spd)

    # --- shortwave: extraterrestrial shape, normalised per UTC day ---------------------------
    toa = A.toa_mean_irradiance(times, float(timestep), daily.lat, daily.lon)
    rsds = np.repeat(daily.radiation, spd, axis=0) / SECONDS_PER_DAY * _per_day_normalise(toa, spd)

    # --- humidity, pressure, wind --------------------------------------------------------------
    ps = np.broadcast_to(D.pressure_from_elevation(daily.elevation)[None, :], (nt, nc)).copy()
    e = np.repeat(daily.vapour_pressure, spd, axis=0) * 1e3
    esat = D.saturation_vapour_pressure(tas_c) * 1e3
    capped = int(np.count_nonzero(e > esat))
    e = np.minimum(e, esat)
    huss = D.specific_humidity(e, ps)
    wind = np.repeat(daily.wind, spd, axis=0)

    # --- longwave: cloud fraction from the daily clear-sky ratio -------------------------------
    rso = D.clear_sky_transmissivity_fao56(daily.elevation)[None, :] * A.ra_daily_fao56(
        daily.lat[None, :], doy[:, None]
    )
    clf_daily = D.cloud_fraction_from_transmissivity(daily.radiation, rso)
    clf = np.repeat(clf_daily, spd, axis=0)
    tas = D.celsius_to_kelvin(tas_c)
    rlds = D.downwelling_longwave(tas, e, clf)

    data = {
        "tas": tas,
        "huss": huss,
        "ps": ps,
        "sfcWind": wind,
        "pr": pr,
        "rsds": rsds,
        "rlds": rlds,
    }
    diagnostics: dict[str, Any] = {
        "huss_supersaturated_steps_capped": capped,
        "cloud_fraction_daily_mean": float(clf_daily.mean()),
        "pr_spell_hours": float(pr_hours),
    }
    return times, data, diagnostics
