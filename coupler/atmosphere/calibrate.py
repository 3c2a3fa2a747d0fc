"""Calibration experiments of the column model, standalone (bucket land, no service):

- ``control``: SST held at climatology at the control forcing; diagnoses the q-flux and reports
  the global TOA imbalance (the Budyko constant A is chosen to make it ~0);
- ``sensitivity``: the equilibrium response to an abrupt CO2 doubling (ERF = F_2x = 3.93 W m-2,
  AR6) of a mixed-layer-only ocean (no deep exchange, so equilibrium comes within decades),
  the effective feedback parameter λ = F_2x / ΔT; the Budyko slope B is chosen for ECS ≈ 3 K.

``python -m coupler.atmosphere.calibrate --resolution 4`` prints both (docs/atmosphere.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from coupler.atmosphere.column import ColumnConfig, ColumnModel, ColumnState, Forcing
from coupler.atmosphere.driver import OceanMode, add_years, integrate, steps_between
from coupler.atmosphere.grid import CellGrid, regular
from coupler.atmosphere.ocean import QFlux
from coupler.atmosphere.scenario import F2X_AR6, as_seconds
from coupler.atmosphere.surface import BucketLand

CONTROL_CO2 = 284.3  # ppm, 1850 (RCMIP)


@dataclass
class ControlResult:
    state: ColumnState
    qflux: np.ndarray  # (366, cell) W m-2 of ocean
    toa: float  # W m-2, mean over the diagnosed year
    tas: float  # K, global mean over the diagnosed year
    land: BucketLand


def control(
    grid: CellGrid, config: ColumnConfig, start: str = "1849-01-01T00:00:00", years: int = 2
) -> ControlResult:
    """Held-SST control from ``start``: ``years`` years, the q-flux and means from the last."""
    model = ColumnModel(grid, config)
    land = BucketLand(grid.land_index.size, config.dt)
    t0 = as_seconds(start)
    state = model.initial_state(t0)
    forcing = Forcing(0.0, CONTROL_CO2)
    last = add_years(t0, years - 1)
    spin = integrate(
        model, state, land, steps_between(t0, last, config.dt), lambda t: forcing, OceanMode()
    )
    q = QFlux(grid.n_cells)
    tas: list[float] = []
    w = grid.weights
    final = integrate(
        model, spin.state, land, steps_between(last, add_years(last, 1), config.dt),
        lambda t: forcing, OceanMode(diagnose=q),
        hook=lambda p, s, b, f, lo: tas.append(float(w @ f["tas"])),
    )  # fmt: skip
    toa = float(np.mean([b.toa for b in final.budgets]))
    return ControlResult(final.state, q.table(), toa, float(np.mean(tas)), land)


def _annual_global_tas(
    model: ColumnModel, result: ControlResult, years: int, forcing: Any
) -> list[float]:
    """Annual global-mean tas [K] of ``years`` years with the prognostic ocean from the control
    state; ``forcing(t)`` gives the Forcing at time t."""
    w = model.grid.weights
    per_year: dict[int, list[float]] = {}

    def hook(p: Any, s: Any, b: Any, f: dict[str, np.ndarray], lo: Any) -> None:
        year = int(p.time.astype("datetime64[Y]").astype(np.int64))
        per_year.setdefault(year, []).append(float(w @ f["tas"]))

    start = result.state.time
    integrate(
        model, result.state, result.land,
        steps_between(start, add_years(start, years), model.config.dt),
        forcing, OceanMode(qflux=result.qflux), hook=hook,
    )  # fmt: skip
    return [float(np.mean(v)) for _, v in sorted(per_year.items())]


def sensitivity(
    grid: CellGrid, config: ColumnConfig, years: int = 40, average: int = 5
) -> dict[str, float]:
    """ECS [K] of the mixed-layer-only model (γ = 0) to ERF = F_2x; λ_eff = F_2x / ECS."""
    cfg = replace(config, gamma=0.0)
    ctl = control(grid, cfg)
    forcing = Forcing(F2X_AR6, 2.0 * CONTROL_CO2)
    annual = _annual_global_tas(ColumnModel(grid, cfg), ctl, years, lambda t: forcing)
    ecs = float(np.mean(annual[-average:])) - ctl.tas
    return {
        "ecs": ecs,
        "lambda_eff": F2X_AR6 / ecs,
        "control_toa": ctl.toa,
        "control_tas": ctl.tas,
        "drift_last_years": float(annual[-1] - annual[-average]),
    }


def transient_response(grid: CellGrid, config: ColumnConfig, years: int = 80) -> dict[str, float]:
    """TCR [K]: global warming averaged over years 60-79 of a 1 % yr-1 CO2 increase (ERF rising
    linearly to F_2x at year 70, AR6's definition), two-layer ocean starting from rest."""
    ctl = control(grid, config)
    start = ctl.state.time

    def forcing(t: np.datetime64) -> Forcing:
        yrs = float((t - start).astype(np.int64)) / (365.25 * 86_400.0)
        return Forcing(F2X_AR6 * yrs / 70.0, CONTROL_CO2 * 1.01**yrs)

    annual = _annual_global_tas(ColumnModel(grid, config), ctl, years, forcing)
    return {"tcr": float(np.mean(annual[60:80])) - ctl.tas, "control_tas": ctl.tas}


def scenario_warming(config: Any) -> dict[str, float]:
    """Global warming [K] between the run's baseline and future periods of a standalone run
    (bucket land instead of the service) with the same phases as the coupled experiment."""
    from coupler.atmosphere import experiment
    from coupler.atmosphere.diagnostics import Accumulator

    setup = experiment.prepare_setup(config)
    model = ColumnModel(setup.grid, config.column)
    acc = Accumulator(setup.grid, config.years[0], config.n_years)
    land = BucketLand(setup.grid.land_index.size, config.column.dt)
    experiment.run_phases(config, setup, model, land, hook=acc.add)
    ds = acc.dataset()
    (b0, b1), (f0, f1) = config.periods()
    tas = ds["tas_global"]
    base = float(tas.sel(year=slice(b0, b1)).mean())
    fut = float(tas.sel(year=slice(f0, f1)).mean())
    return {"warming": fut - base, "baseline_tas": base, "future_tas": fut}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--resolution", type=float, default=4.0)
    p.add_argument("--years", type=int, default=40)
    p.add_argument("--olr-a", type=float, default=None)
    p.add_argument("--olr-b", type=float, default=None)
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--tcr", action="store_true", help="also the transient climate response")
    args = p.parse_args(argv)
    cfg = ColumnConfig()
    if args.olr_a is not None:
        cfg = replace(cfg, olr_a=args.olr_a)
    if args.olr_b is not None:
        cfg = replace(cfg, olr_b=args.olr_b)
    if args.gamma is not None:
        cfg = replace(cfg, gamma=args.gamma)
    p_grid = regular(args.resolution)
    out = sensitivity(p_grid, cfg, years=args.years)
    if args.tcr:
        out.update(transient_response(p_grid, cfg))
    out.update(resolution=args.resolution, olr_a=cfg.olr_a, olr_b=cfg.olr_b, gamma=cfg.gamma)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
