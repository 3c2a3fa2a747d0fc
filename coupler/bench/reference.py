"""Throughput of the reference land model: cells x steps per second, 1 and 2 threads."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from emulators import parameters as P
from emulators.protocol import LandStatic, StepClock
from emulators.reference import ReferenceBackend


def _forcing(n: int) -> dict[str, torch.Tensor]:
    full = {
        "tas": 293.0,
        "huss": 0.009,
        "ps": 98_000.0,
        "sfcWind": 3.0,
        "pr": 2e-5,
        "rsds": 450.0,
        "rlds": 340.0,
    }
    g = torch.Generator().manual_seed(0)
    return {
        k: v * (1 + 0.05 * torch.rand(1, n, generator=g, dtype=torch.float64))
        for k, v in full.items()
    }


def run(
    cells: tuple[int, ...] = (1_000, 10_000, 50_000),
    steps: int = 30,
    threads: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    results = []
    previous = torch.get_num_threads()
    try:
        for n in cells:
            g = torch.Generator().manual_seed(n)
            lat = torch.rand(n, generator=g, dtype=torch.float64) * 120 - 60
            cover = torch.rand(n, P.N_CLASSES, generator=g, dtype=torch.float64)
            static = LandStatic.from_cover(lat, lat * 2, cover / cover.sum(-1, keepdim=True))
            backend = ReferenceBackend()
            forcing = _forcing(n)
            for th in threads:
                torch.set_num_threads(th)
                clock = StepClock(0, np.datetime64("2001-06-01T10:00:00"), 3600.0)
                state = backend.initial_state(static, clock)
                state, _ = backend.step(state, static, forcing, clock)  # warm-up
                t0 = time.perf_counter()
                for _ in range(steps):
                    state, _ = backend.step(state, static, forcing, clock)
                    clock = clock.advance()
                per_step = (time.perf_counter() - t0) / steps
                results.append(
                    {
                        "cells": n,
                        "tiles_per_cell": P.N_CLASSES,
                        "threads": th,
                        "seconds_per_step": per_step,
                        "cell_steps_per_second": n / per_step,
                    }
                )
    finally:
        torch.set_num_threads(previous)
    return {"benchmark": "reference", "steps": steps, "results": results}


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Reference land model (`make bench-reference`)",
        "",
        f"float64, all 8 land-cover tiles computed in every cell, hourly steps, "
        f"{payload['steps']} timed steps after one warm-up; machine: {payload['machine']}.",
        "",
        "| cells | threads | ms / step | cell-steps / s |",
        "|---:|---:|---:|---:|",
    ]
    for r in payload["results"]:
        lines.append(
            f"| {r['cells']:,} | {r['threads']} | {1e3 * r['seconds_per_step']:.1f} | "
            f"{r['cell_steps_per_second']:,.0f} |"
        )
    return "\n".join(lines)
