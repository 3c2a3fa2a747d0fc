"""``make bench-replay``: replay throughput against the coupled run that made the record, on the
same machine, backend and grid, measured in one run.

A coupled run (simplified atmosphere + land service over gRPC, ``ranks`` sessions, daily steps,
the emulator backend, SST held) records ``days`` days with the run's default record options
(``RecordOptions.compact``); its loop is timed as in ``make bench-run``. The record is then
replayed in-process on the same backend (bitwise mode, every rank, reading and prefetching
included, session setup included), serially (one process) and with the ranks in parallel
worker processes (``replay(..., workers=N)``, N = min(ranks, cores), process start included),
and the run steps per second (every rank one step) of each are compared with the coupled run's.
Also reported: the cores, the time per rank-step of the serial replay, record size and objects
per rank.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from coupler.atmosphere import experiment
from coupler.atmosphere.runconfig import RunConfig
from coupler.bench.coupled import measure
from coupler.replay import replay
from coupler.replay.ranks import cores


def _store_stats(prefix: Path) -> tuple[int, list[int]]:
    """(bytes of every file, files per rank record)."""
    ranks = sorted(prefix.glob("rank*.zarr"))
    files = [[p for p in r.rglob("*") if p.is_file()] for r in ranks]
    return sum(p.stat().st_size for f in files for p in f), [len(f) for f in files]


def _replay(prefix: Path, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = replay(str(prefix), collect=False, workers=workers)
    wall = time.perf_counter() - t0
    steps = result.steps[1] - result.steps[0]
    return {
        "workers": result.workers, "steps": steps, "wall_s": wall,
        "steps_per_second": steps / wall, "ms_per_rank_step": 1e3 * wall / (steps * len(
            result.ranks)), "bitwise_equal": result.bitwise_equal, "mode": result.mode,
        "first_difference": None if result.first_difference is None
        else result.first_difference.to_dict(),
    }  # fmt: skip


def run(
    days: int = 365,
    resolution: float = 10.0,
    backend: str = "torchscript",
    ranks: int = 2,
    transport: str = "grpc",
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    config = RunConfig(resolution=resolution, backend=backend, ranks=ranks, years=(2015, 2015),
                       transport=transport)  # fmt: skip
    setup = experiment.prepare_setup(config)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        prefix = Path(tmp) / "record"
        coupled = measure(config, setup, days, record=str(prefix))
        coupled["steps_per_second"] = coupled["steps"] / coupled["wall_s"]
        coupled["ms_per_step"] = 1e3 * coupled["wall_s"] / coupled["steps"]
        size, objects = _store_stats(prefix)
        serial = _replay(prefix, 1)
        parallel = _replay(prefix, max(1, min(ranks, cores())))
    rate = coupled["steps_per_second"]
    return {
        "coupled": coupled,
        "replay": serial,
        "parallel": parallel,
        "cores": cores(),
        "forcing_dtype": config.forcing_dtype,
        "ratio": serial["steps_per_second"] / rate,
        "parallel_ratio": parallel["steps_per_second"] / rate,
        "scaling": parallel["steps_per_second"] / serial["steps_per_second"],
        "record_bytes": size,
        "objects_per_rank": objects,
        "record_options": "RecordOptions.compact() (lossless forcing, outputs bit-rounded)",
    }


def markdown(payload: dict[str, Any]) -> str:
    c, r, p = payload["coupled"], payload["replay"], payload["parallel"]
    return "\n".join([
        "## Replay throughput (`make bench-replay`)",
        "",
        f"One coupled run records {c['steps']} + 2 daily steps ({c['resolution_deg']:g}° grid, "
        f"{c['land_cells']} land cells in {c['ranks']} ranks, backend `{c['backend']}`, "
        f"{c['transport']}, {payload['forcing_dtype']} forcing on the wire; loop timed as in "
        "`make bench-run`); the record is then replayed in-process on the same backend "
        "(bitwise mode, all ranks, reads, prefetch and session setup included), serially and "
        f"with the ranks in {p['workers']} worker processes (`--workers`, process start "
        f"included), torch 1 thread per process. Machine: {payload.get('machine', 'n/a')}; "
        f"{payload['cores']} cores usable by this process.",
        "",
        "| | run steps | wall (s) | run steps per second | ms per rank-step | vs coupled |",
        "|---|---|---|---|---|---|",
        f"| coupled run (atmosphere + service, recording) | {c['steps']} | {c['wall_s']:.1f} | "
        f"{c['steps_per_second']:.1f} | {c['ms_per_step'] / c['ranks']:.2f} | 1.00× |",
        f"| replay, serial ({r['mode']}, bitwise equal: {r['bitwise_equal']}) | {r['steps']} | "
        f"{r['wall_s']:.1f} | {r['steps_per_second']:.1f} | {r['ms_per_rank_step']:.2f} | "
        f"**{payload['ratio']:.2f}×** |",
        f"| replay, {p['workers']} workers (bitwise equal: {p['bitwise_equal']}) | {p['steps']} "
        f"| {p['wall_s']:.1f} | {p['steps_per_second']:.1f} | {p['ms_per_rank_step']:.2f} | "
        f"**{payload['parallel_ratio']:.2f}×** |",
        "",
        f"Scaling 1 → {p['workers']} workers: {payload['scaling']:.2f}×. Record: "
        f"{payload['record_bytes'] / 1e6:.2f} MB, {payload['objects_per_rank']} objects per "
        "rank.",
    ])  # fmt: skip
