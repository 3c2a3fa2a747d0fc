"""Skill of the shipped emulators against the reference model on held-out data: JSON, Markdown and
a PNG (Taylor diagram + time series at real stations).

Held-out sources are never used in training or early stopping: other synthetic seeds (other
random cells and weather), other stations (Greensboro, Sand Point, Payerne) and another year of
Wageningen. The flux emulator runs free (closed loop, its own soil water and temperatures) over
each whole record from the reference state at the first step, with the reference's LAI, so the
figures measure the flux emulator itself; the LAI emulator runs free over the year on daily
aggregates of the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from emulators import metrics
from emulators.training.data import SourceSpec

METRICS = ("nse", "kge", "rmse", "bias", "pearson_r", "std_ratio")

FLUX_HELD_OUT: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=31, cells=32),
    SourceSpec("tmy3-greensboro", seed=32, replicas=8),
    SourceSpec("tmy3-sandpoint", seed=33, replicas=8),
    SourceSpec("pcse-wageningen", seed=34, replicas=8, options={"years": (1995, 1995)}),
    SourceSpec("bsrn-payerne", seed=35, replicas=8, spinup_days=20, options={"missing_pr": "zero"}),
)
#: held out from ``flux-lstm-daily`` (86 400 s steps): another synthetic seed (64 random land
#: cells, two years) and every real station year not in its training (Amsterdam included: the
#: daily emulator does not train on it).
FLUX_DAILY_HELD_OUT: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=61, cells=64, days=730),
    SourceSpec("tmy3-greensboro", seed=32, replicas=8),
    SourceSpec("tmy3-sandpoint", seed=33, replicas=8),
    SourceSpec("epw-amsterdam", seed=36, replicas=8, options={"missing_pr": "zero"}),
    SourceSpec("pcse-wageningen", seed=34, replicas=8, options={"years": (1995, 1995)}),
    SourceSpec("bsrn-payerne", seed=35, replicas=8, spinup_days=20, options={"missing_pr": "zero"}),
)


def flux_held_out(timestep: float) -> tuple[SourceSpec, ...]:
    """The held-out sources of the flux emulator trained for ``timestep`` seconds."""
    return FLUX_DAILY_HELD_OUT if timestep >= 86_400 else FLUX_HELD_OUT


def lai_held_out(timestep: float) -> tuple[SourceSpec, ...]:
    """The held-out sources of the LAI emulator trained on land steps of ``timestep`` seconds:
    the flux emulator's of the same step without BSRN Payerne (a single June month, no
    phenological year)."""
    return tuple(s for s in flux_held_out(timestep) if s.source != "bsrn-payerne")


#: (source label, variable) pairs the acceptance applies to
FLUX_VARIABLES = ("hfls", "hfss", "ts", "gpp")
FLUX_UNITS = {"hfls": "W m-2", "hfss": "W m-2", "ts": "K", "gpp": "kg m-2 s-1", "lai": "1"}


def _dataset(fields: Mapping[str, np.ndarray]) -> xr.Dataset:
    return xr.Dataset(
        {
            k: (("time", "row"), np.asarray(v, np.float64), {"units": FLUX_UNITS.get(k, "")})
            for k, v in fields.items()
        }
    )


def skill(
    sim: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], variables: Sequence[str]
) -> pd.DataFrame:
    """Pooled (over time and rows) skill table of ``variables``."""
    return metrics.skill_table(
        _dataset({k: sim[k] for k in variables}),
        _dataset({k: ref[k] for k in variables}),
        variables,
        metrics=METRICS,
    )


def report(
    tables: Mapping[str, pd.DataFrame],
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    out_dir: Path,
    title: str,
    taylor_variables: Sequence[str],
    preamble: str = "",
) -> dict[str, Any]:
    """Write ``skill.json``, ``skill.md`` and ``skill.png`` to ``out_dir``; returns the records.
    ``tables``: source label -> skill table; ``series``: panel title -> (time, emulator,
    reference) for the time-series panels."""
    from matplotlib.figure import Figure

    from emulators import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    md = [f"# {title}", "", preamble, ""] if preamble else [f"# {title}", ""]
    points: dict[str, tuple[float, float]] = {}
    for label, table in tables.items():
        for rec in metrics.table_to_records(table):
            records.append({"source": label, **rec})
        md += [f"## {label}", "", metrics.table_to_markdown(table)]
        for rec in metrics.table_to_records(table):
            if rec["variable"] in taylor_variables:
                points[f"{label}/{rec['variable']}"] = (rec["std_ratio"], rec["pearson_r"])
    (out_dir / "skill.json").write_text(
        __import__("json").dumps({"title": title, "skill": records}, indent=2) + "\n"
    )
    (out_dir / "skill.md").write_text("\n".join(md) + "\n")
    n_series = len(series)
    fig = Figure(figsize=(13.0, 4.5 + 2.4 * max(1, (n_series + 1) // 2)))
    fig.set_layout_engine("constrained")
    grid = fig.add_gridspec(
        1 + max(1, (n_series + 1) // 2),
        2,
        height_ratios=[2.2] + [1.0] * max(1, (n_series + 1) // 2),
    )
    ax = fig.add_subplot(grid[0, 0], projection="polar")
    plots.taylor_diagram(points, ax=ax, title=title, reference_label="reference model")
    for i, (name, (t, sim, ref)) in enumerate(series.items()):
        a = fig.add_subplot(grid[1 + i // 2, i % 2])
        a.plot(t, ref, color="k", lw=1.2, label="reference model")
        a.plot(t, sim, color="tab:red", lw=1.0, ls="--", label="emulator")
        a.set_title(name, fontsize=9)
        a.tick_params(labelsize=7)
        a.legend(fontsize=7, frameon=False)
    plots.save_png(fig, out_dir / "skill.png", dpi=110)
    return {
        "records": records,
        "files": [str(out_dir / f) for f in ("skill.json", "skill.md", "skill.png")],
    }


def acceptance(
    records: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Callable[[Mapping[str, Any]], bool]],
) -> dict[str, bool]:
    """rule name -> whether every record it applies to passes."""
    return {
        name: all(rule(r) for r in records if r.get("source") != "all")
        for name, rule in rules.items()
    }
