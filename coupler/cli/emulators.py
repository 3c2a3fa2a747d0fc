"""``landcoupler emulators train|export|evaluate NAME``: the registered emulator recipes
(``emulators.recipes``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from emulators.recipes import names

    p = sub.add_parser(
        "emulators",
        help="train, export or evaluate a shipped emulator",
        description="Train an emulator from scratch (writes the artifacts, manifest and skill "
        "report), or evaluate the shipped artifact against the reference model on held-out data.",
    )
    p.add_argument("action", choices=("train", "export", "evaluate"))
    p.add_argument("name", choices=names())
    p.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="artifacts directory (default: the package's emulators/artifacts)",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=Path("out/emulators"),
        help="work directory: data cache, checkpoints, reports (default out/emulators)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=None, help="training seed (train; if supported)")
    p.add_argument("--epochs", type=int, default=None, help="max epochs (train; if supported)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulators.recipes import ARTIFACTS, get

    recipe = get(args.name)
    artifacts = args.artifacts or ARTIFACTS
    progress = not args.no_progress
    if args.action == "train":
        recipe = recipe.with_cli(seed=args.seed, epochs=args.epochs)
        manifest = recipe.train(artifacts=artifacts, work=args.work, progress=progress)
    elif args.action == "export":
        manifest = recipe.export(artifacts=artifacts, work=args.work)
    else:
        manifest = recipe.evaluate(
            artifacts=artifacts,
            out_dir=args.work / f"report-{args.name}",
            cache=args.work / "data",
            progress=progress,
        )
    summary = [r for r in manifest.skill if r.get("source") == "all held-out"]
    for r in summary:
        print(
            f"{args.name} {r['variable']}: NSE {r['nse']:.4f}, KGE {r['kge']:.4f}, "
            f"RMSE {r['rmse']:.4g} {r['units']}"
        )
    for r in manifest.skill:  # classification-style rows (lulc-unet)
        if "method" in r and "accuracy" in r:
            print(
                f"{args.name} {r['method']} ({r.get('split', '')}): accuracy "
                f"{r['accuracy']:.4f}, MAE {r['mae']:.4f}, mean IoU {r['mean_iou']:.4f}, "
                f"max aggregation error {r['max_aggregation_error']:.1e}"
            )
    if args.action == "export":
        print(f"export checks (relative error vs eager): {manifest.export_checks}")
    report = args.work / f"report-{args.name}"
    print(f"artifacts: {Path(artifacts) / recipe.artifact}; report: {report}")
    return 0
