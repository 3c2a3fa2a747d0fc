"""Synthetic weather for any list of cells: climatological cycles + stochastic weather.

Per cell (latitude φ, longitude, elevation z, land fraction L) and interval [t, t + dt):

* Shortwave: interval-mean TOA insolation (Spencer 1971 geometry integrated over the hour
  angle, see ``_astro``; Hartmann 2016 ch. 2) × FAO-56 clear-sky transmissivity (0.75 + 2e-5 z)
  × the Kasten & Czeplak (1980) cloud factor 1 − 0.75 c^3.4.
* Cloud fraction c: logistic transform of the zonal climatology (``_climatology``) plus an AR(1)
  anomaly (e-folding 1 day) and a wet-day term (wet days are cloudier).
* Temperature: P2-Legendre annual mean with lapse rate + seasonal cycle (amplitude growing with
  latitude, damped over ocean) + diurnal cosine peaking at 15:00 local solar time with a range
  that is larger over dry land and smaller under cloud + AR(1) synoptic anomaly (e-folding 3 d).
* Humidity: relative humidity = climatology + AR(1) anomaly (2 d) + wet-day term, applied at the
  temperature without its diurnal part (vapour pressure roughly constant through a day), capped
  at saturation; ``huss`` from e and p.
* Pressure: FAO-56 eq. 7 from elevation × (1 + AR(1) anomaly, 2 d).
* Precipitation: two-state daily Markov chain for occurrence and gamma amounts (Richardson
  1981), wet-day fraction and mean from the zonal climatology with a seasonally migrating ITCZ,
  lag-1 occurrence persistence 0.4; each wet day's amount falls uniformly over one spell of
  2–22 h at a random time of the UTC day (daily total exact).
* Wind: Weibull (k = 2, Justus et al. 1978) marginals: the modulus of two independent
  unit-variance AR(1) processes (e-folding 12 h) is Rayleigh, i.e. Weibull with k = 2, scaled
  to the zonal-climatology mean times the cell's ``wind_scale`` (default 1; e.g. 0.3–0.5 for
  sheltered valleys and weak-wind basins), with a +25 % afternoon peak over land.
* Dryness: ``rh_offset`` (default 0) is added to the cell's climatological relative humidity
  before the anomalies (e.g. −0.25 for a semi-arid plateau), then clipped as above;
  ``pr_scale`` (default 1) multiplies the cell's precipitation amounts (the occurrence chain,
  and so the wet days' clouds and humidity, unchanged): 0 gives a year without rain, the
  drought of a record whose precipitation is missing and taken as zero (docs/forcing.md).
* Longwave: Brutsaert (1975) + Crawford & Duchon (1999) with the same cloud fraction c.

Randomness: cell i draws from ``numpy.random.default_rng(SeedSequence(seed, spawn_key=(i,)))``,
so a cell's weather depends only on (seed, i, its coordinates, start, days, timestep) — cells are
independent and results do not depend on chunking. Values are finally clipped to the registry's
valid ranges; the number of clipped values per variable is reported in attrs (0 in practice
except in extreme corners such as a 6 km high pole).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

from emulators import variables as V
from emulators.constants import SECONDS_PER_DAY
from emulators.forcing import _astro as A
from emulators.forcing import _climatology as C
from emulators.forcing import _derive as D
from emulators.forcing._layout import (
    FORCING_VARIABLES,
    ForcingError,
    aggregate,
    build,
    check_timestep,
)
from emulators.forcing._references import cite

F64 = NDArray[np.float64]

#: e-folding times of the AR(1) weather anomalies [hours]
TAU_HOURS = {"tas": 72.0, "cloud": 24.0, "rh": 48.0, "ps": 48.0, "wind": 12.0}
GAMMA_SHAPE = 0.7
#: spread of the cloud latent variable: a U-shaped cloud-fraction distribution (many clear and
#: many overcast hours) as observed, rather than a constant mean cover
CLOUD_LATENT_STD = 2.0
OCCURRENCE_PERSISTENCE = 0.4
MAX_DAILY_PR_MM = 350.0
#: the allowed per-cell values of ``load_synthetic``'s ``elevation`` [m], ``wind_scale``,
#: ``rh_offset`` and ``pr_scale`` (lowest, highest)
CELL_RANGES: dict[str, tuple[float, float]] = {
    "elevation": (-500.0, 6000.0),
    "wind_scale": (0.1, 5.0),
    "rh_offset": (-0.5, 0.5),
    "pr_scale": (0.0, 5.0),
}
MAX_THREADS = 4  # worker threads over cell chunks (never more than the machine's cores)
CHUNK_ELEMENTS = 2**19  # (time x cell) values per chunk: temporaries stay ~4 MB
WEIBULL_K = 2.0
_GAMMA_1P5 = 0.886226925452758  # Γ(1 + 1/k) for k = 2


def _as_cells(name: str, value: Any, n: int | None) -> F64:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1:
        raise ForcingError(name, "shape", f"{name}: must be a scalar or 1-D, got shape {arr.shape}")
    if n is not None and arr.size == 1 and n > 1:
        arr = np.full(n, arr[0])
    if n is not None and arr.size != n:
        raise ForcingError(name, "shape", f"{name}: {arr.size} values, expected {n} (one per cell)")
    if not np.all(np.isfinite(arr)):
        raise ForcingError(name, "finite", f"{name}: must be finite")
    return arr


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ForcingError(name, "integer", f"{name}: must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ForcingError(name, "range", f"{name}: must be in {lo}..{hi}, got {value}")
    return int(value)


def _ar1(z: NDArray[np.floating[Any]], dt: float, tau_hours: float) -> NDArray[np.floating[Any]]:
    """Stationary unit-variance AR(1) along the last axis from white noise z:
    x_n = φ x_{n-1} + sqrt(1 − φ²) z_n, φ = exp(−dt/τ), x_0 = z_0."""
    phi = float(np.exp(-dt / (tau_hours * 3600.0)))
    s = float(np.sqrt(1.0 - phi * phi))
    if s == 0.0:
        return np.repeat(z[..., :1], z.shape[-1], axis=-1)
    zz = z.copy()
    zz[..., 0] /= s
    return np.asarray(lfilter([s], [1.0, -phi], zz, axis=-1))


def _diurnal_cos(utc_mid_hour: F64, lon: F64, dt_hours: float, peak_hour: float) -> F64:
    """Mean over each interval of cos(2π (h − peak)/24), h local mean solar time [hours] =
    UTC + lon/15; intervals centred at ``utc_mid_hour`` (time,), ``lon`` (cell,) → (time, cell).
    Uses mean = cos(2π (h_mid − peak)/24) · sinc and separates time and longitude."""
    db = 2.0 * np.pi * dt_hours / 24.0
    damp = 1.0 if db == 0.0 else float(np.sin(db / 2.0) / (db / 2.0))
    if dt_hours >= 24.0:
        damp = 0.0
    a = 2.0 * np.pi * (utc_mid_hour - peak_hour) / 24.0
    b = np.deg2rad(lon)
    return damp * (
        np.cos(a)[:, None] * np.cos(b)[None, :] - np.sin(a)[:, None] * np.sin(b)[None, :]
    )


def _chunk(
    idx: NDArray[np.int64],
    seed: int,
    times: NDArray[np.datetime64],
    dt: int,
    lat: F64,
    lon: F64,
    z: F64,
    land: F64,
    wind_scale: F64,
    rh_offset: F64,
    pr_scale: F64,
) -> dict[str, F64]:
    nt, nc = times.shape[0], idx.shape[0]
    spd = SECONDS_PER_DAY // dt
    nd = nt // spd
    names = ("tas", "cloud", "rh", "ps", "wind", "wind")
    white = np.empty((len(names), nc, nt), dtype=np.float32)
    u = np.empty((3, nd, nc))
    gam = np.empty((nd, nc))
    for j, i in enumerate(idx):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(i),)))
        # daily draws first: daily precipitation totals do not depend on the timestep
        u[:, :, j] = rng.random((3, nd))
        gam[:, j] = rng.standard_gamma(GAMMA_SHAPE, nd)
        white[:, j, :] = rng.standard_normal((len(names), nt), dtype=np.float32)
    n_t, n_c, n_rh, n_p = (
        np.ascontiguousarray(_ar1(white[k], float(dt), TAU_HOURS[key]).T, dtype=np.float64)
        for k, key in enumerate(names[:4])
    )
    n_w1, n_w2 = (
        np.ascontiguousarray(w.T, dtype=np.float64)
        for w in _ar1(white[4:], float(dt), TAU_HOURS["wind"])
    )
    del white

    mid = times + np.timedelta64(dt // 2, "s")
    doy = A.day_of_year(mid)[:, None]
    mid_hour = A.utc_hour(times) + dt / 7200.0
    day_doy = A.day_of_year(times[::spd] + np.timedelta64(43200, "s"))[:, None]
    la, zz, lf = lat[None, :], z[None, :], land[None, :]
    ws, dr = wind_scale[None, :], rh_offset[None, :]

    # --- precipitation: daily Markov chain + gamma amounts, one spell per wet day ------------
    p_mean = C.precipitation_mean(la, day_doy)  # (nd, nc) mm/d
    f_w = C.wet_day_fraction(p_mean)
    p11 = f_w + OCCURRENCE_PERSISTENCE * (1.0 - f_w)
    p01 = f_w * (1.0 - OCCURRENCE_PERSISTENCE)
    wet = np.empty((nd, nc), dtype=bool)
    wet[0] = u[0, 0] < f_w[0]
    for d in range(1, nd):
        wet[d] = u[0, d] < np.where(wet[d - 1], p11[d], p01[d])
    amount = np.minimum(gam * p_mean / (f_w * GAMMA_SHAPE), MAX_DAILY_PR_MM) * wet
    amount *= pr_scale[None, :]  # x 1 is exact: the default cells are bitwise unchanged
    dur_h = 2.0 + 20.0 * u[2]
    n_steps = np.clip(np.rint(dur_h * 3600.0 / dt), 1, spd).astype(np.int64)
    first = np.floor(u[1] * (spd - n_steps + 1)).astype(np.int64)
    step = np.arange(spd)[None, :, None]
    in_spell = (step >= first[:, None, :]) & (step < (first + n_steps)[:, None, :])
    pr = (in_spell * (amount / (n_steps * dt))[:, None, :]).reshape(nt, nc)
    wet_anom_day = wet.astype(np.float64) - f_w
    wet_anom = np.repeat(wet_anom_day, spd, axis=0)

    # --- clouds and shortwave ---------------------------------------------------------------
    cbar = C.cloud_fraction_mean(la, day_doy)  # daily resolution: the climatology is smooth
    latent = np.repeat(np.log(cbar / (1.0 - cbar)) + 1.5 * wet_anom_day, spd, axis=0)
    latent += CLOUD_LATENT_STD * n_c
    cloud = 1.0 / (1.0 + np.exp(-latent))
    toa = A.toa_mean_irradiance(times, float(dt), lat, lon)
    rsds = toa * D.clear_sky_transmissivity_fao56(zz) * D.cloud_attenuation_kasten_czeplak(cloud)

    # --- temperature ----------------------------------------------------------------------------
    diurnal = (
        0.5
        * C.diurnal_range(la, lf)
        * (1.25 - 0.5 * cloud)
        * _diurnal_cos(mid_hour, lon, dt / 3600.0, 15.0)
    )
    t_smooth = (
        C.annual_mean_temperature(la, zz)
        + C.seasonal_anomaly(la, doy, lf)
        + C.temperature_noise_std(la) * n_t
    )
    tas = t_smooth + diurnal

    # --- humidity, pressure ---------------------------------------------------------------------
    rh = np.clip(C.relative_humidity_mean(la, lf) + dr + 0.10 * n_rh + 0.10 * wet_anom, 0.08, 0.97)
    e = (
        np.minimum(
            rh * D.saturation_vapour_pressure(t_smooth - 273.15),
            D.saturation_vapour_pressure(tas - 273.15),
        )
        * 1e3
    )
    ps = D.pressure_from_elevation(zz) * (1.0 + C.pressure_noise_rel_std(la) * n_p)
    huss = D.specific_humidity(e, ps)
    rlds = D.downwelling_longwave(tas, e, cloud)

    # --- wind: Rayleigh = Weibull(k=2) from two independent unit-variance AR(1) processes ----
    scale = ws * C.wind_mean(la, lf) / _GAMMA_1P5  # Weibull scale λ = mean / Γ(1 + 1/k)
    gust = 1.0 + 0.25 * lf * _diurnal_cos(mid_hour, lon, dt / 3600.0, 14.0)
    wind = scale * gust * np.sqrt(0.5 * (n_w1 * n_w1 + n_w2 * n_w2))

    return {
        "tas": tas,
        "huss": huss,
        "ps": ps,
        "sfcWind": wind,
        "pr": pr,
        "rsds": rsds,
        "rlds": rlds,
    }


def _clip_to_registry(part: dict[str, F64], counts: dict[str, int]) -> None:
    """Clip each field to the registry's valid range in place, counting clipped values."""
    for k, arr in part.items():
        var = V.get(k)
        lo, hi = float(arr.min()), float(arr.max())
        if lo < var.valid_min or hi > var.valid_max:
            counts[k] += int(np.count_nonzero((arr < var.valid_min) | (arr > var.valid_max)))
            np.clip(arr, var.valid_min, var.valid_max, out=arr)


