"""Daily weather shipped with PCSE 6.0, disaggregated to the model step (``_disaggregate``).

* ``pcse-wageningen``: CABO weather files of Wageningen (Haarweg), station NL1, 1976–1999, read
  with ``pcse.input.CABOWeatherDataProvider`` from a private temporary copy of the files (the
  provider writes a ``.cache`` file next to them; the installed package is left untouched).
  File documentation: wind at 2 m; "early morning vapour pressure"; missing values were
  replaced by De Bilt data by the file authors. PCSE interpolates remaining 1-day gaps; days
  still missing (Jan/Sep 1990, Sep–Dec 1991) make a requested ``years`` range invalid.
* ``cgms-grid``: the ``grid_weather`` table of PCSE's CGMS demo database dump
  (``pcse/tests/test_data/pcse_dump.sql``), loaded into an in-memory SQLite database with the
  standard library (PCSE's own CGMS grid reader lives in its test suite and needs SQLAlchemy-style
  rows). Units as PCSE's reader interprets them: temperatures °C, vapour pressure hPa, wind at
  10 m (PCSE converts it to 2 m; we keep 10 m and say so), rainfall mm d-1, calculated radiation
  kJ m-2 d-1. The dump holds weather for only TWO grid cells over disjoint periods (grid 1:
  1965; grid 31031: 1999-12-01..2001-11-30), so a multi-cell request has no common period and is
  refused; each grid loads on its own.
"""

from __future__ import annotations

import contextlib
import glob
import io
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from emulators.constants import SECONDS_PER_DAY
from emulators.forcing._disaggregate import DailyWeather, disaggregate
from emulators.forcing._layout import ForcingError, aggregate, build, check_timestep
from emulators.forcing._references import cite

DAILY_METHODS = (
    "tas: cosine interpolation Tmin at sunrise -> Tmax at 14:00 local solar time (Reicosky et al. "
    "1989); rsds: daily total x extraterrestrial shape, conserved per UTC day; pr: uniform over a "
    "wet spell of pr_hours centred at 15:00 local solar time, conserved per UTC day; huss: daily "
    "vapour pressure held constant (capped at saturation); ps: FAO-56 eq. 7 from elevation; "
    "sfcWind: daily mean held constant; rlds: Brutsaert (1975) + Crawford & Duchon (1999) with "
    "cloud fraction 1 - Rs/Rso (FAO-56 eq. 37)"
)
DAILY_REFS = [
    "FAO56",
    "REICOSKY1989",
    "GOUDRIAAN_VANLAAR1994",
    "SPENCER1971",
    "IQBAL1983",
    "BRUTSAERT1975",
    "CRAWFORD_DUCHON1999",
]
NL1_YEARS = (1976, 1999)


