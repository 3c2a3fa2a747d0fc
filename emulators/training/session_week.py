"""A fresh session's first days: the emulator backend beside the reference backend on the same
cells and forcing, both from the backends' initial state (``landstep.initial_state``; the
emulator's recurrent state at zero), as a coupler session starts. Cell-level LE and H per day.

This is issue 14's cold-start measurement ("a real forcing week that no source of ours uses,
hourly, 32 cells"): the default forcing is the CGMS demo grid 31031 (PCSE), which no training,
early-stopping or held-out source of the flux emulators uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from emulators import metrics
from emulators import parameters as P
from emulators.datasets import perturbed_parameters
from emulators.protocol import LandBackend, LandStatic, StepClock
from emulators.variables import REQUIRED_FORCING

VARIABLES = ("hfls", "hfss")


@dataclass(frozen=True)
class WeekConfig:
    """``cells`` cells at the forcing's first cell, each with random cover (2-3 classes) and
    parameters perturbed by ``perturbation`` (seeded); ``days`` days from ``start``."""

    source: str = "cgms-grid"
    start: str = "2000-07-01"
    days: int = 7
    cells: int = 32
    seed: int = 0
    perturbation: float = 0.5
    timestep: int = 3600

    def __post_init__(self) -> None:
        if self.days < 3:
            raise ValueError(f"days: at least 3 (first 48 h and the rest), got {self.days}")
        if self.cells < 1:
            raise ValueError(f"cells: must be >= 1, got {self.cells}")


def _static(config: WeekConfig, lat: float, lon: float) -> LandStatic:
    n, k = config.cells, P.N_CLASSES
    rng = np.random.default_rng(config.seed)
    cover = np.zeros((n, k))
    for i in range(n):
        classes = rng.choice(k, size=int(rng.integers(2, 4)), replace=False)
        cover[i, classes] = rng.dirichlet(np.ones(len(classes)))
    g = torch.Generator().manual_seed(config.seed)
    params = perturbed_parameters(np.zeros(n, dtype=np.int64), config.perturbation, g)
    return LandStatic(
        torch.full((n,), lat, dtype=torch.float64),
        torch.full((n,), lon, dtype=torch.float64),
        torch.as_tensor(cover),
        params,
    )


def run(
    config: WeekConfig, emulator: LandBackend, reference: LandBackend
) -> dict[str, dict[str, np.ndarray]]:
    """Both backends over the week from their initial states: {"emulator"|"reference": {var:
    (time, cell)}} cell fields, and {"time": (time,)} under "clock"."""
    from emulators import forcing

    end = str(np.datetime64(config.start, "D") + np.timedelta64(config.days, "D"))
    opts: dict[str, Any] = {"start": config.start, "end": end}
    ds = forcing.load(config.source, timestep=config.timestep, **opts)
    steps = config.days * 86_400 // config.timestep
    times = ds["time"].values.astype("datetime64[s]")
    first = int(np.searchsorted(times, np.datetime64(config.start, "s")))
    if first + steps > len(times):
        raise ValueError(f"start/days: {config.source} has {len(times) - first} steps from start")
    static = _static(config, float(ds["lat"].values[0]), float(ds["lon"].values[0]))
    arrays = {
        name: torch.as_tensor(ds[name].values[:, :1], dtype=torch.float64)
        .expand(-1, config.cells)
        .contiguous()
        for name in REQUIRED_FORCING
    }
    out: dict[str, dict[str, np.ndarray]] = {"clock": {"time": times[first : first + steps]}}
    for label, backend in (("emulator", emulator), ("reference", reference)):
        clock = StepClock(0, times[first], float(config.timestep))
        state = backend.initial_state(static, clock)
        rec = {v: np.empty((steps, config.cells)) for v in VARIABLES}
        for i in range(steps):
            f = {k: v[first + i : first + i + 1] for k, v in arrays.items()}
            state, fields = backend.step(state, static, f, clock)
            for v in VARIABLES:
                rec[v][i] = fields[v][0].double().numpy()
            clock = clock.advance()
        out[label] = rec
    return out


def table(result: dict[str, dict[str, np.ndarray]], timestep: int = 3600) -> list[dict[str, Any]]:
    """Per day, first 48 h, the rest, and the whole week: NSE, KGE, RMSE of LE and H."""
    per_day = 86_400 // timestep
    steps = result["emulator"][VARIABLES[0]].shape[0]
    windows: list[tuple[str, slice]] = [
        (f"day {d + 1}", slice(d * per_day, (d + 1) * per_day)) for d in range(steps // per_day)
    ]
    windows += [
        ("first 48 h", slice(0, 2 * per_day)),
        ("after 48 h", slice(2 * per_day, steps)),
        ("whole", slice(0, steps)),
    ]
    rows = []
    for name, sl in windows:
        rec: dict[str, Any] = {"window": name}
        for v in VARIABLES:
            sim, ref = result["emulator"][v][sl], result["reference"][v][sl]
            rec[f"{v}_nse"] = float(metrics.nse(sim, ref))
            rec[f"{v}_kge"] = float(metrics.kge(sim, ref))
            rec[f"{v}_rmse"] = float(metrics.rmse(sim, ref))
        rows.append(rec)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| window | LE NSE | LE KGE | LE RMSE W m⁻² | H NSE | H KGE | H RMSE W m⁻² |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['window']} | {r['hfls_nse']:.3f} | {r['hfls_kge']:.3f} | "
            f"{r['hfls_rmse']:.1f} | {r['hfss_nse']:.3f} | {r['hfss_kge']:.3f} | "
            f"{r['hfss_rmse']:.1f} |"
        )
    return "\n".join(lines)
