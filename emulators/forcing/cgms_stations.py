"""Daily CGMS station weather 2013–2014 shipped with PCSE 6.0 as Penman–Monteith test data
(``pcse/tests/test_data/<station>.csv``), disaggregated to the model step (``_disaggregate``).

Columns: daily minimum and maximum temperature [°C], vapour pressure [hPa], global radiation
[kJ m-2 d-1], wind speed at 10 m [m s-1], and CGMS's own ET0/ES0/E0 (not used). No precipitation:
``missing_pr`` as for ``epw-amsterdam``. Station coordinates and elevations are the ones PCSE's
test uses (``pcse/tests/test_penmanmonteith.py``), except Ronda's elevation (3 m there, 740 m
here: the elevation with which the file's ET0 is reproduced); the files carry only the station
number.

The rows are not in date order (sorted here). Gaps: a day is usable when all five fields are
present. Ronda misses 109 days (longest gap 43 days) and Asturias has four incomplete days in
2014. ``start``/``end`` (ISO dates, inclusive)
choose the period, which must be gap-free (the refusal lists the gap-free runs); by default the
longest gap-free run is loaded. Daily values are assigned to UTC days.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from emulators.forcing._disaggregate import DailyWeather, disaggregate
from emulators.forcing._layout import (
    ForcingError,
    aggregate,
    build,
    check_missing_pr,
    station_attrs,
    zero_pr_attrs,
)
from emulators.forcing._references import cite
from emulators.forcing.daily_sources import DAILY_METHODS, DAILY_REFS, _check_daily_timestep

FIELDS = ("TEMPERATURE_MIN", "TEMPERATURE_MAX", "VAPOURPRESSURE", "RADIATION", "WINDSPEED_10M")


@dataclass(frozen=True)
class _Station:
    number: int
    filename: str
    label: str
    lat: float
    lon: float
    elevation: float


STATIONS = {
    "cgms-asturias": _Station(
        8011, "8011_asturias.csv", "Asturias, Spain", 43.5667, -6.0442, 130.0
    ),
    "cgms-sweden": _Station(2297, "2297_sweden.csv", "northern Sweden", 64.4833, 21.5833, 37.0),
    # PCSE's table says 3 m; CGMS's own ET0 in the file is reproduced by PCSE's penman_monteith
    # to RMSE 0.005 mm/d with 740 m and 0.068 mm/d with 3 m (docs/forcing.md): 740 m is used.
    "cgms-ronda": _Station(8443, "8443_ronda.csv", "Ronda, Spain", 36.75, -5.1667, 740.0),
    "cgms-munich": _Station(
        10870, "10870_munchen_flughafen.csv", "Munich airport, Germany", 48.3667, 11.8, 453.0
    ),
}


def _path(st: _Station) -> str:
    spec = importlib.util.find_spec("pcse")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"pcse is not installed: {st.filename} needs pcse 6.0")
    return os.path.join(
        next(iter(spec.submodule_search_locations)), "tests", "test_data", st.filename
    )


def _read(path: str) -> tuple[NDArray[np.datetime64], NDArray[np.float64]]:
    """(dates, values (day, FIELDS)) of every row, sorted by date; NaN where a field is empty.
    The rows are not in date order and some end with a stray ``);`` (left from an SQL export,
    stripped); a date given twice is refused."""
    dates, rows = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            rec = {k.strip(): (v or "").strip().rstrip(");").strip() for k, v in rec.items() if k}
            dates.append(np.datetime64(datetime.strptime(rec["DAY"], "%d-%b-%y").date(), "D"))
            rows.append([float(rec[f]) if rec[f] else np.nan for f in FIELDS])
    d = np.asarray(dates, dtype="datetime64[D]")
    order = np.argsort(d, kind="stable")
    d = d[order]
    if np.any(np.diff(d.astype(np.int64)) == 0):
        raise ValueError(f"{path}: a date appears twice")
    return d, np.asarray(rows, dtype=np.float64)[order]


def _complete_runs(dates: NDArray[np.datetime64], ok: NDArray[np.bool_]) -> list[tuple[Any, Any]]:
    """Gap-free runs (first, last date) of consecutive days with complete rows."""
    days = dates[ok].astype(np.int64)
    if days.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(days) != 1)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [days.size - 1]))
    d = dates[ok]
    return [(d[a], d[b]) for a, b in zip(starts, ends, strict=True)]


def _days(first: Any, last: Any) -> int:
    return int((last - first) // np.timedelta64(1, "D"))


def _period(
    name: str, runs: list[tuple[Any, Any]], start: Any, end: Any
) -> tuple[np.datetime64, np.datetime64]:
    if start is None and end is None:
        return max(runs, key=lambda r: _days(*r))
    lo, hi = runs[0][0], runs[-1][1]
    try:
        d0 = lo if start is None else np.datetime64(start, "D")
        d1 = hi if end is None else np.datetime64(end, "D")
    except ValueError as exc:
        raise ForcingError("start", "iso_date", f"start/end: not ISO dates: {exc}") from None
    if not any(a <= d0 <= d1 <= b for a, b in runs):
        listed = ", ".join(f"{a}..{b}" for a, b in runs if _days(a, b) >= 6)
        raise ForcingError(
            "start",
            "gap_free_period",
            f"start/end: {d0}..{d1} is not inside one gap-free period of {name}; gap-free "
            f"periods of a week or more: {listed}",
        )
    return d0, d1


def load_cgms_station(
    name: str,
    *,
    timestep: int = 3600,
    start: str | None = None,
    end: str | None = None,
    missing_pr: str = "error",
) -> xr.Dataset:
    """CGMS station ``name`` (see ``STATIONS``) from ``start`` to ``end`` (ISO dates, inclusive;
    default the longest gap-free run), disaggregated to ``timestep``."""
    if name not in STATIONS:
        raise ForcingError("name", "known_source", f"unknown CGMS station {name!r}")
    ts, step = _check_daily_timestep(timestep, name)
    check_missing_pr(missing_pr, name, "the CGMS station files carry no precipitation")
    st = STATIONS[name]
    dates, v = _read(_path(st))
    ok: NDArray[np.bool_] = np.asarray(np.isfinite(v).all(axis=1))
    runs = _complete_runs(dates, ok)
    d0, d1 = _period(name, runs, start, end)
    sel = (dates >= d0) & (dates <= d1)
    v = v[sel]
    daily = DailyWeather(
        dates=dates[sel],
        lat=np.array([st.lat]),
        lon=np.array([st.lon]),
        elevation=np.array([st.elevation]),
        tmin=v[:, 0:1],
        tmax=v[:, 1:2],
        vapour_pressure=v[:, 2:3] / 10.0,
        wind=v[:, 4:5],
        precipitation=np.zeros_like(v[:, 0:1]),
        radiation=v[:, 3:4] * 1e3,
    )
    times, data, diag = disaggregate(daily, step)
    attrs: dict[str, Any] = {
        **station_attrs(
            name,
            f"CGMS daily station weather, {st.label} (station {st.number}), {d0}..{d1} "
            "(PCSE test data), disaggregated",
            (st.label, f"CGMS station {st.number}"),
            0.0,
            step,
            10.0,
        ),
        "measured": "daily Tmin, Tmax, vapour pressure, wind (10 m), global radiation from the "
        "CGMS station database (sub-daily shapes are derived)",
        "derived": f"sub-daily shapes of every field; ps; rlds. {DAILY_METHODS}",
        "daily_totals_conserved": "rsds (per UTC day, to round-off)",
        "incomplete_days_in_file": int(np.count_nonzero(~ok)),
        "missing_days_in_file": _days(dates[0], dates[-1]) + 1 - dates.size,
        **{k: v for k, v in diag.items() if k != "pr_spell_hours"},
        **zero_pr_attrs("the CGMS station files carry no precipitation"),
        "references": cite(["CGMS_STATIONS", "CGMS", "PCSE", *DAILY_REFS]),
        "history": f"read pcse/tests/test_data/{st.filename} (csv); days {d0}..{d1} (gap-free); "
        f"daily values assigned to UTC days and disaggregated to {step} s; pr set to 0 "
        "(missing_pr='zero')",
    }
    ds = build(times, daily.lat, daily.lon, daily.elevation, data, attrs)
    return aggregate(ds, ts)
