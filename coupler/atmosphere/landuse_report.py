"""The land-use part of a run's summary (``landcoupler run --land-use-change``): conservation
through every cover change (the sessions' residuals), what left the cells, the cover change
per region, the CSV of every change and the cover-change maps."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the residual columns of a change row and their units
RESIDUALS = {
    "water_residual_kg_m-2": "water (kg m-2)",
    "energy_residual_J_m-2": "energy (J m-2)",
    "carbon_residual_kgC_m-2": "carbon (kg C m-2)",
}


def summarise(
    rows: Sequence[Mapping[str, Any]], cover_change: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """The summary's ``land_use`` entry from the change rows of the luc experiment
    (``experiment.landuse_hook``) and the regional cover change
    (``landuse.regional_cover_change``)."""
    years = sorted({int(r["year"]) for r in rows})
    worst = {k: max((float(r[k]) for r in rows), default=0.0) for k in RESIDUALS}
    released = {
        k.removesuffix("_mean"): float(np.mean([r[k] for r in rows])) if rows else 0.0
        for k in ("released_water_mean", "released_heat_mean", "released_carbon_mean")
    }
    return {
        "changes": len(years),
        "first_year": years[0] if years else None,
        "last_year": years[-1] if years else None,
        "max_residual": worst,
        "mean_released_per_change": released,
        "max_unet_minus_blocks": max((float(r["unet_minus_blocks"]) for r in rows), default=0.0),
        "downscale_seconds_per_year": float(
            np.mean([r["downscale_s"] for r in rows if r["rank"] == 0])
        )
        if rows
        else 0.0,
        "cover_change_pct_points": {k: dict(v) for k, v in cover_change.items()},
    }


def land_use_markdown(lu: Mapping[str, Any]) -> list[str]:
    """The summary.md lines of the ``land_use`` entry."""
    res = lu["max_residual"]
    rel = lu["mean_released_per_change"]
    lines = [
        "",
        f"## Land-use change: {lu['changes']} cover changes ({lu['first_year']}–"
        f"{lu['last_year']}), stylised trajectory downscaled by the LULC U-Net",
        "",
        "Conservation through every change (max over changes, members and cells of "
        "|stores after + released − stores before|): "
        + ", ".join(f"{RESIDUALS[k]} {v:.2e}" for k, v in res.items())
        + ".",
        "",
        f"Released per change (land-weighted mean): water {rel['released_water']:.3g} kg m-2 "
        f"(runoff), heat {rel['released_heat']:.3g} J m-2, leaf carbon "
        f"{rel['released_carbon']:.3g} kg C m-2 (land-use emission). U-Net vs block mean: "
        f"max |Δcover| {lu['max_unet_minus_blocks']:.3f}; downscaling "
        f"{lu['downscale_seconds_per_year']:.1f} s per year.",
        "",
        "| region | Δcrop (pp) | Δgrass (pp) | Δforest (pp) | Δurban (pp) |",
        "|---|---|---|---|---|",
    ]
    for region, c in lu["cover_change_pct_points"].items():
        cols = " | ".join(
            f"{c[k]:+.2f}" if np.isfinite(c[k]) else "n/a"
            for k in ("crop", "grass", "forest", "urban")
        )
        lines.append(f"| {region} | {cols} |")
    return lines


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``land_use_changes.csv``: one row per cover change and rank."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0]) if rows else ["year"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def plot_cover_change(ds: Any, cover0: np.ndarray, path: Path) -> Path:
    """Maps of the crop and forest fraction change (percentage points of the land) from the
    start to the end of the luc experiment (regular grids)."""
    from matplotlib.figure import Figure

    from coupler.atmosphere.plots import _grid_field, _map
    from emulators.parameters import LandCover as L
    from emulators.plots import save_png

    final = np.asarray(ds["land_cover_final"].values)
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 2)
    for ax, (title, classes) in zip(axes, (
        ("Δcropland", [L.CROPLAND]),
        ("Δforest", [L.EVERGREEN_BROADLEAF_FOREST, L.DECIDUOUS_FOREST_WOODLAND]),
    ), strict=True):  # fmt: skip
        idx = [int(c) for c in classes]
        change = 100.0 * (final[:, idx].sum(1) - cover0[:, idx].sum(1))
        _map(ax, ds, _grid_field(ds, change, land=True), f"{title} (land-use change)", "pp")
    fig.tight_layout()
    return Path(save_png(fig, path, dpi=110))