@contextlib.contextmanager
def _quiet_pcse_import() -> Iterator[None]:
    """Import-time side effects of PCSE are contained: it prints to stdout and calls
    ``logging.config.dictConfig`` with ``disable_existing_loggers=True`` and root handlers
    (console + a file under ~/.pcse/logs). Root handlers/level and the enabled state of existing
    loggers are restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    enabled = [
        lg
        for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.disabled
    ]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in saved_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved_level)
        for lg in enabled:
            lg.disabled = False


def _check_pr_hours(pr_hours: Any) -> float:
    if isinstance(pr_hours, bool) or not isinstance(pr_hours, int | float):
        raise ForcingError("pr_hours", "number", f"pr_hours: must be a number, got {pr_hours!r}")
    if not 0.5 <= float(pr_hours) <= 24.0:
        raise ForcingError("pr_hours", "range", f"pr_hours: must be in [0.5, 24], got {pr_hours}")
    return float(pr_hours)


def _check_daily_timestep(timestep: Any, name: str) -> tuple[int, int]:
    """(requested step, step to disaggregate to): a divisor of a day, or daily then aggregate."""
    ts = check_timestep(timestep, 1, name)
    return ts, (ts if SECONDS_PER_DAY % ts == 0 else SECONDS_PER_DAY)


def _check_years(years: Any) -> tuple[int, int]:
    if (
        not isinstance(years, Sequence)
        or isinstance(years, str)
        or len(years) != 2
        or not all(isinstance(y, int | np.integer) and not isinstance(y, bool) for y in years)
    ):
        raise ForcingError("years", "pair", f"years: must be (start, end) integers, got {years!r}")
    y0, y1 = int(years[0]), int(years[1])
    if not NL1_YEARS[0] <= y0 <= y1 <= NL1_YEARS[1]:
        raise ForcingError(
            "years",
            "range",
            f"years: must satisfy {NL1_YEARS[0]} <= start <= end <= "
            f"{NL1_YEARS[1]}, got ({y0}, {y1})",
        )
    return y0, y1


def load_pcse_wageningen(
    name: str = "pcse-wageningen",
    *,
    timestep: int = 3600,
    years: Sequence[int] = (1976, 1989),
    pr_hours: float = 24.0,
) -> xr.Dataset:
    """Wageningen NL1 daily weather for ``years`` = (start, end) inclusive, disaggregated."""
    ts, step = _check_daily_timestep(timestep, name)
    y0, y1 = _check_years(years)
    ph = _check_pr_hours(pr_hours)
    with _quiet_pcse_import():
        import pcse
        from pcse.input import CABOWeatherDataProvider

    src = os.path.join(os.path.dirname(pcse.__file__), "tests", "test_data")
    with tempfile.TemporaryDirectory(prefix="landcoupler-cabo-") as tmp:
        for year in range(y0, y1 + 1):
            shutil.copy(os.path.join(src, f"NL1.{year % 1000:03d}"), tmp)
        with _quiet_pcse_import():
            wdp = CABOWeatherDataProvider("NL1", fpath=tmp)
    dates = np.arange(np.datetime64(f"{y0}-01-01"), np.datetime64(f"{y1 + 1}-01-01"))
    rows = []
    missing = []
    for d in dates.astype(object):
        key = (d, 0)
        if key not in wdp.store:
            missing.append(str(d))
            continue
        r = wdp.store[key]
        rows.append((r.TMIN, r.TMAX, r.VAP / 10.0, r.WIND, r.RAIN * 10.0, r.IRRAD))
    if missing:
        raise ForcingError(
            "years",
            "complete_record",
            f"years: ({y0}, {y1}) has {len(missing)} day(s) missing in the NL1 files "
            f"(first {missing[0]}, last {missing[-1]}); choose years without gaps "
            "(1976-1989 or 1992-1999)",
        )
    v = np.asarray(rows, dtype=np.float64)
    daily = DailyWeather(
        dates=dates,
        lat=np.array([wdp.latitude]),
        lon=np.array([wdp.longitude]),
        elevation=np.array([wdp.elevation]),
        tmin=v[:, 0:1],
        tmax=v[:, 1:2],
        vapour_pressure=v[:, 2:3],
        wind=v[:, 3:4],
        precipitation=v[:, 4:5],
        radiation=v[:, 5:6],
    )
    times, data, diag = disaggregate(daily, step, pr_hours=ph)
    attrs: dict[str, Any] = {
        "source": name,
        "title": f"Wageningen (Haarweg) NL1 daily weather {y0}-{y1} (CABO, PCSE), disaggregated",
        "station_name": "Wageningen (Haarweg), Netherlands",
        "station_id": "CABO NL1",
        "utc_offset_hours": 0.0,
        "timestep_seconds": step,
        "height_wind_m": 2.0,
        "height_temperature_m": 1.5,
        "measured": "daily Tmin, Tmax, early-morning vapour pressure, wind (2 m), precipitation, "
        "global radiation (daily values; sub-daily shapes are derived)",
        "derived": f"sub-daily shapes of every field; ps; rlds. {DAILY_METHODS}",
        "daily_totals_conserved": "pr, rsds (per UTC day, to round-off)",
        **diag,
        "references": cite(["CABO", "PCSE", *DAILY_REFS]),
        "history": f"read NL1.{y0 % 1000:03d}..NL1.{y1 % 1000:03d} with "
        f"pcse.input.CABOWeatherDataProvider (PCSE {pcse.__version__}) from a temporary copy; "
        f"daily values assigned to UTC days and disaggregated to {step} s",
    }
    ds = build(times, daily.lat, daily.lon, daily.elevation, data, attrs)
    return aggregate(ds, ts)


def _cgms_connection() -> sqlite3.Connection:
    import importlib.util

    spec = importlib.util.find_spec("pcse")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pcse is not installed: cgms-grid needs pcse 6.0")
    dump = os.path.join(
        next(iter(spec.submodule_search_locations)), "tests", "test_data", "pcse_dump.sql"
    )
    if not glob.glob(dump):
        raise FileNotFoundError(f"{dump} not found: cgms-grid needs pcse 6.0")
    con = sqlite3.connect(":memory:")
    with open(dump, encoding="utf-8") as fh:
        con.executescript(fh.read())
    return con


def load_cgms_grid(
    name: str = "cgms-grid",
    *,
    timestep: int = 3600,
    grids: Sequence[int] = (31031,),
    start: str | None = None,
    end: str | None = None,
    pr_hours: float = 24.0,
) -> xr.Dataset:
    """CGMS grid weather for ``grids`` over their common period (optionally cut to ISO dates
    ``start``..``end`` inclusive), disaggregated to ``timestep``."""
    ts, step = _check_daily_timestep(timestep, name)
    ph = _check_pr_hours(pr_hours)
    if (
        not isinstance(grids, Sequence)
        or isinstance(grids, str)
        or len(grids) == 0
        or not all(isinstance(g, int | np.integer) and not isinstance(g, bool) for g in grids)
        or len(set(grids)) != len(grids)
    ):
        raise ForcingError(
            "grids", "int_list", f"grids: must be distinct grid numbers, got {grids!r}"
        )
    con = _cgms_connection()
    try:
        available = dict(
            (int(g), (d0, d1))
            for g, d0, d1 in con.execute(
                "select grid_no, min(day), max(day) from grid_weather group by grid_no"
            )
        )
        unknown = [g for g in grids if int(g) not in available]
        if unknown:
            raise ForcingError(
                "grids",
                "has_weather",
                f"grids: {unknown} have no weather in the CGMS demo "
                f"database; grids with weather: "
                + ", ".join(f"{g} ({a}..{b})" for g, (a, b) in sorted(available.items())),
            )
        d0 = max(available[int(g)][0] for g in grids)
        d1 = min(available[int(g)][1] for g in grids)
        try:
            if start is not None:
                d0 = max(d0, str(np.datetime64(start, "D")))
            if end is not None:
                d1 = min(d1, str(np.datetime64(end, "D")))
        except ValueError as exc:
            raise ForcingError("start", "iso_date", f"start/end: not ISO dates: {exc}") from None
        if d0 > d1:
            raise ForcingError(
                "grids",
                "common_period",
                f"grids: {list(grids)} share no dates within "
                f"{start or 'the record'}..{end or 'the record'} ("
                + ", ".join(f"{g}: {available[int(g)][0]}..{available[int(g)][1]}" for g in grids)
                + ")",
            )
        dates = np.arange(np.datetime64(d0), np.datetime64(d1) + 1)
        loc, cols = [], []
        for g in grids:
            loc.append(
                con.execute(
                    "select latitude, longitude, altitude from grid where grid_no=?", (int(g),)
                ).fetchone()
            )
            rows = con.execute(
                "select day, minimum_temperature, maximum_temperature, vapour_pressure, "
                "windspeed, rainfall, calculated_radiation from grid_weather "
                "where grid_no=? and day>=? and day<=? order by day",
                (int(g), d0, d1),
            ).fetchall()
            if [r[0] for r in rows] != [str(d) for d in dates]:
                raise ValueError(f"cgms grid {g}: days missing between {d0} and {d1}")
            cols.append(np.asarray([r[1:] for r in rows], dtype=np.float64))
    finally:
        con.close()
    v = np.stack(cols, axis=2)  # (day, field, cell)
    loc_a = np.asarray(loc, dtype=np.float64)
    daily = DailyWeather(
        dates=dates,
        lat=loc_a[:, 0],
        lon=loc_a[:, 1],
        elevation=loc_a[:, 2],
        tmin=v[:, 0],
        tmax=v[:, 1],
        vapour_pressure=v[:, 2] / 10.0,
        wind=v[:, 3],
        precipitation=v[:, 4],
        radiation=v[:, 5] * 1e3,
    )
    times, data, diag = disaggregate(daily, step, pr_hours=ph)
    grid_list = ",".join(str(int(g)) for g in grids)
    attrs: dict[str, Any] = {
        "source": name,
        "title": f"CGMS grid weather (PCSE demo database), grids {grid_list}, {d0}..{d1}, "
        "disaggregated",
        "grid_no": grid_list,
        "utc_offset_hours": 0.0,
        "timestep_seconds": step,
        "height_wind_m": 10.0,
        "height_temperature_m": 2.0,
        "measured": "daily gridded (interpolated station) Tmin, Tmax, vapour pressure, wind "
        "(10 m), rainfall; radiation is CGMS 'calculated_radiation' (itself modelled)",
        "derived": f"sub-daily shapes of every field; ps; rlds. {DAILY_METHODS}",
        "daily_totals_conserved": "pr, rsds (per UTC day, to round-off)",
        **diag,
        "references": cite(["CGMS", "PCSE", *DAILY_REFS]),
        "history": "loaded pcse/tests/test_data/pcse_dump.sql into in-memory sqlite3; table "
        f"grid_weather, grids {grid_list}, {d0}..{d1}; daily values assigned to UTC days and "
        f"disaggregated to {step} s",
    }
    ds = build(times, daily.lat, daily.lon, daily.elevation, data, attrs)
    return aggregate(ds, ts)
