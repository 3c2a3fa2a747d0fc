"""Typical-year station weather shipped with pvlib 0.11.2: TMY3 (Greensboro NC, Sand Point AK)
and EPW/IWEC (Amsterdam), read with ``pvlib.iotools.read_tmy3`` / ``read_epw``.

Time handling. Both formats label each row with the END of an hour in local standard time;
radiation and precipitation are totals over the preceding hour, while temperature, dew point,
pressure, wind and cloud cover are instantaneous values at the label (Wilcox & Marion 2008, §1.3).
A typical year strings together months from different years, so rows are re-timed onto one
nominal non-leap ``year``: row i covers local [Jan 1 00:00 + i h, + 1 h), shifted to UTC by the
file's time zone (the record therefore starts at local midnight, e.g. 05:00 UTC in Greensboro).
Hour totals become interval means directly; instantaneous values become interval means by the
trapezoidal rule (x(start) + x(end)) / 2, wrapping Dec 31 24:00 onto the first interval (a
typical year is cyclic by construction).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from emulators.forcing import _derive as D
from emulators.forcing._layout import (
    ForcingError,
    check_missing_pr,
    check_timestep,
    single_cell,
    station_attrs,
    zero_pr_attrs,
)
from emulators.forcing._references import cite

F64 = NDArray[np.float64]
HOURS = 8760


@dataclass(frozen=True)
class _Station:
    filename: str
    label: str


TMY3_STATIONS = {
    "tmy3-greensboro": _Station("723170TYA.CSV", "Greensboro NC (USAF 723170)"),
    "tmy3-sandpoint": _Station("703165TY.csv", "Sand Point AK (USAF 703165)"),
}
EPW_STATIONS = {"epw-amsterdam": _Station("NLD_Amsterdam062400_IWEC.epw", "Amsterdam (WMO 062400)")}


def _pvlib_data(filename: str) -> str:
    import pvlib

    path = os.path.join(os.path.dirname(pvlib.__file__), "data", filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: these sources need pvlib==0.11.2")
    return path


def _check_year(year: Any) -> int:
    if isinstance(year, bool) or not isinstance(year, int | np.integer):
        raise ForcingError("year", "integer", f"year: must be an integer, got {year!r}")
    y = int(year)
    if not 1900 <= y <= 2200:
        raise ForcingError("year", "range", f"year: must be in 1900..2200, got {y}")
    if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0:
        raise ForcingError(
            "year", "non_leap", f"year: {y} is a leap year; a typical year has 8760 hours"
        )
    return y


def _check_order(month: NDArray[Any], day: NDArray[Any], hour: NDArray[Any], what: str) -> None:
    """Rows must run Jan 1 hour 1 .. Dec 31 hour 24 without gaps (hour-ending labels 1..24)."""
    days = pd.date_range("2001-01-01", periods=365, freq="D")
    exp_month = np.repeat(days.month.to_numpy(), 24)
    exp_day = np.repeat(days.day.to_numpy(), 24)
    exp_hour = np.tile(np.arange(1, 25), 365)
    if len(month) != HOURS or not (
        np.array_equal(month, exp_month)
        and np.array_equal(day, exp_day)
        and np.array_equal(hour, exp_hour)
    ):
        raise ValueError(f"{what}: rows are not 8760 consecutive hours Jan 1 01:00 .. Dec 31 24:00")


def _trapezoid(x: F64) -> F64:
    """Interval mean over [E − 1 h, E) of a quantity sampled at hour ends E (cyclic wrap)."""
    return 0.5 * (np.roll(x, 1) + x)


def _hour_means(t_k: F64, q: F64, p_pa: F64, wind: F64, rlds: F64) -> dict[str, F64]:
    """Hour means (trapezoidal rule) of the fields a TMY file gives at the hour ends."""
    fields = {"tas": t_k, "huss": q, "ps": p_pa, "sfcWind": wind, "rlds": rlds}
    return {k: _trapezoid(v) for k, v in fields.items()}


def _utc_starts(year: int, tz_hours: float) -> NDArray[np.datetime64]:
    local = np.datetime64(f"{year:04d}-01-01T00:00", "ns") + np.arange(HOURS) * np.timedelta64(
        3600, "s"
    )
    return local - np.timedelta64(round(tz_hours * 3600), "s")


def _humidity(t_c: F64, tdew_c: F64, p_pa: F64) -> tuple[F64, F64, int]:
    """Instantaneous vapour pressure [Pa] and specific humidity from dew point (FAO-56 eq. 14),
    with e capped at saturation at air temperature; returns the number of capped samples."""
    e = D.vapour_pressure_from_dewpoint(tdew_c) * 1e3
    esat = D.saturation_vapour_pressure(t_c) * 1e3
    capped = int(np.count_nonzero(e > esat))
    e = np.minimum(e, esat)
    return e, D.specific_humidity(e, p_pa), capped


def _col(df: pd.DataFrame, name: str) -> F64:
    return df[name].to_numpy(dtype=np.float64, copy=True)


def load_tmy3(
    name: str, *, timestep: int = 3600, year: int = 2001, precip_scale: float = 0.1
) -> xr.Dataset:
    """TMY3 station ``name`` (``tmy3-greensboro`` or ``tmy3-sandpoint``) as forcing.

    Options: ``year`` nominal non-leap year for the time axis; ``precip_scale`` factor applied
    to the ``Lprecip depth (mm)`` column (default 0.1, see below).

    Derived fields: ``huss`` from dew point and pressure (FAO-56 eq. 14 + exact q(e, p));
    ``rlds`` from air temperature, vapour pressure and OPAQUE cloud cover ``OpqCld`` (tenths)
    with Brutsaert (1975) clear-sky emissivity and the Crawford & Duchon (1999) cloud term. The
    opaque rather than the total cover is used because Crawford & Duchon's cloud fraction is
    defined by solar attenuation, which opaque cloud dominates, and their cloud term treats cloud
    as a black body at air temperature, which thin (non-opaque) cloud is not. Applied to the
    Amsterdam EPW record, this parameterisation with total cover averages 21 W m-2 above the
    file's EnergyPlus values, with opaque cover 7 W m-2 (docs/forcing.md).

    Precipitation. Only 1-hour accumulations (``Lprecip quantity (hr)`` = 1) are used. Missing
    reports (-9900) and multi-hour accumulations (3, 6, 24 h, 99 = unknown period, which overlap
    each other and cannot be de-duplicated) become 0; counts and the ignored amounts are in
    attrs. The depths in these two files are quantised as round(k x 2.54), i.e. hundredths of
    an inch written in tenths of a millimetre; read as mm, Greensboro would receive 8345 mm per
    year (its climate normal is about 1100 mm), read as 0.1 mm it receives 834 mm. Hence the
    default ``precip_scale=0.1``; pass 1.0 to take the column at face value.
    """
    if name not in TMY3_STATIONS:
        raise ForcingError("name", "known_source", f"unknown TMY3 station {name!r}")
    y = _check_year(year)
    ts = check_timestep(timestep, 3600, name)
    if isinstance(precip_scale, bool) or not isinstance(precip_scale, int | float):
        raise ForcingError(
            "precip_scale", "number", f"precip_scale: must be a number, got {precip_scale!r}"
        )
    if not 0.0 < float(precip_scale) <= 1.0:
        raise ForcingError(
            "precip_scale", "range", f"precip_scale: must be in (0, 1], got {precip_scale}"
        )
    import pvlib

    station = TMY3_STATIONS[name]
    df, meta = pvlib.iotools.read_tmy3(_pvlib_data(station.filename), map_variables=True)
    dates = pd.to_datetime(df["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    hours = df["Time (HH:MM)"].str.slice(0, 2).astype(int).to_numpy()
    _check_order(dates.dt.month.to_numpy(), dates.dt.day.to_numpy(), hours, station.filename)

    t_c, tdew_c = _col(df, "temp_air"), _col(df, "temp_dew")
    p_pa = _col(df, "pressure") * 100.0
    e, q, capped = _humidity(t_c, tdew_c, p_pa)
    cloud = _col(df, "OpqCld (tenths)") / 10.0
    t_k = D.celsius_to_kelvin(t_c)
    rlds_inst = D.downwelling_longwave(t_k, e, cloud)

    depth = _col(df, "Lprecip depth (mm)")
    qty = _col(df, "Lprecip quantity (hr)")
    missing = (depth <= -9900) | (qty <= -9900)
    multi = ~missing & (qty != 1)
    used = ~missing & ~multi
    pr = np.where(used, depth * float(precip_scale), 0.0) / 3600.0

    data = _hour_means(t_k, q, p_pa, _col(df, "wind_speed"), rlds_inst)
    data |= {"pr": pr, "rsds": _col(df, "ghi")}
    station_name = str(meta["Name"]).strip().strip('"')
    attrs: dict[str, Any] = {
        "source": name,
        "title": f"TMY3 typical meteorological year, {station_name}, {meta['State']} "
        f"(USAF {meta['USAF']}), hourly",
        "station_name": station_name,
        "station_id": f"USAF {meta['USAF']}",
        "utc_offset_hours": float(meta["TZ"]),
        "timestep_seconds": 3600,
        "height_wind_m": 10.0,
        "height_temperature_m": 2.0,
        "measured": "tas, huss (from dew point), ps, sfcWind, rsds (TMY3 GHI, partly modelled by "
        "NSRDB), pr (1-h liquid precipitation reports only)",
        "derived": "rlds (Brutsaert 1975 + Crawford & Duchon 1999 with OpqCld cloud fraction); "
        "huss (FAO-56 eq. 14 from dew point)",
        "pr_used_hours": int(np.count_nonzero(used)),
        "pr_missing_hours_set_to_zero": int(np.count_nonzero(missing)),
        "pr_multihour_reports_ignored": int(np.count_nonzero(multi)),
        "pr_multihour_ignored_depth_mm": float(
            np.sum(np.where(multi, depth, 0.0)) * float(precip_scale)
        ),
        "pr_depth_scale": float(precip_scale),
        "pr_annual_total_mm": float(pr.sum() * 3600.0),
        "huss_supersaturated_samples_capped": capped,
        "references": cite(["TMY3", "PVLIB", "FAO56", "BRUTSAERT1975", "CRAWFORD_DUCHON1999"]),
        "history": f"read {station.filename} with pvlib.iotools.read_tmy3 (pvlib "
        f"{pvlib.__version__}); re-timed to nominal year {y}, hour-ending local standard time "
        f"-> UTC interval starts; instantaneous fields averaged over each hour by the "
        f"trapezoidal rule; Lprecip depth x {float(precip_scale)} mm",
    }
    return single_cell(_utc_starts(y, float(meta["TZ"])), meta, data, attrs, ts)


def load_epw(
    name: str, *, timestep: int = 3600, year: int = 2001, missing_pr: str = "error"
) -> xr.Dataset:
    """EPW/IWEC station ``name`` (``epw-amsterdam``) as forcing.

    ``rlds`` is the file's horizontal infrared radiation. It is NOT a measurement: it matches,
    to within the file's 1 W m-2 rounding, the EnergyPlus Weather Converter formula
    ε = (0.787 + 0.764 ln(Tdew/273)) (1 + 0.0224 N − 0.0035 N² + 0.00028 N³), N the opaque sky
    cover in tenths (Clark & Allen 1978; Walton 1983); the loader recomputes the formula and
    records the largest difference in ``attrs["rlds_formula_max_abs_residual"]`` (0.68 W m-2).

    Precipitation: the IWEC file carries none (every ``liquid_precipitation_depth`` is 0).
    ``missing_pr="error"`` (default) refuses to load; ``missing_pr="zero"`` returns pr = 0 and
    says so in attrs (``pr_observed = "no"``).
    """
    if name not in EPW_STATIONS:
        raise ForcingError("name", "known_source", f"unknown EPW station {name!r}")
    y = _check_year(year)
    ts = check_timestep(timestep, 3600, name)
    check_missing_pr(
        missing_pr, name, "the IWEC file has no precipitation (all liquid_precipitation_depth = 0)"
    )
    import pvlib

    station = EPW_STATIONS[name]
    df, meta = pvlib.iotools.read_epw(_pvlib_data(station.filename))
    _check_order(
        df["month"].to_numpy(), df["day"].to_numpy(), df["hour"].to_numpy(), station.filename
    )
    depth = _col(df, "liquid_precipitation_depth")
    if np.any(depth > 0):  # pragma: no cover - not the case for the shipped file
        raise ValueError(f"{station.filename}: unexpected precipitation data; not handled")
    t_c, tdew_c = _col(df, "temp_air"), _col(df, "temp_dew")
    p_pa = _col(df, "atmospheric_pressure")
    _e, q, capped = _humidity(t_c, tdew_c, p_pa)
    t_k = D.celsius_to_kelvin(t_c)
    ir = _col(df, "ghi_infrared")
    n_opq = _col(df, "opaque_sky_cover")
    eps = (0.787 + 0.764 * np.log((tdew_c + 273.15) / 273.0)) * (
        1 + 0.0224 * n_opq - 0.0035 * n_opq**2 + 0.00028 * n_opq**3
    )
    ir_formula = eps * 5.6697e-8 * t_k**4
    ir_resid = float(np.max(np.abs(ir - ir_formula)))

    data = {
        "tas": _trapezoid(t_k),
        "huss": _trapezoid(q),
        "ps": _trapezoid(p_pa),
        "sfcWind": _trapezoid(_col(df, "wind_speed")),
        "pr": np.zeros(HOURS),
        "rsds": _col(df, "ghi"),
        "rlds": ir,
    }
    station_name = f"{meta['city']}, {meta['country']}"
    attrs: dict[str, Any] = {
        **station_attrs(
            name,
            f"IWEC typical year (EPW), {station_name} (WMO {meta['WMO_code']}), hourly",
            (station_name, f"WMO {meta['WMO_code']}"),
            float(meta["TZ"]),
        ),
        "measured": "tas, huss (from dew point), ps, sfcWind; rsds is IWEC's modelled global "
        "radiation (from cloud/sunshine observations)",
        "derived": "rlds = the file's horizontal infrared radiation, computed by the EnergyPlus "
        f"Weather Converter (Clark & Allen 1978 / Walton 1983; max |file - formula| = "
        f"{ir_resid:.2f} W m-2); huss (FAO-56 eq. 14 from dew point)",
        **zero_pr_attrs("the IWEC file has no precipitation data"),
        "rlds_formula_max_abs_residual": ir_resid,
        "huss_supersaturated_samples_capped": capped,
        "references": cite(["IWEC", "PVLIB", "FAO56", "CLARK_ALLEN1978"]),
        "history": f"read {station.filename} with pvlib.iotools.read_epw (pvlib "
        f"{pvlib.__version__}); re-timed from the file's month/day/hour (hour-ending local "
        f"standard time) to nominal year {y}, UTC interval starts; instantaneous fields "
        "averaged over each hour by the trapezoidal rule; pr set to 0 (missing_pr='zero')",
    }
    return single_cell(_utc_starts(y, float(meta["TZ"])), meta, data, attrs, ts)


TMY2_STATIONS = {"tmy2-miami": _Station("12839.tm2", "Miami FL (WBAN 12839)")}


def load_tmy2(
    name: str, *, timestep: int = 3600, year: int = 2001, missing_pr: str = "error"
) -> xr.Dataset:
    """TMY2 station ``name`` (``tmy2-miami``) as forcing, read with ``pvlib.iotools.read_tmy2``.

    Same time convention and derivations as :func:`load_tmy3` (hour-ending local standard time,
    re-timed to a nominal ``year``; ``huss`` from dew point, ``rlds`` from the opaque cloud
    cover). pvlib returns TMY2's integer fields unscaled: dry bulb and dew point in 0.1 °C, wind
    in 0.1 m s-1 (TMY2 manual, Marion & Urban 1995); they are scaled here. TMY2 has no
    precipitation amounts: ``missing_pr`` as for :func:`load_epw`.
    """
    if name not in TMY2_STATIONS:
        raise ForcingError("name", "known_source", f"unknown TMY2 station {name!r}")
    y = _check_year(year)
    ts = check_timestep(timestep, 3600, name)
    check_missing_pr(missing_pr, name, "TMY2 files carry no precipitation amounts")
    import pvlib

    station = TMY2_STATIONS[name]
    df, meta = pvlib.iotools.read_tmy2(_pvlib_data(station.filename))
    _check_order(
        df["month"].to_numpy(), df["day"].to_numpy(), df["hour"].to_numpy(), station.filename
    )
    t_c, tdew_c = _col(df, "DryBulb") / 10.0, _col(df, "DewPoint") / 10.0
    p_pa = _col(df, "Pressure") * 100.0
    e, q, capped = _humidity(t_c, tdew_c, p_pa)
    t_k = D.celsius_to_kelvin(t_c)
    rlds_inst = D.downwelling_longwave(t_k, e, _col(df, "OpqCld") / 10.0)
    data = _hour_means(t_k, q, p_pa, _col(df, "Wspd") / 10.0, rlds_inst)
    data |= {"pr": np.zeros(HOURS), "rsds": _col(df, "GHI")}
    city = f"{str(meta['City']).strip().title()} {meta['State']}"
    wban = f"WBAN {meta['WBAN']}"
    title = f"TMY2 typical meteorological year, {city} ({wban}), hourly"
    attrs = station_attrs(name, title, (city, wban), float(meta["TZ"])) | {
        "measured": "tas, huss (from dew point), ps, sfcWind (TMY2 1961-1990 station data); rsds "
        "(TMY2 GHI, mostly modelled by the NSRDB 1961-1990 METSTAT model)",
        "derived": "rlds (Brutsaert 1975 + Crawford & Duchon 1999 with OpqCld cloud fraction); "
        "huss (FAO-56 eq. 14 from dew point)",
        **zero_pr_attrs("TMY2 files carry no precipitation amounts"),
        "huss_supersaturated_samples_capped": capped,
        "references": cite(["TMY2", "PVLIB", "FAO56", "BRUTSAERT1975", "CRAWFORD_DUCHON1999"]),
        "history": f"read {station.filename} with pvlib.iotools.read_tmy2 (pvlib "
        f"{pvlib.__version__}); DryBulb, DewPoint x 0.1 degC, Wspd x 0.1 m s-1; re-timed to "
        f"nominal year {y}, hour-ending local standard time -> UTC interval starts; "
        "instantaneous fields averaged over each hour by the trapezoidal rule; pr set to 0 "
        "(missing_pr='zero')",
    }
    return single_cell(_utc_starts(y, float(meta["TZ"])), meta, data, attrs, ts)
