"""``make bench-replay``: replay throughput against the coupled run that made the record, on the
same machine, backend and grid, measured in one run.

A coupled run (simplified atmosphere + land service over gRPC, ``ranks`` sessions, daily steps,
the emulator backend, SST held) records ``days`` days with the run's default record options
(``RecordOptions.compact``); its loop is timed as in ``make bench-run``. The record is then
replayed in-process on the same backend (bitwise mode, every rank, reading and prefetching
included, session setup included) and the run steps per second (every rank one step) of both
are compared. Also reported: record size and objects per rank.
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


def _store_stats(prefix: Path) -> tuple[int, list[int]]:
    """(bytes of every file, files per rank record)."""
    ranks = sorted(prefix.glob("rank*.zarr"))
    files = [[p for p in r.rglob("*") if p.is_file()] for r in ranks]
    return sum(p.stat().st_size for f in files for p in f), [len(f) for f in files]


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
        size, objects = _store_stats(prefix)
        t0 = time.perf_counter()
        result = replay(str(prefix), collect=False)
        wall = time.perf_counter() - t0
    steps = result.steps[1] - result.steps[0]
    replayed = {
        "steps": steps, "wall_s": wall, "steps_per_second": steps / wall,
        "bitwise_equal": result.bitwise_equal, "mode": result.mode,
        "first_difference": None if result.first_difference is None
        else result.first_difference.to_dict(),
    }  # fmt: skip
    return {
        "coupled": coupled,
        "replay": replayed,
        "ratio": replayed["steps_per_second"] / coupled["steps_per_second"],
        "record_bytes": size,
        "objects_per_rank": objects,
        "record_options": "RecordOptions.compact() (lossless forcing, outputs bit-rounded)",
    }


def markdown(payload: dict[str, Any]) -> str:
    c, r = payload["coupled"], payload["replay"]
    return "\n".join([
        "## Replay throughput (`make bench-replay`)",
        "",
        f"One coupled run records {c['steps']} + 2 daily steps ({c['resolution_deg']:g}° grid, "
        f"{c['land_cells']} land cells in {c['ranks']} ranks, backend `{c['backend']}`, "
        f"{c['transport']}; loop timed as in `make bench-run`); the record is then replayed "
        "in-process on the same backend (bitwise mode, all ranks, reads, prefetch and session "
        f"setup included), torch 1 thread. Machine: {payload.get('machine', 'n/a')}.",
        "",
        "| | run steps | wall (s) | run steps per second |",
        "|---|---|---|---|",
        f"| coupled run (atmosphere + service, recording) | {c['steps']} | {c['wall_s']:.1f} | "
        f"{c['steps_per_second']:.1f} |",
        f"| replay ({r['mode']}, bitwise equal: {r['bitwise_equal']}) | {r['steps']} | "
        f"{r['wall_s']:.1f} | {r['steps_per_second']:.1f} |",
        "",
        f"Replay / coupled: **{payload['ratio']:.2f}×**. Record: "
        f"{payload['record_bytes'] / 1e6:.2f} MB, {payload['objects_per_rank']} objects per "
        "rank.",
    ])  # fmt: skip
