"""BSRN Payerne, June 2016, 1-minute basic measurements (logical record 0100), shipped with
pvlib 0.11.2 as ``bsrn-pay0616.dat.gz`` and read with ``pvlib.iotools.read_bsrn``.

Measured: global (``rsds``) and downwelling longwave (``rlds``) irradiance, air temperature,
relative humidity, station pressure, all 1-minute means labelled by the START of the minute, UTC
(BSRN station-to-archive convention, see the ``read_bsrn`` docstring). Not in LR0100: wind and
precipitation. Wind is filled with a constant (default the FAO-56 2 m s-1 at 2 m, the global
station average FAO-56 recommends when wind is missing); precipitation is refused unless
``missing_pr="zero"``. Both are stated in attrs. (The file's SYNOP record LR1000 holds 3-hourly
wind groups, but its wind-unit indicator is not decodable without the BSRN format document, so it
is not used.)

Cleaning, each counted in attrs: gaps (NaN) are linearly interpolated in time (the longest gap is
4 min); negative night-time irradiance offsets (down to -1 W m-2) are set to 0; relative humidity
above 100 % (sensor overshoot to 100.5 %) is capped at 100 %.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from emulators.constants import SECONDS_PER_DAY
from emulators.forcing import _derive as D
from emulators.forcing._layout import (
    ForcingError,
    check_missing_pr,
    check_timestep,
    single_cell,
    zero_pr_attrs,
)
from emulators.forcing._references import cite

FILENAME = "bsrn-pay0616.dat.gz"


def _longest_nan_run(x: np.ndarray) -> int:
    isnan = np.concatenate(([0], np.isnan(x).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(isnan))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def load_bsrn(
    name: str = "bsrn-payerne",
    *,
    timestep: int = 3600,
    wind: float = D.FAO56_DEFAULT_WIND_2M,
    missing_pr: str = "error",
) -> xr.Dataset:
    """BSRN Payerne June 2016 as forcing; ``timestep`` any multiple of 60 s that divides a day
    (or a multiple of a day). ``wind`` [m s-1] the constant wind speed at 2 m used to fill the
    missing wind; ``missing_pr`` "error" (default: refuse) or "zero" (pr = 0, documented)."""
    ts = check_timestep(timestep, 60, name)
    if isinstance(wind, bool) or not isinstance(wind, int | float):
        raise ForcingError("wind", "number", f"wind: must be a number in m s-1, got {wind!r}")
    if not 0.0 < float(wind) <= 75.0:
        raise ForcingError("wind", "range", f"wind: must be in (0, 75] m s-1, got {wind}")
    check_missing_pr(missing_pr, name, "BSRN basic measurements (LR0100) have no precipitation")
    import pvlib

    path = os.path.join(os.path.dirname(pvlib.__file__), "data", FILENAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: this source needs pvlib==0.11.2")
    with warnings.catch_warnings():  # pvlib 0.11.2 uses the pandas unit 'd' (deprecated)
        warnings.filterwarnings("ignore", message="'d' is deprecated", module="pvlib")
        df, meta = pvlib.iotools.read_bsrn(path)
    idx = df.index.tz_convert("UTC").tz_localize(None)
    n = len(idx)
    expected = pd.date_range(idx[0], periods=n, freq="1min")
    if not idx.equals(expected) or (n * 60) % SECONDS_PER_DAY:
        raise ValueError(f"{FILENAME}: records are not whole days of consecutive minutes")

    counts: dict[str, Any] = {}
    cols: dict[str, np.ndarray] = {}
    for col in ("ghi", "lwd", "temp_air", "relative_humidity", "pressure"):
        x = df[col].to_numpy(dtype=np.float64)
        counts[f"{col}_gap_minutes_interpolated"] = int(np.isnan(x).sum())
        counts[f"{col}_longest_gap_minutes"] = _longest_nan_run(x)
        cols[col] = pd.Series(x).interpolate(method="linear", limit_direction="both").to_numpy()
    ghi = cols["ghi"]
    counts["ghi_negative_minutes_set_to_zero"] = int(np.count_nonzero(ghi < 0))
    ghi = np.clip(ghi, 0.0, None)
    rh = cols["relative_humidity"]
    counts["relative_humidity_above_100_capped"] = int(np.count_nonzero(rh > 100.0))
    rh = np.clip(rh, 0.0, 100.0)

    t_c = cols["temp_air"]
    p_pa = cols["pressure"] * 100.0
    e = rh / 100.0 * D.saturation_vapour_pressure(t_c) * 1e3
    data = {
        "tas": D.celsius_to_kelvin(t_c),
        "huss": D.specific_humidity(e, p_pa),
        "ps": p_pa,
        "sfcWind": np.full(n, float(wind)),
        "pr": np.zeros(n),
        "rsds": ghi,
        "rlds": cols["lwd"],
    }
    station_name = "Payerne (PAY), Switzerland"
    synop = meta.get('identification of "SYNOP" station', "06610")
    attrs: dict[str, Any] = {
        "source": name,
        "title": f"BSRN {station_name}, June 2016, 1-minute basic measurements",
        "station_name": station_name,
        "station_id": f"BSRN {meta.get('station identification number', 21)}, SYNOP {synop}",
        "utc_offset_hours": 0.0,
        "timestep_seconds": 60,
        "height_wind_m": 2.0,
        "height_temperature_m": 2.0,
        "measured": "tas, huss (from relative humidity, FAO-56 eq. 11), ps, rsds (global), rlds "
        "(pyrgeometer)",
        "derived": "none",
        "sfcWind_synthesised": f"constant {float(wind)} m s-1 at 2 m (BSRN LR0100 has no wind; "
        "FAO-56 recommends 2 m s-1 when wind data are missing)",
        **zero_pr_attrs("BSRN LR0100 has no precipitation"),
        **counts,
        "references": cite(["BSRN", "PVLIB", "FAO56"]),
        "history": f"read {FILENAME} (LR0100) with pvlib.iotools.read_bsrn (pvlib "
        f"{pvlib.__version__}); gaps linearly interpolated, negative irradiance set to 0, RH "
        f"capped at 100 %; sfcWind constant {float(wind)} m s-1; pr set to 0 "
        "(missing_pr='zero')",
    }
    return single_cell(idx.to_numpy(dtype="datetime64[ns]"), meta, data, attrs, ts)
