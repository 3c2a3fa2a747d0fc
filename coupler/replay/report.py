"""The replay report: skill of the replayed outputs against the record per variable, region and
season (``emulators.metrics``), as JSON + Markdown + PNG (maps of the time-mean difference, a
Taylor diagram with ``emulators.plots``, time series at a few cells).

Regions are latitude zones (any list of cells has them): tropics |lat| < 23.5°, northern and
southern extratropics; seasons are DJF, MAM, JJA, SON of the step's start time; "all" pools them.
Metrics that are undefined for a slice (e.g. NSE of a constant record) are null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from coupler.replay.api import ReplayResult
from emulators import metrics as M
from emulators.plots import save_png, taylor_diagram

SEASONS = {"DJF": (12, 1, 2), "MAM": (3, 4, 5), "JJA": (6, 7, 8), "SON": (9, 10, 11)}
#: variables drawn in the maps and time series: these first, then the record's others
PREFERRED = ("hfls", "hfss", "ts", "lai", "albedo", "evspsbl")
MAX_PLOTTED = 6


def regions(lat: np.ndarray) -> dict[str, np.ndarray]:
    """(cell,) masks of the latitude zones."""
    return {
        "all": np.ones(lat.shape, bool),
        "tropics": np.abs(lat) < 23.5,
        "northern extratropics": lat >= 23.5,
        "southern extratropics": lat <= -23.5,
    }


def skill_by_region_season(sim: xr.Dataset, obs: xr.Dataset) -> pd.DataFrame:
    """Rows (variable, region, season) with ``emulators.metrics`` columns; empty slices are
    left out."""
    months = pd.DatetimeIndex(obs.time.values).month
    seasons = {"all": np.ones(months.shape, bool)}
    seasons.update({k: np.isin(months, v) for k, v in SEASONS.items()})
    frames = []
    for region, cells in regions(obs.lat.values).items():
        for season, steps in seasons.items():
            if not cells.any() or not steps.any():
                continue
            pick = {"time": np.flatnonzero(steps), "cell": np.flatnonzero(cells)}
            table = M.skill_table(sim.isel(pick), obs.isel(pick), strict=False)
            frames.append(table.reset_index().assign(region=region, season=season))
    table = pd.concat(frames, ignore_index=True)
    return table.set_index(["variable", "region", "season"])


def write(result: ReplayResult, out: str | Path) -> dict[str, str]:
    """Write ``replay.json``, ``replay.md`` and the PNGs under ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim, obs = result.datasets()
    overall = result.skill()
    detail = skill_by_region_season(sim, obs)
    summary = result.to_dict()
    summary["skill_by_region_season"] = M.table_to_records(detail)
    paths = {
        "json": str(out / "replay.json"),
        "markdown": str(out / "replay.md"),
        "maps": save_png(_maps(sim, obs), out / "maps_difference.png"),
        "taylor": save_png(_taylor(overall), out / "taylor.png"),
        "timeseries": save_png(_series(sim, obs), out / "timeseries.png"),
    }
    Path(paths["json"]).write_text(json.dumps(summary, indent=2, default=str))
    Path(paths["markdown"]).write_text(_markdown(summary, overall, detail))
    return paths


def _markdown(summary: dict[str, Any], overall: pd.DataFrame, detail: pd.DataFrame) -> str:
    first = summary["first_difference"]
    lines = [
        f"# Replay of `{summary['record']}`",
        "",
        f"- mode: **{summary['mode']}** (backend `{summary['backend']}`, recorded "
        f"`{summary['recorded_backend'].get('name')}`)",
        f"- steps {summary['steps'][0]}..{summary['steps'][1] - 1}, ranks {summary['ranks']}, "
        f"{summary['steps_per_second']:.1f} steps/s",
        f"- bitwise equal: **{summary['bitwise_equal']}**",
        f"- first difference: {first if first is None else json.dumps(first)}",
    ]
    lines += [f"- truncated: {t}" for t in summary["truncated"]]
    obs = summary.get("observations") or {}
    if obs.get("requests") or obs.get("ignored"):
        lines.append(f"- observation requests re-sent: {obs['requests']} "
                     f"({obs['observations']} observations)")  # fmt: skip
        lines += [f"- not replayed: {t}" for t in obs["ignored"]]
    lines += ["", "## Skill per variable (all cells, all steps)", "",
              M.table_to_markdown(overall), "", "## Per region and season", "",
              M.table_to_markdown(detail), "",
              "Plots: `maps_difference.png`, `taylor.png`, `timeseries.png`.", ""]  # fmt: skip
    return "\n".join(lines)


def _plotted(obs: xr.Dataset) -> list[str]:
    names = [str(v) for v in obs.data_vars]
    return sorted(names, key=lambda n: PREFERRED.index(n) if n in PREFERRED else 99)[:MAX_PLOTTED]


def _maps(sim: xr.Dataset, obs: xr.Dataset) -> Figure:
    names = _plotted(obs)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(5.0 * cols, 3.2 * rows), layout="constrained")
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        diff = (sim[name] - obs[name]).mean("time").values
        lim = float(np.nanmax(np.abs(diff))) or 1.0
        dots = ax.scatter(obs.lon.values, obs.lat.values, c=diff, cmap="RdBu_r", vmin=-lim,
                          vmax=lim, s=18)  # fmt: skip
        fig.colorbar(dots, ax=ax, label=obs[name].attrs.get("units", ""))
        ax.set(title=f"{name}: replayed − recorded (mean)", xlabel="lon", ylabel="lat",
               xlim=(-180, 180), ylim=(-90, 90))  # fmt: skip
    return fig


def _taylor(overall: pd.DataFrame) -> Figure:
    points = overall[["std_ratio", "pearson_r"]].dropna()
    if points.empty:  # every variable constant: nothing to place
        points = pd.DataFrame({"std_ratio": [1.0], "pearson_r": [1.0]}, index=["(constant)"])
    return taylor_diagram(points, title="replayed vs recorded", reference_label="record")


def _series(sim: xr.Dataset, obs: xr.Dataset) -> Figure:
    names = _plotted(obs)[:3]
    n = obs.sizes["cell"]
    cells = sorted({0, n // 2, n - 1})
    fig = Figure(figsize=(11.0, 2.6 * len(names)), layout="constrained")
    for k, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, k + 1)
        for c in cells:
            where = f"cell {c} ({float(obs.lat[c]):.0f}°, {float(obs.lon[c]):.0f}°)"
            ax.plot(obs.time.values, obs[name].values[:, c], lw=1.2, label=f"record {where}")
            ax.plot(sim.time.values, sim[name].values[:, c], lw=0.9, ls="--",
                    label=f"replay {where}")  # fmt: skip
        ax.set(ylabel=f"{name} [{obs[name].attrs.get('units', '')}]")
        if k == 0:
            ax.legend(fontsize=6, ncol=2)
    return fig
