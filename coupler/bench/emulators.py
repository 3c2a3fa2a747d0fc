"""Emulator backend vs reference model: same cells, same forcing, same steps, one run.

Cover: every cell holds 1, 2 or 3 land-cover classes (drawn at random; mean 2 per cell), as
coarse cells of a real land-cover map mostly do. The reference model computes all 8 tiles of
every cell (its design); the emulator backends compute only tiles with nonzero cover ("active"),
and, for an identical-work comparison, all 8 tiles ("all tiles"). The ``hybrid`` backend (the
reference with the ``canopy-mlp`` network in its canopy phase) computes all 8 tiles, as the
reference does; the ``transformer`` backend (``flux-transformer`` in the TorchScript backend) the
active tiles.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from coupler.bench import roofline
from coupler.bench.reference import _forcing
from emulators import parameters as P
from emulators.protocol import LandBackend, LandStatic, StepClock


def _static(n: int, seed: int) -> LandStatic:
    g = torch.Generator().manual_seed(seed)
    lat = torch.rand(n, generator=g, dtype=torch.float64) * 120 - 60
    k = torch.randint(1, 4, (n,), generator=g)
    scores = torch.rand(n, P.N_CLASSES, generator=g, dtype=torch.float64)
    ranks = scores.argsort(-1).argsort(-1)
    keep = ranks < k[:, None]
    cover = torch.where(keep, torch.rand(n, P.N_CLASSES, generator=g, dtype=torch.float64) + 0.1, 0)
    cover = cover / cover.sum(-1, keepdim=True)
    return LandStatic.from_cover(lat, lat * 2, cover)


#: rows per block of the backend's blocked variant (``EmulatorConfig.row_block``)
BLOCKS = 16_384


def _time(backend: LandBackend, static: LandStatic, steps: int) -> float:
    """Seconds per step: the median of ``steps`` timed steps after one warm-up (on a shared
    machine a mean follows the other processes' bursts; the median is the typical step)."""
    return _phases(backend, static, steps, timer=False)["total"]


def _phases(backend: Any, static: LandStatic, steps: int, timer: bool = True) -> dict[str, float]:
    """Seconds of the step with the median time of ``steps`` timed steps: ``total``, and with
    ``timer`` each phase of the emulator backend's step (``emulators.compiled.phases``) and
    ``cells`` (the rest: forcing check, the cell fields' last operations (z0's exp,
    mrsos' division), leaf nitrogen; the rows are summed into cells in ``scatter``)."""
    from emulators.compiled.phases import PHASES, PhaseTimes

    forcing = _forcing(static.n_cells)
    clock = StepClock(0, np.datetime64("2001-06-01T10:00:00"), 3600.0)
    state = backend.initial_state(static, clock)
    state, _ = backend.step(state, static, forcing, clock)  # warm-up
    clock = clock.advance()
    runs: list[dict[str, float]] = []
    for _ in range(steps):
        times = PhaseTimes()
        if timer:
            backend.phases = times
        t0 = time.perf_counter()
        state, _ = backend.step(state, static, forcing, clock)
        total = time.perf_counter() - t0
        clock = clock.advance()
        out = {name: times.seconds.get(name, 0.0) for name in PHASES} if timer else {}
        if timer:
            out["cells"] = total - sum(out.values())
        runs.append({**out, "total": total})
    return sorted(runs, key=lambda r: r["total"])[len(runs) // 2]


def _network(backends: dict[str, Any], static: LandStatic, batches: tuple[int, ...],
             steps: int) -> dict[str, Any]:  # fmt: skip
    """The flux network alone on the rows of a real step (captured from the TorchScript
    backend's network calls after one warm-up step), per loader and rows per call, each timing
    right after its own measurement of the matmul peak (the machine's load moves both); and the
    network's matrix products alone at the backend's rows per call."""
    ts = backends["torchscript"]
    forcing = _forcing(static.n_cells)
    clock = StepClock(0, np.datetime64("2001-06-01T10:00:00"), 3600.0)
    state, _ = ts.step(ts.initial_state(static, clock), static, forcing, clock)
    rows = roofline.capture_rows(ts, lambda: ts.step(state, static, forcing, clock.advance()))
    out: dict[str, Any] = {"rows": int(rows[0].shape[0]), "calls": []}
    for loader, backend in backends.items():
        net = backend.flux_for(3600.0).net
        for batch in batches if loader == "torchscript" else batches[-1:]:
            peak = roofline.peak_matmul()
            seconds = roofline.time_network(net, rows, batch, steps)
            call = {"loader": loader, "batch": batch, "seconds": seconds}
            out["calls"].append({**call, "peak_gflops": peak["gflops"]})
    peak = roofline.peak_matmul()
    seconds = roofline.time_matmuls(ts.flux_manifest.config, rows, batches[-1], steps)
    out["matmuls"] = {"batch": batches[-1], "seconds": seconds, "peak_gflops": peak["gflops"]}
    return out


def run(
    cells: tuple[int, ...] = (10_000, 50_000), steps: int = 10, threads: int = 2
) -> dict[str, Any]:
    from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
    from emulators.compiled.hybrid import HybridBackend
    from emulators.compiled.transformer import TransformerBackend
    from emulators.reference import ReferenceBackend

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    try:
        first = EmulatorBackend(EmulatorConfig(device="cpu"), loader="torchscript")
        manifest = first.flux_manifest
        machine = {
            "matmul_before": roofline.peak_matmul(),
            "copy_before": roofline.copy_bandwidth(),
            "flops_per_row": roofline.flux_lstm_flops(manifest.config),
            "network_config": dict(manifest.config),
            "flops_counted": roofline.counted_flops(manifest),
            "row_block": BLOCKS,
            "backend_batch": first.chunk_rows,
        }
        batch = first.chunk_rows  # rows per network call of the default backend
        for n in cells:
            static = _static(n, seed=n)
            active = int((static.cover > 0).sum())
            row: dict[str, Any] = {"cells": n, "active_tiles": active, "all_tiles": n * P.N_CLASSES}
            row["reference"] = _time(ReferenceBackend(), static, steps)
            row["hybrid_all"] = _time(HybridBackend(), static, steps)  # computes all 8 tiles
            row["speedup_hybrid_all"] = row["reference"] / row["hybrid_all"]
            transformer = TransformerBackend(EmulatorConfig(device="cpu"))  # active tiles
            row["transformer_active"] = _time(transformer, static, steps)
            row["speedup_transformer_active"] = row["reference"] / row["transformer_active"]
            for loader in ("torchscript", "aoti", "fused"):
                for all_tiles in (False, True):
                    cfg = EmulatorConfig(all_tiles=all_tiles, device="cpu")
                    key = f"{loader}_{'all' if all_tiles else 'active'}"
                    row[key] = _time(EmulatorBackend(cfg, loader=loader), static, steps)
                    row[f"speedup_{key}"] = row["reference"] / row[key]
            ts = EmulatorBackend(EmulatorConfig(device="cpu"), loader="torchscript")
            row["phases"] = _phases(ts, static, steps)
            blocks = EmulatorBackend(EmulatorConfig(device="cpu", row_block=BLOCKS), "torchscript")
            row["phases_blocks"] = _phases(blocks, static, steps)
            fused = EmulatorBackend(EmulatorConfig(device="cpu"), loader="fused")
            row["phases_fused"] = _phases(fused, static, steps)
            eager = EmulatorConfig(device="cpu", compile_physics=False)
            row["phases_fused_eager"] = _phases(EmulatorBackend(eager, "fused"), static, steps)
            loaders = {name: EmulatorBackend(EmulatorConfig(device="cpu"), loader=name)
                       for name in ("torchscript", "aoti", "onnx", "fused")}  # fmt: skip
            batches = (*sorted({256, 1024, 4096, 16_384} - {batch}), batch)  # the backend's last
            row["network"] = _network(loaders, static, batches, steps)
            row["network_only"] = next(
                c["seconds"] for c in row["network"]["calls"]
                if c["loader"] == "torchscript" and c["batch"] == batch
            )  # fmt: skip
            row["speedup_bound"] = row["reference"] / row["network_only"]
            results.append(row)
        machine["matmul_after"] = roofline.peak_matmul()
        machine["copy_after"] = roofline.copy_bandwidth()
    finally:
        torch.set_num_threads(previous)
    return {
        "benchmark": "emulators",
        "steps": steps,
        "threads": threads,
        "roofline": machine,
        "results": results,
    }


def markdown(payload: dict[str, Any]) -> str:
    from coupler.bench.emulators_doc import markdown as section

    return section(payload)
