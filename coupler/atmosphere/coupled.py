"""A whole coupled run: the shared setup, the experiments (in parallel processes when asked),
then the summary tables and plots. What ``landcoupler run`` calls."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from coupler.atmosphere import experiment, landuse_report, plots, report
from coupler.atmosphere.driver import steps_between
from coupler.atmosphere.experiment import ExperimentResult, Setup, jan1
from coupler.atmosphere.runconfig import LUC, RunConfig


@dataclass
class RunOutputs:
    summary: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    results: list[ExperimentResult] = field(default_factory=list)
    setup_seconds: float = 0.0


def _worker(config: RunConfig, setup: Setup, name: str, position: int) -> ExperimentResult:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(1)
    total = steps_between(
        jan1(config.years[0] - config.spinup_years), jan1(config.years[1] + 1), config.timestep
    )
    with tqdm(
        total=total, desc=f"{name:>8} ({config.transport})", unit="step", position=position,
        disable=not config.progress, leave=True, mininterval=1.0,
    ) as bar:  # fmt: skip
        return experiment.run_experiment(config, setup, name, progress=bar.update)


def execute(config: RunConfig, setup: Setup | None = None) -> RunOutputs:
    """Run every experiment of ``config`` and write the outputs under ``config.out``."""
    t0 = time.perf_counter()
    setup = setup or experiment.prepare_setup(config)
    setup_seconds = time.perf_counter() - t0
    names = list(config.experiments)
    jobs = min(config.jobs, len(names))
    if jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_worker, config, setup, n, i) for i, n in enumerate(names)]
            results = [f.result() for f in futures]
    else:
        results = [_worker(config, setup, n, 0) for n in names]
    datasets = {r.name: xr.open_zarr(r.path, consolidated=False).load() for r in results}
    periods = config.periods()
    summary = report.summarise(datasets, setup.biome, periods, config.scenario)
    summary["throughput"] = {
        r.name: {
            "coupled_years": r.coupled_years,
            "wall_seconds": r.wall_seconds,
            "simulated_years_per_hour": 3600.0 * r.coupled_years / r.wall_seconds,
        }
        for r in results
    }
    summary["config"] = {
        "resolution_deg": config.resolution, "timestep_s": config.timestep,
        "backend": config.backend, "transport": config.transport, "ranks": config.ranks,
        "members": config.members, "land_cells": int(setup.grid.land_index.size),
        "cells": int(setup.grid.n_cells), "spinup_years": config.spinup_years,
        "records": {r.name: r.record for r in results},
    }  # fmt: skip
    if config.assimilate is not None:
        summary["assimilation"] = assimilation_summary(config, setup, results)
    out = Path(config.out)
    luc = next((r for r in results if r.name == LUC), None)
    if luc is not None:
        summary["land_use"] = land_use_summary(setup, datasets[LUC], luc.land_use)
    files = report.write_tables(out, datasets, summary)
    ar6 = report.AR6_WARMING.get(config.scenario) if "ar6" in summary else None
    files.append(plots.temperature_series(datasets, periods, out / "tas_global.png", ar6))
    files.append(plots.maps(datasets, periods, out / "maps_change.png", feedback=False))
    if "dynamic" in datasets and "frozen" in datasets:
        files.append(plots.maps(datasets, periods, out / "maps_land_feedback.png", feedback=True))
    if luc is not None:
        files.append(plots.maps(datasets, periods, out / "maps_land_use_feedback.png",
                                feedback=True, pair=(LUC, "dynamic")))  # fmt: skip
        files.append(landuse_report.write_csv(out / "land_use_changes.csv", luc.land_use))
        if "land_cover_final" in datasets[LUC]:
            files.append(landuse_report.plot_cover_change(
                datasets[LUC], setup.cover, out / "land_use_cover_change.png"))  # fmt: skip
    files.append(plots.energy_budget(datasets, out / "energy_budget.png"))
    extra = {
        "throughput (simulated years per wall-clock hour)": ", ".join(
            f"{n}: {t['simulated_years_per_hour']:.0f}" for n, t in summary["throughput"].items()
        ),
        "land cells / cells": f"{setup.grid.land_index.size} / {setup.grid.n_cells}",
    }
    if "assimilation" in summary:
        da = summary["assimilation"]
        extra["assimilation"] = (
            f"{da['observations']} observations from {config.assimilate}"
            + "".join(
                f"; {n}: {e['used']} used, {e['rejected']} rejected in {e['analyses']} analyses"
                for n, e in da["experiments"].items()
            )
        )
    md = out / "summary.md"
    md.write_text(report.markdown(summary, extra))
    files.append(md)
    files += [r.path for r in results]
    return RunOutputs(summary, files, results, setup_seconds)


def land_use_summary(setup: Setup, ds: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's ``land_use`` entry: conservation, releases and the cover change per region
    (start cover to the luc experiment's final cover)."""
    from coupler.atmosphere.landuse import regional_cover_change

    grid = setup.grid
    weights = (grid.area * grid.land_fraction)[grid.land_index]
    masks = report.region_masks(grid.lat[grid.land_index], setup.biome)
    final = ds["land_cover_final"].values if "land_cover_final" in ds else setup.cover
    return landuse_report.summarise(rows, regional_cover_change(setup.cover, final, weights, masks))


def assimilation_summary(
    config: RunConfig, setup: Setup, results: list[ExperimentResult]
) -> dict[str, Any]:
    """Observations per rank and, per experiment with a record, the observations the sessions
    used and rejected (sums of the records' ``assim_n_used``/``assim_n_rejected``)."""
    import numpy as np

    out: dict[str, Any] = {
        "url": config.assimilate,
        "observations": int(sum(setup.observation_counts)),
        "per_rank": list(setup.observation_counts),
        "experiments": {},
    }
    for r in results:
        if not r.record:
            continue
        used = rejected = analyses = 0
        for rank in range(len(setup.observation_counts)):
            path = f"{r.record.rstrip('/')}/rank{rank}.zarr"
            rec = xr.open_zarr(path, consolidated=False)
            if "assim_n_used" not in rec:
                continue
            n_used = np.asarray(rec["assim_n_used"].values)
            used += int(np.nansum(n_used))
            rejected += int(np.nansum(rec["assim_n_rejected"].values))
            analyses += int(np.isfinite(n_used).sum())
        out["experiments"][r.name] = {"used": used, "rejected": rejected, "analyses": analyses}
    return out
