"""``landcoupler dataset``: reference-model training data with perturbed parameters → Zarr."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="generate a training dataset (reference model, perturbed parameters) as Zarr",
        description="Run the reference model with MdPL-style perturbed parameters over a forcing "
        "source and write forcing, cover, parameters and outputs to one Zarr v3 store.",
    )
    p.add_argument("--forcing", default="synthetic", help="forcing source (default synthetic)")
    p.add_argument("--cells", type=int, default=64, help="cells (synthetic forcing)")
    p.add_argument("--days", type=int, default=365, help="days (synthetic forcing)")
    p.add_argument("--start", default="2001-01-01", help="first day (synthetic forcing)")
    p.add_argument("--timestep", type=int, default=3600, help="s (default 3600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--perturbation",
        type=float,
        default=1.0,
        help="parameter perturbation as a fraction of each range (default 1)",
    )
    p.add_argument("--mixed-cover", action="store_true", help="random class mixtures per cell")
    p.add_argument("--out", required=True, help="output Zarr URL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulators.datasets import DatasetConfig, generate
    from emulators.io import write_zarr

    config = DatasetConfig(
        forcing=args.forcing,
        cells=args.cells,
        days=args.days,
        start=args.start,
        timestep=args.timestep,
        seed=args.seed,
        perturbation=args.perturbation,
        mixed_cover=args.mixed_cover,
    )
    ds = generate(config)
    write_zarr(ds, args.out)
    print(f"wrote {ds.sizes['time']} steps x {ds.sizes['cell']} cells to {args.out}")
    return 0
