"""The forcing layout (the contract every source returns), its validation, and time aggregation.

Layout: ``xr.Dataset`` with dims ("time", "cell"); coords ``time`` (datetime64[ns], UTC, naive,
interval starts), ``cell`` (int64 0..n-1), ``lat``/``lon``/``elevation`` on ``cell``; float64
variables ``FORCING_VARIABLES`` with the registry's CF attributes, interval means over
[time, time + dt); attrs ``source``, ``title``, ``references``, ``timestep_seconds``,
``height_wind_m``, ``height_temperature_m``, ``history``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from emulators import variables as V
from emulators.constants import SECONDS_PER_DAY

#: The seven near-surface forcing fields every source provides, in this order.
FORCING_VARIABLES: tuple[str, ...] = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")

REQUIRED_ATTRS: tuple[str, ...] = (
    "source",
    "title",
    "references",
    "timestep_seconds",
    "height_wind_m",
    "height_temperature_m",
    "history",
)


class ForcingError(ValueError):
    """A bad source name or option. ``option`` names it, ``rule`` says which rule it broke."""

    def __init__(self, option: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.rule = rule


def build(
    time: ArrayLike,
    lat: ArrayLike,
    lon: ArrayLike,
    elevation: ArrayLike,
    data: Mapping[str, ArrayLike],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """Assemble and validate a forcing dataset. ``data`` maps each of ``FORCING_VARIABLES`` to a
    (time, cell) array in registry units; ``attrs`` must hold ``REQUIRED_ATTRS``."""
    t = np.asarray(time, dtype="datetime64[ns]")
    lat_a = np.asarray(lat, dtype=np.float64).reshape(-1)
    n = lat_a.shape[0]
    coords = {
        "time": ("time", t),
        "cell": ("cell", np.arange(n, dtype=np.int64)),
        "lat": ("cell", lat_a, V.get("lat").cf_attrs()),
        "lon": ("cell", np.asarray(lon, dtype=np.float64).reshape(-1), V.get("lon").cf_attrs()),
        "elevation": (
            "cell",
            np.asarray(elevation, dtype=np.float64).reshape(-1),
            {"units": "m", "long_name": "Surface Altitude", "standard_name": "surface_altitude"},
        ),
    }
    data_vars = {}
    for name in FORCING_VARIABLES:
        if name not in data:
            raise V.VariableError(name, "required", f"forcing variable {name!r} is missing")
        arr = np.asarray(data[name], dtype=np.float64)
        if arr.shape != (t.shape[0], n):
            raise V.VariableError(
                name, "shape", f"{name}: shape {arr.shape}, expected (time, cell) = ({t.size}, {n})"
            )
        attrs_v = V.get(name).cf_attrs()
        attrs_v["cell_methods"] = "time: mean"
        data_vars[name] = (("time", "cell"), arr, attrs_v)
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs))
    validate(ds)
    return ds


def station_attrs(
    source: str,
    title: str,
    station: tuple[str, str],
    utc_offset_hours: float,
    timestep_seconds: int = 3600,
    height_wind_m: float = 10.0,
    height_temperature_m: float = 2.0,
) -> dict[str, Any]:
    """The identity attrs of a station source; ``station`` = (name, id)."""
    return {
        "source": source,
        "title": title,
        "station_name": station[0],
        "station_id": station[1],
        "utc_offset_hours": float(utc_offset_hours),
        "timestep_seconds": int(timestep_seconds),
        "height_wind_m": float(height_wind_m),
        "height_temperature_m": float(height_temperature_m),
    }


def single_cell(
    time: ArrayLike,
    location: Mapping[str, Any],
    data: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any],
    timestep: int,
) -> xr.Dataset:
    """A one-cell (station) dataset from (time,) arrays at ``location`` (``latitude``,
    ``longitude`` and ``altitude`` or ``elevation``), aggregated to ``timestep``."""
    z = location["altitude"] if "altitude" in location else location["elevation"]
    ds = build(
        time,
        [location["latitude"]],
        [location["longitude"]],
        [z],
        {k: np.asarray(v)[:, None] for k, v in data.items()},
        attrs,
    )
    return aggregate(ds, timestep)


def validate(ds: xr.Dataset) -> None:
    """Check ``ds`` against the layout contract; raises ``VariableError``/``ValueError`` naming
    the variable, coordinate or attribute and the rule."""
    for name in ("time", "cell", "lat", "lon", "elevation"):
        if name not in ds.coords:
            raise ValueError(f"coordinate {name!r} is missing")
    if ds["time"].dtype != np.dtype("datetime64[ns]"):
        raise ValueError(f"time: dtype {ds['time'].dtype}, expected datetime64[ns]")
    if ds["cell"].dtype != np.dtype(np.int64) or not np.array_equal(
        ds["cell"].values, np.arange(ds.sizes["cell"])
    ):
        raise ValueError("cell: must be int64 0..n-1")
    for attr in REQUIRED_ATTRS:
        if attr not in ds.attrs:
            raise ValueError(f"attribute {attr!r} is missing")
    dt = int(ds.attrs["timestep_seconds"])
    steps = np.diff(ds["time"].values).astype("timedelta64[s]").astype(np.int64)
    if steps.size and not np.all(steps == dt):
        raise ValueError(f"time: steps must all equal timestep_seconds = {dt} s")
    V.check("lat", ds["lat"].values)
    V.check("lon", ds["lon"].values)
    for name in FORCING_VARIABLES:
        if name not in ds.data_vars:
            raise V.VariableError(name, "required", f"forcing variable {name!r} is missing")
        da = ds[name]
        if da.dims != ("time", "cell") or da.dtype != np.float64:
            raise V.VariableError(
                name,
                "layout",
                f"{name}: dims {da.dims} dtype {da.dtype}, expected ('time', 'cell') float64",
            )
        V.check(name, da.values, da.attrs.get("units"))


def check_timestep(timestep: Any, native: int, source: str) -> int:
    """Validate a requested ``timestep`` [s] against a source's native resolution ``native`` [s]:
    a positive integer multiple of ``native`` that divides a day or is a multiple of a day."""
    if isinstance(timestep, bool) or not isinstance(timestep, int | np.integer):
        raise ForcingError(
            "timestep",
            "integer",
            f"timestep: must be an integer number of seconds, got {timestep!r}",
        )
    ts = int(timestep)
    if ts <= 0:
        raise ForcingError("timestep", "positive", f"timestep: must be > 0 s, got {ts}")
    if ts % native:
        raise ForcingError(
            "timestep",
            "multiple_of_native",
            f"timestep: {ts} s is not a multiple of the {source} resolution ({native} s)",
        )
    if SECONDS_PER_DAY % ts and ts % SECONDS_PER_DAY:
        raise ForcingError(
            "timestep",
            "day_alignment",
            f"timestep: {ts} s must divide a day (86400 s) or be a multiple of a day",
        )
    return ts


def check_missing_pr(missing_pr: Any, source: str, why: str) -> None:
    """Validate the ``missing_pr`` option of a source without precipitation data: "error" (the
    default) refuses to load, naming ``why`` the source has none; "zero" accepts pr = 0 (the
    loader records it in attrs)."""
    if missing_pr not in ("error", "zero"):
        raise ForcingError(
            "missing_pr", "choice", f"missing_pr: must be 'error' or 'zero', got {missing_pr!r}"
        )
    if missing_pr == "error":
        raise ForcingError(
            "missing_pr",
            "no_precipitation_data",
            f"{source}: {why}; pass missing_pr='zero' to accept pr = 0 (recorded in attrs), or "
            "use another source",
        )


def zero_pr_attrs(why: str) -> dict[str, str]:
    """The attrs that say pr is not observed (``pr_observed``, ``pr_synthesised``)."""
    return {"pr_observed": "no", "pr_synthesised": f"pr = 0 everywhere: {why}"}


def aggregate(ds: xr.Dataset, timestep: int) -> xr.Dataset:
    """Interval means over blocks of ``timestep // ds.timestep_seconds`` consecutive steps,
    starting at the first step; a trailing incomplete block is dropped (noted in ``history``).
    Means of interval means are exact interval means, so totals of ``pr`` and ``rsds`` over
    whole blocks are conserved."""
    native = int(ds.attrs["timestep_seconds"])
    ts = check_timestep(timestep, native, str(ds.attrs.get("source", "source")))
    factor = ts // native
    if factor == 1:
        return ds
    nt = ds.sizes["time"]
    nblocks = nt // factor
    if nblocks == 0:
        raise ForcingError(
            "timestep",
            "shorter_than_record",
            f"timestep: {ts} s is longer than the whole record ({nt * native} s)",
        )
    keep = nblocks * factor
    ncell = ds.sizes["cell"]
    data = {
        name: ds[name].values[:keep].reshape(nblocks, factor, ncell).mean(axis=1)
        for name in FORCING_VARIABLES
    }
    attrs = dict(ds.attrs)
    attrs["timestep_seconds"] = ts
    note = f"aggregated to {ts} s interval means (blocks of {factor} x {native} s)"
    if keep < nt:
        note += f"; trailing {nt - keep} step(s) dropped"
    attrs["history"] = f"{attrs['history']}\n{note}"
    return build(
        ds["time"].values[:keep:factor],
        ds["lat"].values,
        ds["lon"].values,
        ds["elevation"].values,
        data,
        attrs,
    )
