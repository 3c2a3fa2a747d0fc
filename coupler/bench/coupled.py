"""``make bench-run``: coupled-run throughput, simulated years per wall-clock hour, at several
resolutions, over gRPC (local server on 127.0.0.1:0) and in-process.

Each case runs ``days`` days of the coupled loop (atmosphere + land service, SST held, daily
steps by default, ``ranks`` sessions) after the untimed setup; only the loop is timed, which is
what a long run spends its time on. At every resolution and transport the reference backend and
the emulator backend (``torchscript``, daily flux emulator ``flux_lstm_daily``) are measured at
daily steps; at the coarsest resolution also the emulator at 3600 s steps (``flux_lstm``).
``python -m coupler.bench.coupled --json F --update-doc docs/benchmarks.md`` writes the
results and the ``run`` section of the doc.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from coupler.atmosphere import experiment
from coupler.atmosphere.column import ColumnModel, Forcing
from coupler.atmosphere.driver import OceanMode, integrate
from coupler.atmosphere.grid import split_land
from coupler.atmosphere.runconfig import RunConfig
from coupler.atmosphere.service_land import ServiceLand, SessionOptions
from coupler.client import local_client
from emulators.constants import DAYS_PER_YEAR


def measure(
    config: RunConfig, setup: experiment.Setup, days: int, record: str | None = None
) -> dict[str, Any]:
    """Time ``days`` days of the coupled loop for ``config`` (its transport, backend, ranks),
    recording to the ``record`` prefix (with ``config.record_options``) when given."""
    grid, col = setup.grid, config.column
    steps = int(days * 86_400 // config.timestep)
    model = ColumnModel(grid, col)
    options = SessionOptions(
        start=setup.state.time, timestep=config.timestep, backend=config.backend,
        members=config.members, run_id="bench-run", record_url=record,
        record_options=config.record_options, forcing_dtype=config.forcing_dtype,
    )  # fmt: skip
    forcing = Forcing(0.0, setup.reference_co2)
    with experiment.open_client(config.transport) as client:
        land = ServiceLand(client, grid, split_land(grid, config.ranks), setup.cover, options)
        try:
            integrate(model, setup.state.copy(), land, 2, lambda t: forcing, OceanMode())
            t0 = time.perf_counter()
            integrate(
                model, setup.state.copy(), land, steps, lambda t: forcing, OceanMode(),
                land_index0=2,
            )  # fmt: skip
            wall = time.perf_counter() - t0
        finally:
            land.close()
    return {
        "resolution_deg": config.resolution,
        "transport": config.transport,
        "backend": config.backend,
        "cells": int(grid.n_cells),
        "land_cells": int(grid.land_index.size),
        "ranks": config.ranks,
        "timestep_s": config.timestep,
        "steps": steps,
        "wall_s": wall,
        "ms_per_step": 1e3 * wall / steps,
        "years_per_hour": (steps * config.timestep / 86_400.0 / DAYS_PER_YEAR) / (wall / 3600.0),
    }


def run(
    resolutions: tuple[float, ...] = (10.0, 4.0, 2.0),
    transports: tuple[str, ...] = ("grpc", "inprocess"),
    days: int = 30,
    backend: str = "reference",
    ranks: int = 2,
    emulator_days: int = 2,
    emulator: str | None = "torchscript",
) -> dict[str, Any]:
    """Every resolution × transport with ``backend`` and with the ``emulator`` backend (None:
    not measured) at daily steps; then, at the coarsest resolution, the emulator backend at
    3600 s steps (``emulator_days`` days; 0 = not measured)."""
    import torch

    torch.set_num_threads(1)
    rows = []
    notes = []
    status = "not requested"
    if emulator is not None:
        with local_client("inprocess") as client:
            status = client.describe()["details"]["backends"].get(emulator, "not registered")
        if status != "available":
            notes.append(f"{emulator} backend not measured: {status}")
    daily_backends = (backend,) + ((emulator,) if emulator and status == "available" else ())
    for res in resolutions:
        base = RunConfig(resolution=res, backend=backend, ranks=ranks, years=(2015, 2015))
        setup = experiment.prepare_setup(base)
        for transport in transports:
            for name in daily_backends:
                cfg = RunConfig(
                    resolution=res, backend=name, ranks=ranks, years=(2015, 2015),
                    transport=transport,
                )  # fmt: skip
                rows.append(measure(cfg, setup, days))
    if emulator_days > 0 and emulator is not None:
        if status == "available":
            res = max(resolutions)
            setup = experiment.prepare_setup(
                RunConfig(resolution=res, timestep=3600, years=(2015, 2015))
            )
            for transport in transports:
                cfg = RunConfig(
                    resolution=res, backend=emulator, ranks=ranks, years=(2015, 2015),
                    transport=transport, timestep=3600,
                )  # fmt: skip
                rows.append(measure(cfg, setup, emulator_days))
    return {"cases": rows, "days": days, "emulator_days": emulator_days, "notes": notes}


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Coupled run throughput (`make bench-run`)",
        "",
        f"Simplified atmosphere + land service, {payload['days']} days per case at daily steps "
        "(reference backend, and the emulator backend with its daily flux emulator "
        f"`flux_lstm_daily`); {payload.get('emulator_days', 0)} days for the emulator backend at "
        "3600 s steps (`flux_lstm`); loop only (setup untimed), torch 1 thread. Machine: "
        f"{payload.get('machine', 'n/a')}.",
        "",
        "| resolution | cells (land) | transport | backend | step | ranks | ms/step | "
        "simulated years per hour |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["cases"]:
        lines.append(
            f"| {r['resolution_deg']:g}° | {r['cells']} ({r['land_cells']}) | {r['transport']} "
            f"| {r['backend']} | {r['timestep_s']} s | {r['ranks']} | {r['ms_per_step']:.1f} | "
            f"{r['years_per_hour']:.0f} |"
        )
    lines += [f"\n{note}" for note in payload.get("notes", [])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--resolutions", default="10,4,2", help="comma-separated degrees")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--emulator-days", type=int, default=2)
    p.add_argument("--backend", default="reference")
    p.add_argument("--emulator", default="torchscript", help="emulator backend ('none': skip)")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--update-doc", default=None, metavar="MD")
    args = p.parse_args(argv)
    from coupler.bench import doc

    resolutions = tuple(float(x) for x in args.resolutions.split(","))
    load_before = os.getloadavg()[0]
    payload = run(
        resolutions, days=args.days, backend=args.backend, ranks=args.ranks,
        emulator_days=args.emulator_days,
        emulator=None if args.emulator.lower() == "none" else args.emulator,
    )  # fmt: skip
    m = doc.machine()
    load_after = os.getloadavg()[0]
    payload["load_average"] = {"before": load_before, "after": load_after}
    payload["machine"] = (
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['date']}, 1-min load average "
        f"{load_before:.1f} before / {load_after:.1f} after (other processes; ≈0 when quiet)"
    )
    doc.publish(markdown(payload), payload, "run", args.json, args.update_doc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
