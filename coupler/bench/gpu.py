"""The emulator backends on CUDA at 16 384, 311 040 and 2 000 000 cells: ms per hourly step and
cells/s, and each backend's agreement with its CPU run (``make bench-gpu``). Needs a CUDA
device; without one it stops with an error (it never reports CPU numbers as GPU ones).

Backends: ``torchscript`` (TorchScript on CUDA) and ``onnx`` (ONNX Runtime's CUDA execution
provider: needs the onnxruntime-gpu wheel). ``aoti`` is not run on CUDA: the shipped
AOTInductor packages are compiled for CPU, and a CUDA package must be compiled on the GPU
machine (``torch._inductor.aoti_compile_and_package`` with CUDA inputs).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from coupler.bench.emulators import _static
from coupler.bench.reference import _forcing
from emulators.protocol import LandBackend, LandStatic, StepClock

CELLS = (16_384, 311_040, 2_000_000)
AGREEMENT_CELLS = 4_096


def _steps(backend: LandBackend, static: LandStatic, steps: int) -> tuple[float, dict[str, Any]]:
    forcing = _forcing(static.n_cells)
    clock = StepClock(0, np.datetime64("2001-06-01T10:00:00"), 3600.0)
    state = backend.initial_state(static, clock)
    state, out = backend.step(state, static, forcing, clock)  # warm-up
    clock = clock.advance()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        state, out = backend.step(state, static, forcing, clock)
        clock = clock.advance()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, out


def run(
    cells: tuple[int, ...] = CELLS, steps: int = 5, chunk_rows: int = 262_144
) -> dict[str, Any]:
    from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig

    if not torch.cuda.is_available():
        raise ValueError("bench gpu: needs CUDA, and torch.cuda.is_available() is false here")
    results: list[dict[str, Any]] = []
    agreement: dict[str, float] = {}
    static = _static(AGREEMENT_CELLS, seed=1)
    for loader in ("torchscript", "onnx"):
        try:
            gpu = EmulatorBackend(EmulatorConfig(device="cuda", chunk_rows=chunk_rows), loader)
        except RuntimeError as exc:
            agreement[loader] = float("nan")
            results.append({"backend": loader, "error": str(exc)})
            continue
        cpu = EmulatorBackend(EmulatorConfig(device="cpu"), loader)
        _, a = _steps(gpu, static, 3)
        _, b = _steps(cpu, static, 3)
        agreement[loader] = max(
            float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-30)) for k in b
        )
        for n in cells:
            big = _static(n, seed=n)
            seconds, _ = _steps(gpu, big, steps)
            results.append(
                {"backend": loader, "cells": n, "seconds": seconds, "cells_per_s": n / seconds}
            )
    return {
        "benchmark": "gpu",
        "steps": steps,
        "chunk_rows": chunk_rows,
        "device": torch.cuda.get_device_name(0),
        "agreement_vs_cpu": agreement,
        "results": results,
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Emulator backends on CUDA (`make bench-gpu`)",
        "",
        f"{payload['steps']} timed hourly steps after one warm-up on {payload['device']}, "
        f"{payload['chunk_rows']:,} rows per network call; the land step (features, closure, "
        "phenology) stays float64 on the CPU, the networks run on the GPU. Agreement with the "
        "same backend on CPU (max relative difference over every output, 4 096 cells, 3 "
        "steps): "
        + ", ".join(f"{k} {v:.1e}" for k, v in payload["agreement_vs_cpu"].items())
        + f". Machine: {payload['machine']}.",
        "",
        "| backend | cells | ms/step | cells/s |",
        "|:---|---:|---:|---:|",
    ]
    for r in payload["results"]:
        if "error" in r:
            lines.append(f"| {r['backend']} | — | not run: {r['error']} | — |")
        else:
            lines.append(
                f"| {r['backend']} | {r['cells']:,} | {1e3 * r['seconds']:.1f} | "
                f"{r['cells_per_s']:,.0f} |"
            )
    return "\n".join(lines)
