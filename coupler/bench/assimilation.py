"""Cost of one ensemble analysis for a land domain: 20 members x 16 384 cells x 1 000
observations, localised by great-circle Gaspari–Cohn (each observation touches only the cells
within twice the half-width; neighbour lists from a KD-tree ball query on unit vectors)."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import torch

from coupler.assimilation.config import FilterConfig, FilterKind, QualityControl
from coupler.assimilation.filters import analyse, select_forward
from coupler.assimilation.localization import Localization


def _domain(ny: int, nx: int, dlat: float) -> tuple[np.ndarray, np.ndarray]:
    """A regular ny x nx grid of ``dlat``-degree cells over Europe (from 35 N, 10 W)."""
    lat = 35.0 + dlat * (np.arange(ny) + 0.5)
    lon = -10.0 + dlat * (np.arange(nx) + 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return la.ravel(), lo.ravel()


def run(
    members: int = 20,
    ny: int = 128,
    nx: int = 128,
    dlat: float = 0.25,
    observations: int = 1000,
    variables_per_cell: int = 4,
    half_width_km: float = 100.0,
    repeats: int = 3,
    threads: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    """Time :func:`coupler.assimilation.filters.analyse` per filter (median of ``repeats``
    after one warm-up) and the one-off localisation build."""
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    lat, lon = _domain(ny, nx, dlat)
    cells = lat.shape[0]
    m = cells * variables_per_cell
    obs_cell = np.sort(rng.choice(cells, size=observations, replace=False))
    sites = np.tile(np.arange(cells), variables_per_cell)  # block per variable, cells inside
    t0 = time.perf_counter()
    loc = Localization.sphere(lat, lon, sites, lat[obs_cell], lon[obs_cell], half_width_km)
    build_s = time.perf_counter() - t0
    per_obs = float(np.mean(np.diff(loc.ptr)))
    # a smooth, spatially correlated ensemble: large-scale modes plus noise
    modes = torch.randn(members, m, dtype=torch.float64, generator=g)
    E = 1.0 + 0.3 * modes
    forward = select_forward(torch.from_numpy(obs_cell))  # observe the first variable
    y = 1.0 + 0.3 * torch.randn(observations, dtype=torch.float64, generator=g)
    R = torch.full((observations,), 0.04, dtype=torch.float64)
    qc = QualityControl(gross_error_k=math.inf)
    results = []
    previous = torch.get_num_threads()
    try:
        for th in threads:
            torch.set_num_threads(th)
            for kind in (FilterKind.EAKF, FilterKind.LETKF, FilterKind.ETKF):
                local = None if kind is FilterKind.ETKF else loc
                cfg = FilterConfig(kind=kind, qc=qc)
                analyse(E, forward, y, R, cfg, localization=local)  # warm-up
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    out = analyse(E, forward, y, R, cfg, localization=local)
                    times.append(time.perf_counter() - t0)
                results.append(
                    {
                        "filter": kind.value,
                        "localized": local is not None,
                        "threads": th,
                        "seconds": statistics.median(times),
                        "n_used": out.diagnostics.n_used,
                    }
                )
    finally:
        torch.set_num_threads(previous)
    return {
        "benchmark": "assimilation",
        "members": members,
        "cells": cells,
        "variables_per_cell": variables_per_cell,
        "state_columns": m,
        "observations": observations,
        "half_width_km": half_width_km,
        "grid": f"{ny}x{nx} cells of {dlat} deg over Europe",
        "localization_build_seconds": build_s,
        "columns_per_observation": per_obs,
        "repeats": repeats,
        "results": results,
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Ensemble analysis (`make bench-assimilation`)",
        "",
        f"One analysis of {payload['members']} members × {payload['cells']:,} cells "
        f"({payload['variables_per_cell']} state variables per cell, "
        f"{payload['state_columns']:,} state columns) × {payload['observations']:,} "
        f"observations of the first variable at random cells; grid {payload['grid']}; "
        f"Gaspari–Cohn half-width {payload['half_width_km']:g} km "
        f"(support {2 * payload['half_width_km']:g} km), on average "
        f"{payload['columns_per_observation']:.0f} augmented columns per observation; "
        f"localisation lists built once in {payload['localization_build_seconds'] * 1e3:.0f} ms "
        f"(KD-tree ball query on unit vectors). Whole `analyse` call (screening, update, "
        f"diagnostics), median of {payload['repeats']} after one warm-up, float64, CPU. "
        f"ETKF is global (no localisation) for reference. Machine: {payload['machine']}.",
        "",
        "| filter | localised | threads | ms / analysis |",
        "|---|---|---:|---:|",
    ]
    for r in payload["results"]:
        lines.append(
            f"| {r['filter'].upper()} | {'yes' if r['localized'] else 'no'} | {r['threads']} | "
            f"{r['seconds'] * 1e3:.0f} |"
        )
    return "\n".join(lines) + "\n"
