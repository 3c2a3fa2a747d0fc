"""Summaries and plots of reference-model runs (per land-cover class)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emulators import constants as C


def class_summary(out: xr.Dataset, forcing: xr.Dataset) -> pd.DataFrame:
    """One row per cell: annual-mean LE and H [W m-2], Bowen ratio H/LE, ET/P, LAI range and
    mean soil water. ``forcing`` must share the cells (for P)."""
    rows = []
    for c in range(out.sizes["cell"]):
        o = out.isel(cell=c)
        p = float(forcing["pr"].isel(cell=c).mean())
        le, h = float(o["hfls"].mean()), float(o["hfss"].mean())
        et = float(o["evspsbl"].mean())
        label = str(o["land_cover"].values) if "land_cover" in o.coords else str(c)
        rows.append(
            {
                "class": label,
                "LE [W m-2]": le,
                "H [W m-2]": h,
                "G [W m-2]": float(o["hfdsl"].mean()),
                "Bowen H/LE": h / le if abs(le) > 1e-9 else float("nan"),
                "ET/P": et / p if p > 0 else float("nan"),
                "ET [mm/yr]": et * C.SECONDS_PER_DAY * C.DAYS_PER_YEAR,
                "LAI min": float(o["lai"].min()),
                "LAI max": float(o["lai"].max()),
                "albedo": float(o["albedo"].mean()),
                "runoff [mm/yr]": float(o["mrro"].mean()) * C.SECONDS_PER_DAY * C.DAYS_PER_YEAR,
            }
        )
    return pd.DataFrame(rows).set_index("class")


def plot_run(out: xr.Dataset, path: str | Path, title: str = "") -> Path:
    """Daily means of LE, H, G, skin temperature, LAI and soil water, one line per cell."""
    daily = out[["hfls", "hfss", "hfdsl", "ts", "lai", "mrso"]].resample(time="1D").mean()
    fig = Figure(figsize=(13, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, sharex=True).ravel()
    labels = (
        [str(v) for v in out["land_cover"].values]
        if "land_cover" in out.coords
        else [str(c) for c in out["cell"].values]
    )
    for ax, name in zip(axes, daily.data_vars, strict=True):
        da = daily[name]
        for c, label in enumerate(labels):
            ax.plot(da["time"].values, da.isel(cell=c).values, lw=0.9, label=label)
        ax.set_ylabel(f"{name} [{da.attrs.get('units', '')}]")
        ax.set_title(da.attrs.get("long_name", name), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(title or "landcoupler reference model (daily means)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
