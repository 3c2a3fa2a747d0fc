"""Plots of a coupled run (matplotlib's object API, no pyplot state): the global-mean temperature
series, maps of the changes of T, LE, LAI and albedo, the land feedback maps and the yearly
energy budget. The coastline drawn on maps is the 50 % land-fraction contour of the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from emulators.plots import save_png

MAP_FIELDS: tuple[tuple[str, str, str, bool], ...] = (
    # (variable, title, units, percent change)
    ("tas", "ΔT", "K", False),
    ("land_hfls", "ΔLE", "%", True),
    ("land_lai", "ΔLAI", "%", True),
    ("land_albedo", "Δalbedo", "%", True),
)
#: percent changes are not shown where the baseline is below this (LE W m-2, LAI m2 m-2)
PERCENT_FLOOR = {"land_hfls": 2.0, "land_lai": 0.1, "land_albedo": 0.01}


def _grid_field(ds: xr.Dataset, values: np.ndarray, land: bool) -> np.ndarray:
    ny, nx = (int(v) for v in ds.attrs["grid_shape"])
    full = np.full(ny * nx, np.nan)
    if land:
        full[ds["land_cell_index"].values] = values
    else:
        full[:] = values
    return full.reshape(ny, nx)


def change_field(
    ds: xr.Dataset, name: str, periods: tuple[tuple[int, int], tuple[int, int]], pct: bool
) -> np.ndarray:
    """(ny, nx) future − baseline of ``name`` (in % of the baseline with ``pct``)."""
    (b0, b1), (f0, f1) = periods
    base = ds[name].sel(year=slice(b0, b1)).mean("year").values
    fut = ds[name].sel(year=slice(f0, f1)).mean("year").values
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = 100.0 * (fut - base) / np.abs(base) if pct else fut - base
    if pct:
        diff = np.where(np.abs(base) >= PERCENT_FLOOR.get(name, 0.0), diff, np.nan)
    return _grid_field(ds, diff, land="land_cell" in ds[name].dims)


def _map(ax: Any, ds: xr.Dataset, field: np.ndarray, title: str, units: str) -> None:
    lat = np.unique(ds["lat"].values)
    lon = np.unique(ds["lon"].values)
    dlat, dlon = lat[1] - lat[0], lon[1] - lon[0]
    lat_e = np.append(lat - dlat / 2, lat[-1] + dlat / 2)
    lon_e = np.append(lon - dlon / 2, lon[-1] + dlon / 2)
    finite = field[np.isfinite(field)]
    lim = float(np.nanpercentile(np.abs(finite), 95)) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    mesh = ax.pcolormesh(lon_e, lat_e, field, cmap="RdBu_r", vmin=-lim, vmax=lim)
    frac = _grid_field(ds, ds["sftlf"].values / 100.0, land=False)
    ax.contour(lon, lat, frac, levels=[0.5], colors="k", linewidths=0.5)
    ax.set_title(title)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.figure.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.8, label=units)


def maps(
    datasets: dict[str, xr.Dataset],
    periods: tuple[tuple[int, int], tuple[int, int]],
    path: Path,
    feedback: bool,
    pair: tuple[str, str] = ("dynamic", "frozen"),
) -> Path:
    """2×2 maps of the changes in the dynamic run (or the only run), or with ``feedback`` of the
    changes in run ``pair[0]`` minus those in run ``pair[1]`` (default dynamic − frozen)."""
    fig = Figure(figsize=(12, 7))
    axes = fig.subplots(2, 2)
    main = datasets.get(pair[0]) if feedback else None
    main = main or datasets.get("dynamic") or next(iter(datasets.values()))
    (b0, b1), (f0, f1) = periods
    for ax, (name, title, units, pct) in zip(axes.ravel(), MAP_FIELDS, strict=True):
        field = change_field(main, name, periods, pct)
        label = f"{title} {f0}-{f1} vs {b0}-{b1}"
        if feedback:
            field = field - change_field(datasets[pair[1]], name, periods, pct)
            label = f"{title}: {pair[0]} − {pair[1]}"
            units = "K" if not pct else "percentage points"
        _map(ax, main, field, label, units)
    fig.tight_layout()
    return Path(save_png(fig, path, dpi=110))


def temperature_series(
    datasets: dict[str, xr.Dataset],
    periods: tuple[tuple[int, int], tuple[int, int]],
    path: Path,
    ar6: tuple[float, float, float] | None = None,
) -> Path:
    """Global- and land-mean tas per year and experiment, as anomalies from the baseline; the
    AR6 very likely range at the future period when given."""
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    (b0, b1), (f0, f1) = periods
    for name, ds in datasets.items():
        years = ds["year"].values
        for var, style in (("tas_global", "-"), ("tas_land", "--")):
            series = ds[var]
            base = float(series.sel(year=slice(b0, b1)).mean())
            ax.plot(years, series.values - base, style, label=f"{name}, {var.split('_')[1]}")
    if ar6 is not None:
        mid, lo, hi = ar6
        ax.fill_between([f0, f1], lo, hi, color="0.85", label="AR6 very likely (global)")
        ax.hlines(mid, f0, f1, colors="0.4")
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("year")
    ax.set_ylabel(f"tas anomaly vs {b0}-{b1} (K)")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title("Near-surface air temperature")
    return Path(save_png(fig, path, dpi=110))


def energy_budget(datasets: dict[str, xr.Dataset], path: Path) -> Path:
    """Yearly global energy budget terms and the residual (log scale)."""
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for name, ds in datasets.items():
        years = ds["year"].values
        for term in ("toa", "surface", "atmosphere", "ocean"):
            ax1.plot(years, ds[f"budget_{term}"].values, label=f"{name} {term}")
        resid = np.abs(ds["budget_residual"].values)
        ax2.semilogy(years, np.maximum(resid, 1e-18), label=f"{name} |yearly|")
        ax2.semilogy(years, np.maximum(ds["budget_residual_step_max"].values, 1e-18), ":",
                     label=f"{name} max |step|")  # fmt: skip
    ax1.set_ylabel("W m-2")
    ax1.set_title("global energy budget")
    ax1.legend(fontsize="x-small")
    ax2.set_title("TOA − surface − Δstorage residual")
    ax2.set_ylabel("W m-2")
    ax2.legend(fontsize="x-small")
    fig.tight_layout()
    return Path(save_png(fig, path, dpi=110))
