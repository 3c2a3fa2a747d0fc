"""Report of a twin experiment: JSON, Markdown table (as the DART LAI study's: bias, relative
bias, RMSD) and a PNG (LAI time series, rank histogram, RMSE bars)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

NAMES = {
    "lai": ("LAI (daily mean)", "m2 m-2"),
    "hfls": ("LE (daily mean)", "W m-2"),
    "hfss": ("H (daily mean)", "W m-2"),
    "ts": ("skin temperature at overpass", "K"),
}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The result without its long daily series (what ``--json`` prints)."""
    return {k: v for k, v in result.items() if k not in ("series", "lai_obs")}


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    t = result["table"]
    lines = [
        "| variable | unit | free: bias | free: rBias | free: RMSD | free: spread | "
        "assim.: bias | assim.: rBias | assim.: RMSD | assim.: spread | RMSD change |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for var, (label, unit) in NAMES.items():
        f, a = t[f"{var}_free"], t[f"{var}_da"]
        change = 100.0 * (a["rmse"] / f["rmse"] - 1.0)
        lines.append(
            f"| {label} | {unit} | {f['bias']:.3g} | {_pct(f['rbias'])} | {f['rmse']:.3g} | "
            f"{f['spread']:.3g} | {a['bias']:.3g} | {_pct(a['rbias'])} | {a['rmse']:.3g} | "
            f"{a['spread']:.3g} | {change:+.0f} % |"
        )
    p = result["parameter_rmse"]
    params = ", ".join(f"{k}: {v:.3g}" for k, v in p.items())
    hist = result["lai_rank_histogram"]
    return "\n".join(
        [
            f"Twin experiment ({s.get('backend', 'reference')} ensemble, "
            f"{s.get('truth_backend', 'reference')} truth): {s['members']} members, "
            f"{s['cells']} cells, {s['days']} days from "
            f"{s['start']} (statistics after {s['spinup_days']} spin-up days), "
            f"{s['filter'].upper()} with {s['inflation']} inflation, localisation half-width "
            f"{s['half_width_km']} km; {result['analyses']} analyses, "
            f"{result['observations_used']} observations used, "
            f"{result['observations_rejected']} rejected; {result['seconds']:.0f} s.",
            "",
            *lines,
            "",
            f"- LAI RMSD: free {result['lai_rmsd_free']:.3f}, assimilating "
            f"{result['lai_rmsd_analysis']:.3f} (ratio {result['lai_rmsd_ratio']:.2f}); "
            f"spread/RMSE of the assimilating LAI {result['spread_rmse_ratio']:.2f}.",
            f"- Parameter RMSE vs the hidden truth (log for vmax0, kPa for psicr): {params}.",
            f"- LAI rank histogram of the observations in the assimilating prior ensemble "
            f"(observation error added to members; flat is ideal): {hist}.",
            "",
        ]
    )


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.1f} %"


def plot(result: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: np.asarray(v) for k, v in result["series"].items()}
    days = np.arange(series["lai_truth"].shape[0])
    obs = np.asarray(result["lai_obs"]) if result["lai_obs"] else np.zeros((0, 4))
    cells = list(range(min(4, series["lai_truth"].shape[1])))
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    for ax, c in zip(axes.ravel()[:4], cells, strict=False):
        ax.plot(days, series["lai_truth"][:, c], "k-", lw=1.5, label="truth")
        for name, colour in (("free", "tab:red"), ("da", "tab:blue")):
            m, sd = series[f"lai_{name}"][:, c], series[f"lai_{name}_sd"][:, c]
            ax.plot(days, m, color=colour, lw=1, label="free" if name == "free" else "assim.")
            ax.fill_between(days, m - sd, m + sd, color=colour, alpha=0.2, lw=0)
        sel = obs[:, 1] == c if obs.size else np.zeros(0, bool)
        if obs.size:
            ax.errorbar(
                obs[sel, 0] - 3.5,
                obs[sel, 2],
                yerr=obs[sel, 3],
                fmt="o",
                ms=3,
                color="tab:green",
                label="8-day obs",
            )
        ax.set_title(f"cell {c}: LAI")
        ax.set_xlabel("day")
        ax.set_ylabel("m2 m-2")
    axes[0, 0].legend(fontsize=8)
    hist = np.asarray(result["lai_rank_histogram"])
    axes[1, 1].bar(np.arange(hist.size), hist, color="tab:blue")
    axes[1, 1].set_title("LAI rank histogram (assimilating prior)")
    axes[1, 1].set_xlabel("rank of observation")
    ax = axes[1, 2]
    labels = list(NAMES)
    t = result["table"]
    ratio = [t[f"{v}_da"]["rmse"] / t[f"{v}_free"]["rmse"] for v in labels]
    ax.bar(labels, ratio, color="tab:blue")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_title("RMSE assimilating / free")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """twin.json (summary), twin.md and twin.png under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "twin.json", "markdown": out / "twin.md", "png": out / "twin.png"}
    paths["json"].write_text(json.dumps(summary(result), indent=2) + "\n")
    paths["markdown"].write_text("# Twin experiment\n\n" + markdown(result))
    plot(result, paths["png"])
    return paths
