"""``landcoupler run``: a coupled land–atmosphere scenario run with the simplified atmosphere.

The atmosphere (``coupler.atmosphere``) reaches the land only through the client API: by
default it starts a local gRPC server on 127.0.0.1:0 and talks to it with ``CouplerClient``
(``--transport inprocess`` uses the in-process transport instead, ``--transport shm`` moves the
step arrays through shared memory). Writes, under ``--out``:
per-experiment diagnostics (Zarr), the Zarr record of the exchange (``--record``), summary
tables (``summary.md``, ``summary.json``, CSVs) and PNG plots, and prints where they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="coupled scenario run: simplified atmosphere + the land service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML file with RunConfig keys (flags override)")
    p.add_argument("--scenario", choices=("historical", "ssp370", "ssp585"))
    p.add_argument("--years", help="START:END calendar years (inclusive), e.g. 2015:2045")
    p.add_argument("--resolution", type=float, help="grid spacing, degrees (e.g. 10, 4, 2)")
    p.add_argument("--timestep", type=int, help="coupling step, s (divides a day; default 86400)")
    p.add_argument("--backend", help="land backend of the sessions (default reference)")
    p.add_argument("--transport", choices=("grpc", "shm", "inprocess"))
    p.add_argument("--members", type=int, help="land ensemble members per session")
    p.add_argument("--ranks", type=int, help="sessions (subdomains) per experiment")
    p.add_argument("--jobs", type=int, help="experiments run in parallel processes")
    p.add_argument("--record", help="Zarr record URL prefix (default OUT/record; 'none': off)")
    p.add_argument("--out", type=Path, help="output directory (default out/run)")
    p.add_argument(
        "--assimilate", metavar="OBS.zarr",
        help="Zarr observation file (docs/assimilation.md): the sessions assimilate it "
        "(needs --members >= 2)",
    )  # fmt: skip
    p.add_argument("--spinup-years", type=int, help="coupled control years before START")
    p.add_argument(
        "--forcing-dtype", choices=("float32", "float64"),
        help="dtype of the forcing the atmosphere sends (default float32; its state stays "
        "float64; the record keeps what was sent)",
    )  # fmt: skip
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--frozen-land", action="store_true",
        help="only the frozen-land experiment (vegetation held at the start)",
    )  # fmt: skip
    mode.add_argument(
        "--no-land-feedback", action="store_true",
        help="only the dynamic-land experiment (default: dynamic and frozen, for the feedback)",
    )  # fmt: skip
    p.add_argument(
        "--land-use-change", action="store_true",
        help="add the 'luc' experiment: the scenario's land use (a seeded stylised SSP "
        "trajectory downscaled by the LULC U-Net each year) sent to the sessions as new land "
        "cover; its feedback (luc - dynamic) is reported beside the vegetation feedback",
    )  # fmt: skip
    p.add_argument("--land-use-seed", type=int, help="seed of the land-use trajectory (0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The RunConfig of the config file overridden by the flags given."""
    from coupler.atmosphere import runconfig as R

    values: dict[str, Any] = R.load_file(args.config) if args.config else {}
    flags = {
        "scenario": args.scenario, "years": args.years, "resolution": args.resolution,
        "timestep": args.timestep, "backend": args.backend, "transport": args.transport,
        "members": args.members, "ranks": args.ranks, "jobs": args.jobs, "out": args.out,
        "spinup_years": args.spinup_years, "assimilate": args.assimilate,
        "forcing_dtype": args.forcing_dtype,
        "land_use_seed": args.land_use_seed,
    }  # fmt: skip
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.frozen_land:
        values["experiments"] = ["frozen"]
    elif args.no_land_feedback:
        values["experiments"] = ["dynamic"]
    if args.no_progress:
        values["progress"] = False
    if args.land_use_change:
        values["land_use_change"] = True
    out = Path(values.get("out", R.RunConfig.out))
    record = args.record if args.record is not None else values.get("record", str(out / "record"))
    values["record"] = None if str(record).lower() == "none" else record
    return R.from_mapping(values)


def run(args: argparse.Namespace) -> int:
    import torch

    from coupler.atmosphere import coupled

    config = config_from_args(args)
    torch.set_num_threads(1)  # small per-step tensors: threads only add overhead here
    outputs = coupled.execute(config)
    print(Path(config.out, "summary.md").read_text(), file=sys.stdout)
    print("outputs:")
    for path in outputs.files:
        print(f"  {path}")
    for r in outputs.results:
        if r.record:
            print(f"  record ({r.name}): {r.record}/rank*.zarr")
    return 0
