"""The LAI twin through coupler sessions: what an atmospheric model sees over the client API.

Three sessions on one client (``InProcessClient`` by default; any ``coupler.client`` client
works), fed the same unperturbed synthetic hourly weather of the twin's domain
(``twin.domain``, ``twin._forcing``):

- *truth*: one member on ``truth_backend`` (the reference model, default parameters);
- *free*: ``members`` members on ``backend`` with assimilation switched on but never given an
  observation: perturbed forcing, parameters drawn from the twin's broad prior (``vmax0``,
  ``psicr``) and a 20 % initial LAI spread;
- *assimilating*: the same options and seed as *free* (so the same members, forcing noise and
  parameters), and every 8 days the truth's 8-day LAI composite at every cell with Gaussian
  error sd ``0.1 + 0.1·LAI`` (GLASS-like), sent with ``Session.assimilate``.

The statistics are of what the sessions reply (the ensemble mean): RMSD of the daily-mean cell
LAI of *free* and *assimilating* against the truth over the days after ``spinup_days``.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from coupler.client import Client, InProcessClient
from coupler.experiments.twin import _forcing, domain
from coupler.experiments.twin_config import PRIORS, TwinConfig
from emulators.constants import SECONDS_PER_DAY

LAI_DAYS = 8


def run_session_twin(
    backend: str = "torchscript",
    *,
    members: int = 20,
    cells: int = 16,
    days: int = 120,
    start: str = "2001-04-01",
    spinup_days: int = 16,
    seed: int = 0,
    truth_backend: str = "reference",
    leaf_carbon_sd: float = 0.0,
    estimate_parameters: bool = True,
    client: Client | None = None,
) -> dict[str, Any]:
    """Run the session twin (module docstring); returns the RMSDs and counts.
    ``leaf_carbon_sd``: the ensembles' daily leaf-carbon model error; ``estimate_parameters``:
    whether the analyses also update the parameters (session options)."""
    t0 = time.perf_counter()
    cfg = TwinConfig(members=members, cells=cells, days=days, start=start, seed=seed,
                     spinup_days=spinup_days, towers=0)  # fmt: skip
    lat, lon, cover = domain(cfg)
    forcing = {k: v.numpy() for k, v in _forcing(cfg, lat, lon).items()}
    options = {
        "parameters": [
            {"name": p.name, "low": p.low, "high": p.high, "log": p.log} for p in PRIORS
        ],
        "initial_leaf_carbon_sd": 0.2,
        "leaf_carbon_sd": leaf_carbon_sd,
        "estimate_parameters": estimate_parameters,
        "seed": seed,
    }
    common: dict[str, Any] = dict(lat=lat, lon=lon, start=f"{start}T00:00:00", timestep=3600,
                  land_cover=cover.numpy(), outputs=["lai"])  # fmt: skip
    rng = np.random.default_rng(seed + 11)
    steps = SECONDS_PER_DAY // 3600
    daily: dict[str, list[np.ndarray]] = {"truth": [], "free": [], "da": []}
    sent = 0
    with nullcontext(client) if client is not None else InProcessClient() as c:
        truth = c.open_session(**common, backend=truth_backend)
        free = c.open_session(**common, backend=backend, members=members, assimilation=options)
        da = c.open_session(**common, backend=backend, members=members, assimilation=options)
        acc = {name: np.zeros(cells) for name in daily}
        for k in range(days * steps):
            f = {name: v[k] for name, v in forcing.items()}
            for name, s in (("truth", truth), ("free", free), ("da", da)):
                acc[name] += s.step(k, f)["lai"]
            if (k + 1) % steps:
                continue
            for name in daily:
                daily[name].append(acc[name] / steps)
                acc[name] = np.zeros(cells)
            d = (k + 1) // steps  # days completed
            if d % LAI_DAYS == 0:
                true = np.mean(daily["truth"][-LAI_DAYS:], axis=0)
                sd = 0.1 + 0.1 * true
                value = np.clip(true + sd * rng.standard_normal(cells), 0.0, None)
                window = np.datetime64(start, "D") + np.timedelta64(d - LAI_DAYS, "D")
                sent += da.assimilate("lai", value, sd, lat, lon, [f"{window}T00:00:00Z"] * cells)
        for s in (truth, free, da):
            s.close()
    differ = [i for i, (a, b) in enumerate(zip(daily["free"], daily["da"], strict=True))
              if a.tobytes() != b.tobytes()]  # fmt: skip
    truth_lai, free_lai, da_lai = (
        np.array(daily[n][spinup_days:]) for n in ("truth", "free", "da")
    )
    rmsd_free = float(np.sqrt(np.mean((free_lai - truth_lai) ** 2)))
    rmsd_da = float(np.sqrt(np.mean((da_lai - truth_lai) ** 2)))
    return {
        "backend": backend,
        "truth_backend": truth_backend,
        "members": members,
        "cells": cells,
        "days": days,
        "start": start,
        "spinup_days": spinup_days,
        "seed": seed,
        "leaf_carbon_sd": leaf_carbon_sd,
        "estimate_parameters": estimate_parameters,
        "lai_observations": sent,
        # the first day (0-based) on which the assimilating session's replies differ from the
        # free one's (None: never): the day after the first composite
        "first_analysed_day": differ[0] if differ else None,
        "lai_rmsd_free": rmsd_free,
        "lai_rmsd_analysis": rmsd_da,
        "lai_rmsd_ratio": rmsd_da / rmsd_free,
        "seconds": time.perf_counter() - t0,
    }
