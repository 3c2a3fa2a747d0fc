"""Daily summaries of a forcing dataset (for FAO-56 style daily comparisons)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from emulators import variables as V
from emulators.constants import SECONDS_PER_DAY
from emulators.forcing._layout import ForcingError, validate

DAILY_MEANS: tuple[str, ...] = ("tas", "rsds", "rlds", "sfcWind", "huss", "ps", "pr")


def daily_summary(ds: xr.Dataset, *, utc_offset_hours: float | None = None) -> xr.Dataset:
    """Daily ``tasmin``, ``tasmax`` (extremes of the interval means) and daily means of ``tas``,
    ``rsds``, ``rlds``, ``sfcWind``, ``huss``, ``ps``, ``pr`` (same units as ``ds``: ``pr`` stays
    a flux in kg m-2 s-1, multiply by 86400 for mm d-1).

    Days are calendar days in UTC shifted by ``utc_offset_hours`` (default: the dataset's
    ``utc_offset_hours`` attribute, else 0); ``time`` holds each local date at 00:00. Only
    complete days (every step present) are returned. Note that extremes of hourly means are
    slightly less extreme than instantaneous thermometer extremes.
    """
    validate(ds)
    dt = int(ds.attrs["timestep_seconds"])
    if SECONDS_PER_DAY % dt:
        raise ForcingError("ds", "sub_daily", f"ds: timestep {dt} s must divide a day")
    off = ds.attrs.get("utc_offset_hours", 0.0) if utc_offset_hours is None else utc_offset_hours
    if isinstance(off, bool) or not isinstance(off, int | float | np.floating):
        raise ForcingError("utc_offset_hours", "number", f"utc_offset_hours: got {off!r}")
    if not -14.0 <= float(off) <= 14.0 or (float(off) * 3600) % dt:
        raise ForcingError(
            "utc_offset_hours",
            "range",
            f"utc_offset_hours: must be in [-14, 14] and a multiple of the {dt} s step, got {off}",
        )
    spd = SECONDS_PER_DAY // dt
    local = ds["time"].values + np.timedelta64(round(float(off) * 3600), "s")
    day = local.astype("datetime64[D]")
    # complete days only: start at the first local midnight, then whole blocks of spd steps
    midnights = np.flatnonzero(local == day.astype(local.dtype))
    first = int(midnights[0]) if midnights.size else local.size
    ndays = (local.size - first) // spd
    if ndays == 0:
        raise ForcingError("ds", "complete_day", "ds: contains no complete (local) day")
    sl = slice(first, first + ndays * spd)
    ncell = ds.sizes["cell"]

    def blocks(name: str) -> np.ndarray:
        return ds[name].values[sl].reshape(ndays, spd, ncell)

    tas = blocks("tas")
    out: dict[str, Any] = {
        "tasmin": (("time", "cell"), tas.min(axis=1), _attrs("tasmin", "minimum")),
        "tasmax": (("time", "cell"), tas.max(axis=1), _attrs("tasmax", "maximum")),
    }
    for name in DAILY_MEANS:
        attrs = V.get(name).cf_attrs()
        attrs["cell_methods"] = "time: mean within days"
        out[name] = (("time", "cell"), blocks(name).mean(axis=1), attrs)
    dates = day[sl][::spd].astype("datetime64[ns]")
    attrs_ds = dict(ds.attrs)
    attrs_ds["timestep_seconds"] = SECONDS_PER_DAY
    attrs_ds["utc_offset_hours"] = float(off)
    attrs_ds["history"] = (
        f"{ds.attrs['history']}\ndaily_summary: {ndays} complete local days "
        f"(UTC{float(off):+g} h) of {spd} x {dt} s"
    )
    coords: dict[str, Any] = {k: ds.coords[k] for k in ("cell", "lat", "lon", "elevation")}
    coords["time"] = ("time", dates, {"long_name": "local date (start of day)"})
    return xr.Dataset(out, coords=coords, attrs=attrs_ds)


def _attrs(name: str, method: str) -> dict[str, Any]:
    return {
        "units": "K",
        "long_name": f"Daily {method.capitalize()} Near-Surface Air Temperature",
        "standard_name": "air_temperature",
        "cell_methods": f"time: {method} within days",
        "comment": f"daily {method} of the dataset's interval means",
    }
