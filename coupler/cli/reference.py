"""``landcoupler reference``: run the reference land model over a forcing source → Zarr."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reference",
        help="run the reference land model over a forcing source and write its outputs to Zarr",
        description="Run the reference land model over real station weather or synthetic "
        "forcing and write hourly outputs (CMIP names, CF attributes) to a Zarr v3 store.",
    )
    p.add_argument(
        "--forcing",
        required=True,
        help="forcing source, e.g. tmy3-greensboro, "
        "epw-amsterdam, pcse-wageningen, synthetic (see docs/forcing.md)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--land-cover",
        default="grass",
        metavar="CLASS",
        help="land-cover class of every cell (ebf, dfw, grass, crop, shrub, bare, "
        "urban, water) or 'all' to run each class side by side (default: grass)",
    )
    group.add_argument(
        "--surface",
        choices=["land", "fao56-grass"],
        default="land",
        help="fao56-grass: the FAO-56 reference grass surface (h=0.12 m, "
        "rs=70 s/m, albedo 0.23, well watered)",
    )
    p.add_argument("--timestep", type=int, default=3600, help="model step in s (default 3600)")
    p.add_argument(
        "--spinup-days",
        type=int,
        default=60,
        help="days run twice first to spin up soil water and leaves (default 60)",
    )
    p.add_argument("--out", required=True, help="output Zarr URL (path, memory://, s3://...)")
    p.add_argument("--plot", default=None, help="also write a PNG of daily means here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulators import forcing as forcing_sources
    from emulators.constants import SECONDS_PER_DAY
    from emulators.io import write_zarr
    from emulators.reference import report
    from emulators.reference.run import (
        RunSpec,
        cover_for,
        expand_all_classes,
        fao56_config,
        run_reference,
    )
    from emulators.tables import to_markdown

    forcing = forcing_sources.load(args.forcing, timestep=args.timestep)
    config = None
    if args.surface == "fao56-grass":
        config = fao56_config(forcing)
        cover = cover_for("grass", forcing.sizes["cell"])
    elif args.land_cover == "all":
        forcing, cover = expand_all_classes(forcing)
    else:
        cover = cover_for(args.land_cover, forcing.sizes["cell"])
    spinup = args.spinup_days * SECONDS_PER_DAY // args.timestep
    out = run_reference(
        forcing, RunSpec(cover=cover), config, progress=not args.no_progress, spinup_steps=spinup
    )
    write_zarr(out, args.out)
    print(f"wrote {out.sizes['time']} steps x {out.sizes['cell']} cells to {args.out}")
    summary = report.class_summary(out, forcing)
    print(to_markdown(summary, digits=4))
    if args.plot:
        path = report.plot_run(out, args.plot, title=f"reference model, {args.forcing}")
        print(f"plot: {path}")
    return 0
