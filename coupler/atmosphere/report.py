"""The run's summary: warming per experiment, the land feedback (dynamic − frozen), the regional
feedback table, the yearly energy budget and its bound, against AR6 where the periods match.

Regions (land cells, weights area × land fraction; biomes from ``landcover``):
tropical forest (the tropical-forest biome), drylands (desert, dryland and savanna biomes),
high latitudes (north of 55° N, ice sheets excluded), as the regions of Trans-LAI (SCIENCE.md §1).
Changes are future − baseline means; the land feedback of a quantity is its change in the
dynamic run minus its change in the frozen-land run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from coupler.atmosphere import landcover
from coupler.atmosphere.landuse_report import land_use_markdown

#: |TOA − surface − atmospheric storage change| bound [W m-2] for every yearly (and step) value:
#: the bookkeeping is exact, so only float64 round-off remains (measured ~1e-11 W m-2).
ENERGY_RESIDUAL_BOUND = 1e-6
#: IPCC AR6 WGI (SPM Table SPM.1; Ch. 4 Table 4.5): 2081-2100 vs 1995-2014, K, (very likely range)
AR6_WARMING = {"ssp370": (2.8, 2.0, 3.7), "ssp585": (3.5, 2.4, 4.8)}
REGIONS = ("tropical forest", "drylands", "high latitudes")
_DRY = ("desert", "dryland", "savanna")


def region_masks(lat: np.ndarray, biome: np.ndarray) -> dict[str, np.ndarray]:
    """(land cell,) boolean masks of the three regions."""
    names = np.asarray(landcover.BIOME_NAMES)[np.asarray(biome)]
    return {
        "tropical forest": names == "tropical forest",
        "drylands": np.isin(names, _DRY),
        "high latitudes": (np.asarray(lat) >= 55.0) & (names != "ice sheet"),
    }


def _period_mean(da: xr.DataArray, period: tuple[int, int]) -> xr.DataArray:
    return da.sel(year=slice(period[0], period[1])).mean("year")


def _weighted(values: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> float:
    w = weights * mask
    return float((values * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


@dataclass
class RegionChange:
    tas: float  # K
    hfls: float  # %
    evspsbl: float  # %
    lai: float  # %
    albedo: float  # %


def regional_changes(
    ds: xr.Dataset, biome: np.ndarray, periods: tuple[tuple[int, int], tuple[int, int]]
) -> dict[str, RegionChange]:
    """Future − baseline per region: tas in K, the land fields in % of the baseline mean."""
    base, fut = periods
    idx = ds["land_cell_index"].values
    lat = ds["lat"].values[idx]
    weights = (ds["areacella"].values * ds["sftlf"].values / 100.0)[idx]
    out: dict[str, RegionChange] = {}
    for region, mask in region_masks(lat, biome).items():

        def change(name: str, pct: bool, m: np.ndarray = mask) -> float:
            da = ds[name]
            if "cell" in da.dims:
                da = da.isel(cell=idx)
            b = _weighted(_period_mean(da, base).values, weights, m)
            f = _weighted(_period_mean(da, fut).values, weights, m)
            return 100.0 * (f - b) / b if pct else f - b

        out[region] = RegionChange(
            change("tas", False), change("land_hfls", True), change("land_evspsbl", True),
            change("land_lai", True), change("land_albedo", True),
        )  # fmt: skip
    return out


def warming(ds: xr.Dataset, periods: tuple[tuple[int, int], tuple[int, int]]) -> float:
    """Global-mean tas change [K], future − baseline."""
    tas = ds["tas_global"]
    return float(_period_mean(tas, periods[1]) - _period_mean(tas, periods[0]))


def energy_check(ds: xr.Dataset) -> dict[str, Any]:
    """Largest yearly and single-step |residual| and whether both are within the bound."""
    yearly = float(np.nanmax(np.abs(ds["budget_residual"].values)))
    step = float(np.nanmax(ds["budget_residual_step_max"].values))
    return {
        "bound_W_m-2": ENERGY_RESIDUAL_BOUND,
        "max_abs_yearly_residual_W_m-2": yearly,
        "max_abs_step_residual_W_m-2": step,
        "within_bound": bool(max(yearly, step) <= ENERGY_RESIDUAL_BOUND),
    }


def summarise(
    datasets: dict[str, xr.Dataset],
    biome: np.ndarray,
    periods: tuple[tuple[int, int], tuple[int, int]],
    scenario: str,
) -> dict[str, Any]:
    """Everything the summary files hold, as a JSON-compatible dict."""
    summary: dict[str, Any] = {
        "scenario": scenario,
        "baseline": list(periods[0]),
        "future": list(periods[1]),
        "experiments": {},
    }
    regions: dict[str, dict[str, RegionChange]] = {}
    for name, ds in datasets.items():
        regions[name] = regional_changes(ds, biome, periods)
        summary["experiments"][name] = {
            "warming_K": warming(ds, periods),
            "land_warming_K": float(
                _period_mean(ds["tas_land"], periods[1]) - _period_mean(ds["tas_land"], periods[0])
            ),
            "energy": energy_check(ds),
            "regions": {r: vars(c) for r, c in regions[name].items()},
        }
    ar6 = AR6_WARMING.get(scenario)
    if ar6 is not None and periods == ((1995, 2014), (2081, 2100)):
        summary["ar6"] = {"central_K": ar6[0], "very_likely_K": [ar6[1], ar6[2]]}
        for exp in summary["experiments"].values():
            exp["inside_ar6_very_likely"] = ar6[1] <= exp["warming_K"] <= ar6[2]
    for key, (a, b) in (("land_feedback", ("dynamic", "frozen")),
                        ("land_use_feedback", ("luc", "dynamic"))):  # fmt: skip
        if a in regions and b in regions:
            summary[key] = {
                "global_dT_K": summary["experiments"][a]["warming_K"]
                - summary["experiments"][b]["warming_K"],
                "regions": _feedback(regions[a], regions[b]),
            }
    return summary


def _feedback(a: dict[str, RegionChange], b: dict[str, RegionChange]) -> dict[str, dict[str, Any]]:
    """Per region, the change in run ``a`` minus the change in run ``b``."""
    fb: dict[str, dict[str, Any]] = {}
    for r in REGIONS:
        d, f = a[r], b[r]
        dt = d.tas - f.tas
        fb[r] = {
            "dT_K": dt,
            "dLE_pct_points": d.hfls - f.hfls,
            "dET_pct_points": d.evspsbl - f.evspsbl,
            "dLAI_pct_points": d.lai - f.lai,
            "dalbedo_pct_points": d.albedo - f.albedo,
            "sign": "n/a"
            if not np.isfinite(dt)
            else "positive (amplifies)"
            if dt > 0
            else "negative (damps)",
        }
    return fb


def markdown(summary: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """The human-readable summary table."""
    (b0, b1), (f0, f1) = summary["baseline"], summary["future"]
    lines = [
        f"# Coupled run: {summary['scenario']}, {f0}-{f1} vs {b0}-{b1}",
        "",
        "| experiment | global ΔT (K) | land ΔT (K) | max energy residual (W m-2) |",
        "|---|---|---|---|",
    ]
    for name, e in summary["experiments"].items():
        en = e["energy"]
        worst = max(en["max_abs_yearly_residual_W_m-2"], en["max_abs_step_residual_W_m-2"])
        lines.append(
            f"| {name} | {e['warming_K']:.2f} | {e['land_warming_K']:.2f} | {worst:.2e} "
            f"(bound {en['bound_W_m-2']:.0e}) |"
        )
    if "ar6" in summary:
        a = summary["ar6"]
        lines += ["", f"AR6 (2081-2100 vs 1995-2014): {a['central_K']} K, very likely "
                  f"{a['very_likely_K'][0]}-{a['very_likely_K'][1]} K."]  # fmt: skip
    lines += [
        "",
        "## Regional changes (future − baseline)",
        "",
        "| region | experiment | ΔT (K) | ΔLE (%) | ΔET (%) | ΔLAI (%) | Δalbedo (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary["experiments"].items():
        for r, c in e["regions"].items():
            cols = [_fmt(c["tas"], "+.2f")] + [
                _fmt(c[k], "+.1f") for k in ("hfls", "evspsbl", "lai", "albedo")
            ]
            lines.append(f"| {r} | {name} | " + " | ".join(cols) + " |")
    for key, title in (("land_feedback", "Land feedback (dynamic − frozen)"),
                       ("land_use_feedback", "Land-use feedback (luc − dynamic)")):  # fmt: skip
        if key not in summary:
            continue
        fb = summary[key]
        lines += [
            "",
            f"## {title}: global ΔT {fb['global_dT_K']:+.3f} K",
            "",
            "| region | ΔT (K) | ΔLE (pp) | ΔLAI (pp) | Δalbedo (pp) | sign |",
            "|---|---|---|---|---|---|",
        ]
        for r, f in fb["regions"].items():
            cols = [_fmt(f["dT_K"], "+.3f")] + [
                _fmt(f[k], "+.1f")
                for k in ("dLE_pct_points", "dLAI_pct_points", "dalbedo_pct_points")
            ]
            lines.append(f"| {r} | " + " | ".join(cols) + f" | {f['sign']} |")
    if "land_use" in summary:
        lines += land_use_markdown(summary["land_use"])
    for key, value in (extra or {}).items():
        lines += ["", f"{key}: {value}"]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    """NaN (an empty region) becomes null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


def write_tables(out: Path, datasets: dict[str, xr.Dataset], summary: dict[str, Any]) -> list[Path]:
    """summary.json, global_mean_tas.csv and energy_budget.csv under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "summary.json", out / "global_mean_tas.csv", out / "energy_budget.csv"]
    paths[0].write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    names = list(datasets)
    years = datasets[names[0]]["year"].values
    with paths[1].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["year", *(f"tas_global_{n}" for n in names), *(f"tas_land_{n}" for n in names)])
        for i, y in enumerate(years):
            w.writerow([int(y), *(f"{float(datasets[n]['tas_global'][i]):.4f}" for n in names),
                        *(f"{float(datasets[n]['tas_land'][i]):.4f}" for n in names)])  # fmt: skip
    terms = ("toa", "surface", "atmosphere", "ocean", "qflux", "land", "residual")
    with paths[2].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["experiment", "year", *(f"{t}_W_m-2" for t in terms), "step_max_residual"])
        for n in names:
            ds = datasets[n]
            for i, y in enumerate(years):
                w.writerow([n, int(y), *(f"{float(ds[f'budget_{t}'][i]):.6g}" for t in terms),
                            f"{float(ds['budget_residual_step_max'][i]):.3g}"])  # fmt: skip
    return paths
