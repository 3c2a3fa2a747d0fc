"""The flux network's cost per step, alone, for several exported ``flux_lstm`` artifacts in one
run: ms per call over ``rows`` rows in calls of 4 096, GFLOP/s from the config's matrix-product
FLOPs, and the fraction of a float32 matmul peak measured just before each (docs/emulators.md,
"Bigger memory (candidate D) and physics-derived inputs (candidate E)").

    python examples/flux_network_cost.py emulators/artifacts/flux_lstm out/candD/artifacts/flux_lstm

Inputs are the manifest's per-feature means plus unit-variance noise scaled by the stds: the
cost of these networks does not depend on the values."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coupler.bench import roofline
from emulators.export import load_torchscript
from emulators.manifest import Manifest


def main(directories: list[str], rows: int = 100_000, chunk: int = 4096, threads: int = 2) -> None:
    torch.set_num_threads(threads)
    print("| artifact | config | FLOP/row (matmuls) | ms | GFLOP/s | peak GFLOP/s | fraction |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for d in directories:
        manifest = Manifest.load(Path(d))
        net = load_torchscript(manifest.artifact_path(Path(d), "torchscript"))
        channels = manifest.inputs[0].channels
        mean = torch.tensor([c.mean for c in channels])
        std = torch.tensor([c.std for c in channels])
        g = torch.Generator().manual_seed(0)
        x = mean + std * torch.randn(rows, len(channels), generator=g)
        h = torch.zeros(rows, int(manifest.recurrent_state["hidden"]))
        flops = roofline.flux_lstm_flops(manifest.config)["gemm"]

        def call(net: Any = net, x: torch.Tensor = x, h: torch.Tensor = h) -> None:
            with torch.no_grad():
                for i in range(0, rows, chunk):
                    net(x[i : i + chunk], h[i : i + chunk], h[i : i + chunk])

        peak = roofline.peak_matmul()["gflops"]
        call()
        best = min(_timed(call) for _ in range(5))
        gflops = flops * rows / best / 1e9
        print(
            f"| {d} | {manifest.config} | {flops:,} | {1e3 * best:.1f} | {gflops:.1f} | "
            f"{peak:.0f} | {gflops / peak:.2f} |"
        )


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main(sys.argv[1:])
