"""Years of satellite-derived irradiance and reanalysis/model meteorology shipped with pvlib 0.11.2:
the PVGIS typical year at 45°N 8°E (Piedmont, Italy), NSRDB PSM3 2017 at 40.53°N 108.54°W
(Colorado, 2168 m) and SolarAnywhere 2021 at Burlington VT. None of them is a station record: the
irradiance is modelled from satellite images and the meteorology comes from reanalyses or weather
models (stated per source in ``attrs["measured"]``). None carries precipitation (``missing_pr``
as for ``epw-amsterdam``).

Time conventions (each checked by a test on the diurnal cycle of ``rsds``):

* PVGIS: rows labelled by UTC hour, values at the label (the mean diurnal cycle of G(h) is
  symmetric about 11:30 UTC, i.e. about solar noon at 8°E, between the 11:00 and 12:00 labels).
  Interval means over [t, t + 1 h) by the trapezoidal rule (x(t) + x(t + 1 h)) / 2, cyclic over
  the typical year (months from different years re-timed onto one nominal non-leap ``year``).
* PSM3: half-hourly rows in local standard time (UTC−7), instantaneous values at the label
  (NSRDB); trapezoidal interval means over [t, t + 30 min); the last interval, which has no
  following sample, holds the last value (a real year is not cyclic).
* SolarAnywhere: "Averaging Method: End of Period" (file header): each row is the mean over the
  hour ending at its label (local standard time, UTC−5), used as it is.

Derived longwave for PSM3 and SolarAnywhere: Brutsaert (1975) + Crawford & Duchon (1999) with the
cloud fraction 1 − Rs/Rso of each LOCAL day, Rso the FAO-56 clear-sky radiation (eq. 37) with the
hour-integrated extraterrestrial irradiance (``_astro.toa_mean_irradiance``), constant through
the day — the method of the daily sources (validated against BSRN Payerne, docs/forcing.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from emulators.constants import SECONDS_PER_DAY
from emulators.forcing import _astro as A
from emulators.forcing import _derive as D
from emulators.forcing._layout import (
    check_missing_pr,
    check_timestep,
    single_cell,
    station_attrs,
    zero_pr_attrs,
)
from emulators.forcing._references import cite
from emulators.forcing.typical_year import (
    HOURS,
    _check_order,
    _check_year,
    _col,
    _humidity,
    _pvlib_data,
    _trapezoid,
    _utc_starts,
)

F64 = NDArray[np.float64]
PVGIS_FILE = "tmy_45.000_8.000_2005_2023.csv"
PSM3_FILE = "test_read_psm3.csv"
SOLARANYWHERE_FILE = (
    "Burlington, United States SolarAnywhere Time Series 2021 Lat_44_465 Lon_-73_205 "
    "TMY3 format.csv"
)
DAILY_CLOUD = (
    "rlds (Brutsaert 1975 + Crawford & Duchon 1999, cloud fraction 1 - Rs/Rso per local day, "
    "Rso = FAO-56 eq. 37 clear-sky radiation from the hour-integrated extraterrestrial irradiance)"
)


def _humidity_from_rh(t_c: F64, rh: F64, p_pa: F64) -> tuple[F64, F64, int]:
    """Vapour pressure [Pa] and specific humidity from relative humidity [%] (FAO-56 eq. 11 for
    saturation), RH capped at 100 %; returns the number of capped samples."""
    capped = int(np.count_nonzero(rh > 100.0))
    e = np.clip(rh, 0.0, 100.0) / 100.0 * D.saturation_vapour_pressure(t_c) * 1e3
    return e, D.specific_humidity(e, p_pa), capped


def _forward_trapezoid(x: F64, cyclic: bool) -> F64:
    """Interval mean over [t_i, t_{i+1}) of a quantity sampled at the interval starts t_i; the
    last interval wraps onto the first sample (``cyclic``) or holds the last sample."""
    out = np.roll(_trapezoid(x), -1)
    if not cyclic:
        out[-1] = x[-1]
    return out


def _daily_cloud_fraction(
    times: NDArray[np.datetime64], rsds: F64, lat: float, lon: float, z: float, per_day: int
) -> tuple[F64, F64]:
    """(cloud fraction per step, per day) from the ratio of each day's observed to clear-sky
    global radiation; ``times`` start at a local midnight and hold whole days of ``per_day``
    steps of equal length."""
    dt = float((times[1] - times[0]) / np.timedelta64(1, "s"))
    rso = D.clear_sky_transmissivity_fao56(z) * A.toa_mean_irradiance(times, dt, [lat], [lon])[:, 0]
    days = rsds.size // per_day
    clf = D.cloud_fraction_from_transmissivity(
        rsds.reshape(days, per_day).sum(1), rso.reshape(days, per_day).sum(1)
    )
    return np.repeat(clf, per_day), clf


def load_pvgis_tmy(
    name: str = "pvgis-tmy-italy",
    *,
    timestep: int = 3600,
    year: int = 2001,
    missing_pr: str = "error",
) -> xr.Dataset:
    """PVGIS typical meteorological year 2005-2023 at 45.0°N 8.0°E, 250 m, hourly."""
    y = _check_year(year)
    ts = check_timestep(timestep, 3600, name)
    check_missing_pr(missing_pr, name, "PVGIS TMY files carry no precipitation")
    import pvlib

    df, months, inputs, _ = pvlib.iotools.read_pvgis_tmy(_pvlib_data(PVGIS_FILE))
    idx = df.index.tz_convert("UTC")
    _check_order(idx.month.to_numpy(), idx.day.to_numpy(), idx.hour.to_numpy() + 1, PVGIS_FILE)
    t_c, p_pa = _col(df, "temp_air"), _col(df, "pressure")
    _e, q, capped = _humidity_from_rh(t_c, _col(df, "relative_humidity"), p_pa)
    data = {
        "tas": D.celsius_to_kelvin(t_c),
        "huss": q,
        "ps": p_pa,
        "sfcWind": _col(df, "wind_speed"),
        "pr": np.zeros(HOURS),
        "rsds": _col(df, "ghi"),
        "rlds": _col(df, "IR(h)"),
    }
    data = {k: v if k == "pr" else _forward_trapezoid(v, cyclic=True) for k, v in data.items()}
    years = ", ".join(f"{m['month']}: {m['year']}" for m in months)
    attrs: dict[str, Any] = {
        **station_attrs(
            name,
            "PVGIS typical meteorological year 2005-2023, 45.0N 8.0E (Piedmont, Italy), hourly",
            ("PVGIS grid point 45.0N 8.0E (no station)", "PVGIS TMY 45.000_8.000"),
            0.0,
        ),
        "measured": "nothing at a station: rsds = G(h), satellite-derived (PVGIS); tas (T2m), "
        "huss (from RH), ps (SP), sfcWind (WS10m) and rlds (IR(h)) from the ERA5 reanalysis",
        "derived": "huss from RH (FAO-56 eq. 11) and SP",
        "tmy_months_from_years": years,
        **zero_pr_attrs("PVGIS TMY files carry no precipitation"),
        "relative_humidity_above_100_capped": capped,
        "references": cite(["PVGIS", "PVLIB", "FAO56"]),
        "history": f"read {PVGIS_FILE} with pvlib.iotools.read_pvgis_tmy (pvlib "
        f"{pvlib.__version__}); re-timed to nominal year {y}, UTC; values at the labels averaged "
        "over [t, t + 1 h) by the trapezoidal rule (cyclic); pr set to 0 (missing_pr='zero')",
    }
    return single_cell(_utc_starts(y, 0.0), inputs, data, attrs, ts)


def load_psm3(
    name: str = "psm3-colorado", *, timestep: int = 3600, missing_pr: str = "error"
) -> xr.Dataset:
    """NSRDB PSM3 2017, location 401182 (40.53°N 108.54°W, 2168 m), half-hourly; ``timestep``
    any multiple of 1800 s that divides a day (default 3600)."""
    ts = check_timestep(timestep, 1800, name)
    check_missing_pr(missing_pr, name, "NSRDB PSM3 files carry no precipitation")
    import pvlib

    df, meta = pvlib.iotools.read_psm3(_pvlib_data(PSM3_FILE), map_variables=True)
    local = df.index.tz_localize(None)
    n = len(local)
    if not local.equals(pd.date_range("2017-01-01", periods=n, freq="30min")) or n != 17520:
        raise ValueError(f"{PSM3_FILE}: rows are not the half-hours of 2017 in local time")
    tz = float(meta["Time Zone"])
    times = (local - pd.Timedelta(hours=tz)).to_numpy(dtype="datetime64[ns]")
    t_c, p_pa = _col(df, "temp_air"), _col(df, "pressure") * 100.0
    e, q, capped = _humidity(t_c, _col(df, "temp_dew"), p_pa)
    t_k = D.celsius_to_kelvin(t_c)
    lat, lon, z = float(meta["latitude"]), float(meta["longitude"]), float(meta["altitude"])
    rsds = _forward_trapezoid(_col(df, "ghi"), cyclic=False)
    clf, clf_day = _daily_cloud_fraction(times, rsds, lat, lon, z, SECONDS_PER_DAY // 1800)
    rlds_inst = D.downwelling_longwave(t_k, e, clf)
    data = {
        "tas": t_k,
        "huss": q,
        "ps": p_pa,
        "sfcWind": _col(df, "wind_speed"),
        "rlds": rlds_inst,
    }
    data = {k: _forward_trapezoid(v, cyclic=False) for k, v in data.items()}
    data |= {"pr": np.zeros(n), "rsds": rsds}
    attrs: dict[str, Any] = {
        **station_attrs(
            name,
            f"NSRDB PSM3 (v{meta['Version']}) 2017, location {meta['Location ID']} "
            f"({lat}N, {-lon}W, {z:g} m, Colorado), half-hourly",
            (
                f"NSRDB pixel {meta['Location ID']}, NW Colorado (no station)",
                f"NSRDB {meta['Location ID']}",
            ),
            tz,
            1800,
            2.0,
        ),
        "measured": "nothing at a station: rsds = GHI from the Physical Solar Model v3 "
        "(satellite); tas, huss (from dew point), ps, sfcWind from MERRA-2 as interpolated by the "
        "NSRDB (wind height not stated in the file; 2 m assumed)",
        "derived": f"{DAILY_CLOUD}; huss (FAO-56 eq. 14 from dew point)",
        "cloud_fraction_daily_mean": float(clf_day.mean()),
        **zero_pr_attrs("NSRDB PSM3 files carry no precipitation"),
        "huss_supersaturated_samples_capped": capped,
        "last_interval_held": "the final half-hour holds the last sample (no later sample)",
        "references": cite(["NSRDB", "PVLIB", "FAO56", "BRUTSAERT1975", "CRAWFORD_DUCHON1999"]),
        "history": f"read {PSM3_FILE} with pvlib.iotools.read_psm3 (pvlib {pvlib.__version__}); "
        f"local standard time (UTC{tz:+g}) -> UTC; values at the labels averaged over [t, t + "
        "30 min) by the trapezoidal rule; pr set to 0 (missing_pr='zero')",
    }
    return single_cell(times, meta, data, attrs, ts)


def load_solaranywhere(
    name: str = "solaranywhere-burlington", *, timestep: int = 3600, missing_pr: str = "error"
) -> xr.Dataset:
    """SolarAnywhere 2021 time series in TMY3 format, Burlington VT (44.465°N 73.205°W, 41 m),
    hourly; read with ``pvlib.iotools.read_tmy3`` (the header is ISO-8859-1)."""
    ts = check_timestep(timestep, 3600, name)
    check_missing_pr(missing_pr, name, "the SolarAnywhere file carries no precipitation")
    import pvlib

    df, meta = pvlib.iotools.read_tmy3(
        _pvlib_data(SOLARANYWHERE_FILE), map_variables=True, encoding="iso-8859-1"
    )
    ends = pd.to_datetime(df["Date (MM/DD/YYYY)"], format="%m/%d/%Y") + pd.to_timedelta(
        df["Time (HH:MM)"].str.slice(0, 2).astype(int), unit="h"
    )  # the hour ending at local midnight is labelled 00:00 of the next day
    if not pd.DatetimeIndex(ends).equals(
        pd.date_range("2021-01-01 01:00", periods=HOURS, freq="h")
    ):
        raise ValueError(f"{SOLARANYWHERE_FILE}: rows are not the 8760 hours of 2021")
    times = _utc_starts(2021, float(meta["TZ"]))
    lat, lon, z = float(meta["latitude"]), float(meta["longitude"]), float(meta["altitude"])
    t_c = _col(df, "temp_air")
    p_pa = D.pressure_from_elevation(np.full(HOURS, z))
    e, q, capped = _humidity_from_rh(t_c, _col(df, "relative_humidity"), p_pa)
    t_k = D.celsius_to_kelvin(t_c)
    rsds = _col(df, "ghi")
    clf, clf_day = _daily_cloud_fraction(times, rsds, lat, lon, z, 24)
    data = {
        "tas": t_k,
        "huss": q,
        "ps": p_pa,
        "sfcWind": _col(df, "wind_speed"),
        "pr": np.zeros(HOURS),
        "rsds": rsds,
        "rlds": D.downwelling_longwave(t_k, e, clf),
    }
    attrs: dict[str, Any] = {
        **station_attrs(
            name,
            "SolarAnywhere 2021 time series (TMY3 format), Burlington VT, hourly",
            (
                "SolarAnywhere pixel 44.465N 73.205W, Burlington VT (no station)",
                "SolarAnywhere 44.465,-73.205",
            ),
            float(meta["TZ"]),
        ),
        "measured": "nothing at a station: rsds = satellite-derived GHI (SolarAnywhere v3.6); "
        "tas, huss (from RH) and sfcWind from SolarAnywhere's weather data (integer degC, %, "
        "m s-1; wind height not stated, 10 m assumed as in TMY3)",
        "derived": f"{DAILY_CLOUD}; huss from RH (FAO-56 eq. 11); ps from elevation (FAO-56 "
        "eq. 7; the file has no pressure)",
        "cloud_fraction_daily_mean": float(clf_day.mean()),
        **zero_pr_attrs("the SolarAnywhere file carries no precipitation"),
        "relative_humidity_above_100_capped": capped,
        "references": cite(
            ["SOLARANYWHERE", "PVLIB", "FAO56", "BRUTSAERT1975", "CRAWFORD_DUCHON1999"]
        ),
        "history": f"read {SOLARANYWHERE_FILE} with pvlib.iotools.read_tmy3 (pvlib "
        f"{pvlib.__version__}); hour-ending period means, local standard time -> UTC interval "
        "starts; pr set to 0 (missing_pr='zero')",
    }
    return single_cell(times, meta, data, attrs, ts)