def _in_range(name: str, value: ArrayLike, n: int, units: str = "") -> F64:
    """``_as_cells(name, value, n)``, refused outside ``CELL_RANGES[name]`` (rule ``range``)."""
    values = _as_cells(name, value, n)
    lo, hi = CELL_RANGES[name]
    if np.any((values < lo) | (values > hi)):
        raise ForcingError(name, "range", f"{name}: must be in [{lo:g}, {hi:g}]{units}")
    return values


def load_synthetic(
    name: str = "synthetic",
    *,
    timestep: int = 3600,
    lat: ArrayLike | None = None,
    lon: ArrayLike | None = None,
    start: str | np.datetime64 = "2001-01-01",
    days: int = 365,
    seed: int = 0,
    land: ArrayLike | None = None,
    elevation: ArrayLike | None = None,
    wind_scale: ArrayLike | None = None,
    rh_offset: ArrayLike | None = None,
    pr_scale: ArrayLike | None = None,
) -> xr.Dataset:
    """Synthetic forcing for cells at ``lat``/``lon`` [degrees] (scalars or 1-D, broadcast),
    ``days`` days from ``start`` (a UTC date), reproducible by ``seed``. ``land``: land fraction
    per cell in [0, 1] (default 1: all land); ``elevation`` [m] (default 0): lowers pressure and
    temperature (lapse rate); ``wind_scale`` (default 1, in [0.1, 5]): factor on the
    climatological mean wind; ``rh_offset`` (default 0, in [−0.5, 0.5]): added to the
    climatological relative humidity (negative: drier); ``pr_scale`` (default 1, in [0, 5]):
    factor on the precipitation amounts (0: no rain at all)."""
    ts = check_timestep(timestep, 1, name)
    gen = ts if SECONDS_PER_DAY % ts == 0 else SECONDS_PER_DAY
    if lat is None or lon is None:
        missing = "lat" if lat is None else "lon"
        raise ForcingError(missing, "required", f"{missing}: required for the synthetic source")
    lat_a = _as_cells("lat", lat, None)
    lon_a = _as_cells("lon", lon, None)
    n = max(lat_a.size, lon_a.size)
    lat_a, lon_a = _as_cells("lat", lat_a, n), _as_cells("lon", lon_a, n)
    if np.any(np.abs(lat_a) > 90.0):
        raise ForcingError("lat", "range", "lat: must be in [-90, 90] degrees_north")
    if np.any(np.abs(lon_a) > 360.0):
        raise ForcingError("lon", "range", "lon: must be in [-360, 360] degrees_east")
    land_a = _as_cells("land", 1.0 if land is None else land, n)
    if np.any((land_a < 0.0) | (land_a > 1.0)):
        raise ForcingError("land", "range", "land: land fraction must be in [0, 1]")
    z_a = _in_range("elevation", 0.0 if elevation is None else elevation, n, " m")
    ws_a = _in_range("wind_scale", 1.0 if wind_scale is None else wind_scale, n)
    dr_a = _in_range("rh_offset", 0.0 if rh_offset is None else rh_offset, n)
    pr_a = _in_range("pr_scale", 1.0 if pr_scale is None else pr_scale, n)
    nd = _check_int("days", days, 1, 200 * 366)
    sd = _check_int("seed", seed, 0, 2**63 - 1)
    try:
        t0 = np.datetime64(str(start), "ns")
    except (ValueError, TypeError):
        raise ForcingError("start", "iso_date", f"start: not an ISO date: {start!r}") from None
    if t0 != t0.astype("datetime64[D]"):
        raise ForcingError("start", "midnight", f"start: must be a date at 00:00 UTC, got {start}")

    spd = SECONDS_PER_DAY // gen
    nt = nd * spd
    times = t0 + np.arange(nt, dtype=np.int64) * np.timedelta64(gen, "s")
    out = {k: np.empty((nt, n)) for k in FORCING_VARIABLES}
    counts = dict.fromkeys(FORCING_VARIABLES, 0)
    chunk = max(1, CHUNK_ELEMENTS // nt)

    def work(c0: int) -> dict[str, int]:
        idx = np.arange(c0, min(n, c0 + chunk), dtype=np.int64)
        cells = (lat_a, lon_a, z_a, land_a, ws_a, dr_a, pr_a)
        part = _chunk(idx, sd, times, gen, *(a[idx] for a in cells))
        part_counts = dict.fromkeys(FORCING_VARIABLES, 0)
        _clip_to_registry(part, part_counts)
        for k in FORCING_VARIABLES:
            out[k][:, idx[0] : idx[-1] + 1] = part[k]
        return part_counts

    # chunks write disjoint columns and draw from per-cell streams: results do not depend on
    # the number of threads (numpy releases the GIL in its array loops)
    starts = range(0, n, chunk)
    workers = min(MAX_THREADS, os.cpu_count() or 1, len(starts))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(work, starts))
    else:
        results = [work(c0) for c0 in starts]
    for part_counts in results:
        for k, v in part_counts.items():
            counts[k] += v
    clipped = {f"clipped_values_{k}": v for k, v in counts.items()}
    attrs: dict[str, Any] = {
        "source": name,
        "title": f"Synthetic weather, {n} cell(s), {nd} day(s) from {str(t0)[:10]}, seed {sd}",
        "timestep_seconds": gen,
        "height_wind_m": 10.0,
        "height_temperature_m": 2.0,
        "seed": sd,
        "measured": "none: every field is synthetic",
        "derived": "all fields (see emulators.forcing.synthetic docstring and docs/forcing.md)",
        **clipped,
        "references": cite(
            [
                "NORTH1981",
                "SPENCER1971",
                "IQBAL1983",
                "HARTMANN2016",
                "FAO56",
                "KASTEN_CZEPLAK1980",
                "RICHARDSON1981",
                "JUSTUS1978",
                "BRUTSAERT1975",
                "CRAWFORD_DUCHON1999",
            ]
        ),
        "history": f"emulators.forcing.synthetic: seed {sd}, {n} cells, start {str(t0)[:10]}, "
        f"{nd} days at {gen} s",
    }
    ds = build(times, lat_a, lon_a, z_a, out, attrs)
    return aggregate(ds, ts)
