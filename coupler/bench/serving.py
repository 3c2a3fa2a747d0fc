"""Per-step time of the land backends behind one Protocol: in-process TorchScript, AOTInductor
and ONNX Runtime, and the same emulators served by a real Triton server (the one nvidia-pytriton
bundles, python backend, on loopback) through system shared memory and through plain gRPC
tensors. Same cells, forcing and steps, one run (``make bench-triton``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from coupler.bench.emulators import _static, _time

BACKENDS = ("torchscript", "aoti", "onnx", "triton_shm", "triton_plain")


def run(
    cells: tuple[int, ...] = (16_384, 65_536), steps: int = 5, threads: int = 1
) -> dict[str, Any]:
    from emulators.compiled.emulator import ARTIFACTS, EmulatorBackend, EmulatorConfig
    from emulators.serving.triton_backend import TritonBackend
    from emulators.serving.triton_repo import RepositoryOptions, write_repository
    from emulators.serving.triton_server import TritonServer

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        repo = Path(tmp) / "repo"
        write_repository(repo, ARTIFACTS, options=RepositoryOptions(torch_threads=threads))
        try:
            with TritonServer(repo, log=Path(tmp) / "tritonserver.log") as server:
                for n in cells:
                    static = _static(n, seed=n)
                    row: dict[str, Any] = {
                        "cells": n,
                        "active_tiles": int((static.cover > 0).sum()),
                    }
                    for name in BACKENDS:
                        cfg = EmulatorConfig(device="cpu")
                        if name.startswith("triton"):
                            backend: Any = TritonBackend(
                                cfg, url=server.url, shared_memory=name == "triton_shm"
                            )
                        else:
                            backend = EmulatorBackend(cfg, loader=name)
                        try:
                            row[name] = _time(backend, static, steps)
                        finally:
                            getattr(backend, "close", lambda: None)()
                    results.append(row)
        finally:
            torch.set_num_threads(previous)
    return {"benchmark": "triton", "steps": steps, "threads": threads, "results": results}


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Triton and ONNX Runtime vs in-process backends (`make bench-triton`)",
        "",
        f"One run, same cells, forcing and {payload['steps']} timed hourly steps after one "
        f"warm-up, {payload['threads']} torch/ONNX Runtime thread(s) in-process and per Triton "
        "model instance, CPU. Every backend runs the same features, closure and phenology "
        "in-process; only the network call differs. Triton: the server bundled with "
        "nvidia-pytriton 0.7.0 (Triton 2.51, python backend running the TorchScript artifact) on "
        "loopback, tensors through system shared memory (`triton_shm`) or inside the gRPC "
        f"messages (`triton_plain`). Machine: {payload['machine']}.",
        "",
        "| cells | active tiles | backend | ms/step | vs torchscript |",
        "|---:|---:|:---|---:|---:|",
    ]
    for r in payload["results"]:
        for name in BACKENDS:
            lines.append(
                f"| {r['cells']:,} | {r['active_tiles']:,} | {name} | {1e3 * r[name]:.1f} | "
                f"{r[name] / r['torchscript']:.2f}× |"
            )
    return "\n".join(lines)
