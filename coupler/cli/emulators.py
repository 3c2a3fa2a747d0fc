"""``landcoupler emulators train|export|evaluate|spin-up|misses NAME``: the registered emulator
recipes (``emulators.recipes``); ``spin-up`` chooses a recurrent flux emulator's spin-up on its
validation sources (``emulators.training.spin_up``); ``misses`` prints, from the artifact's
manifest, the held-out rows below issue 14's targets and what each misses
(``emulators.training.skill_gaps``). ``landcoupler emulators export --triton
REPO [NAME]`` writes a Triton model repository of the shipped artifacts instead
(``emulators.serving.triton_repo``; default: the flux and LAI emulators the compiled backends
load)."""

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
    p.add_argument("action", choices=("train", "export", "evaluate", "spin-up", "misses"))
    p.add_argument("name", nargs="?", choices=names(), help="emulator (not with --triton)")
    p.add_argument(
        "--triton", type=Path, metavar="REPO",
        help="export: write a Triton model repository to REPO (from the shipped artifacts)",
    )  # fmt: skip
    p.add_argument(
        "--triton-platform", default="python",
        choices=("python", "onnxruntime_onnx", "pytorch_libtorch", "tensorrt_plan"),
        help="Triton platform of every model (default python: the only backend of the Triton "
        "server bundled with nvidia-pytriton)",
    )  # fmt: skip
    p.add_argument(
        "--triton-emulator", action="append", choices=names(), metavar="NAME",
        help="with --triton: export this emulator (repeatable; default: flux-lstm, "
        "flux-lstm-daily, lai, lai-daily)",
    )  # fmt: skip
    p.add_argument("--max-batch-size", type=int, default=16_384, help="rows per Triton call")
    p.add_argument("--instances", type=int, default=1, help="Triton instances per model")
    p.add_argument(
        "--instance-kind", default=None, choices=("KIND_CPU", "KIND_GPU"),
        help="Triton instance kind (default KIND_CPU; KIND_GPU for tensorrt_plan)",
    )  # fmt: skip
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
    p.add_argument(
        "--timestep", type=int, default=None, metavar="SECONDS",
        help="evaluate: at land steps of this length instead of the trained one (canopy-mlp "
        "only, which the hybrid backend serves at any step: writes report-NAME-SECONDSs, the "
        "manifest keeps its skill)",
    )  # fmt: skip
    p.add_argument(
        "--plot", type=Path, default=None, metavar="PNG",
        help="misses: also draw them (the KGE misses' mean error against its room, the NSE "
        "misses per start) to PNG",
    )  # fmt: skip
    p.add_argument(
        "--compare", type=Path, nargs="+", default=None, metavar="DIR",
        help="misses: also compare with these artifact directories (or manifest.json files) of "
        "the same emulator: rows each meets, gained and lost, rows every one misses",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=None, help="training seed (train; if supported)")
    p.add_argument("--epochs", type=int, default=None, help="max epochs (train; if supported)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emulators.recipes import ARTIFACTS, get

    if args.triton is not None:
        if args.action != "export":
            raise ValueError("--triton: only with the export action")
        if args.name is not None:
            raise ValueError("name: with --triton, name emulators with --triton-emulator")
        return _export_triton(args, args.artifacts or ARTIFACTS)
    if args.name is None:
        raise ValueError("name: an emulator name is needed (except for export --triton)")
    if args.timestep is not None and args.action != "evaluate":
        raise ValueError("--timestep: only with the evaluate action")
    if args.plot is not None and args.action != "misses":
        raise ValueError("--plot: only with the misses action")
    if args.compare is not None and args.action != "misses":
        raise ValueError("--compare: only with the misses action")
    recipe = get(args.name)
    artifacts = args.artifacts or ARTIFACTS
    progress = not args.no_progress
    if args.action == "train":
        recipe = recipe.with_cli(seed=args.seed, epochs=args.epochs)
        manifest = recipe.train(artifacts=artifacts, work=args.work, progress=progress)
    elif args.action == "export":
        manifest = recipe.export(artifacts=artifacts, work=args.work)
    elif args.action == "spin-up":
        return _spin_up(recipe.name, Path(artifacts) / recipe.artifact, args.work, progress)
    elif args.action == "misses":
        return _misses(recipe.name, Path(artifacts) / recipe.artifact, args.plot, args.compare)
    else:
        manifest = recipe.evaluate(
            artifacts=artifacts,
            out_dir=args.work / _report(args),
            cache=args.work / "data",
            progress=progress,
            timestep=args.timestep,
        )
    summary = [r for r in manifest.skill if r.get("source") == "all held-out" and "start" not in r]
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
    starts = _starts_table(manifest.skill)
    if starts:
        print(
            "LE (hfls) and H (hfss) NSE / KGE: continuous record; fresh and resumed starts, "
            "first 48 h vs the rest"
        )
        print(starts)
        print(_misses_table(manifest.skill))
    if args.action == "evaluate" and recipe.name == "flux-lstm":
        print(_session_week(Path(artifacts)))
    if args.action in ("train", "evaluate"):
        from emulators.reference.fingerprint import teacher

        line = teacher(manifest.training)
        if line:
            print(line)
    if args.action == "export":
        print(f"export checks (relative error vs eager): {manifest.export_checks}")
    report = args.work / _report(args)
    print(f"artifacts: {Path(artifacts) / recipe.artifact}; report: {report}")
    return 0


def _report(args: argparse.Namespace) -> str:
    """The report directory's name: report-NAME, or report-NAME-SECONDSs with ``--timestep``."""
    step = "" if args.timestep is None else f"-{args.timestep}s"
    return f"report-{args.name}{step}"


def _spin_up(name: str, directory: Path, work: Path, progress: bool) -> int:
    from emulators.manifest import Manifest
    from emulators.training import spin_up

    if not Manifest.load(directory).recurrent_state.get("hidden"):
        raise ValueError(f"name: {name} has no recurrent state to spin up")
    manifest = spin_up.select(directory, cache=work / "data", progress=progress)
    chosen = manifest.recurrent_state["spin_up"]
    selection = manifest.recurrent_state["spin_up_selection"]
    print(f"{name}: spin-up scores ({selection['criterion']}; {', '.join(selection['sources'])}):")
    for k, score in selection["scores"].items():
        print(f"  {k:>4} network calls: {score:.4f}" + ("  <- chosen" if int(k) == chosen else ""))
    print(
        f"written to {directory / 'manifest.json'}; `landcoupler emulators evaluate {name}` "
        "scores the held-out sources with it"
    )
    return 0


def _misses(name: str, directory: Path, plot: Path | None, others: list[Path] | None) -> int:
    from emulators.manifest import Manifest
    from emulators.plots import save_png
    from emulators.training import skill_compare, skill_gaps

    skill = Manifest.load(directory).skill
    if not any("start" in r for r in skill):
        raise ValueError(
            f"name: {name}'s manifest has no held-out rows by start (fresh, resumed); "
            "`misses` is for the flux emulators"
        )
    total, found = skill_gaps.misses(skill)
    print(f"{name} ({directory / 'manifest.json'}): {skill_gaps.markdown(total, found)}")
    if plot is not None:
        print(f"plot: {save_png(skill_gaps.figure(found, title=name), plot)}")
    if others:
        named = {name: skill}
        for path in others:
            folder = path.parent if path.name == "manifest.json" else path
            named[str(path)] = Manifest.load(folder).skill
        print(skill_compare.markdown(skill_compare.compare(named)))
    return 0


def _misses_table(records: list[dict[str, object]]) -> str:
    from emulators.training import skill_gaps

    return skill_gaps.markdown(*skill_gaps.misses(records))


def _session_week(artifacts: Path) -> str:
    """Issue 14's cold-start week: a fresh emulator session beside the reference (32 cells, CGMS
    grid 31031, July 2000, hourly), LE and H per day, first 48 h, the rest."""
    from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
    from emulators.reference.model import ReferenceBackend
    from emulators.training import session_week

    config = session_week.WeekConfig()
    emulator = EmulatorBackend(EmulatorConfig(artifacts=artifacts))
    rows = session_week.table(session_week.run(config, emulator, ReferenceBackend()))
    return (
        f"fresh session, {config.source} from {config.start}, {config.cells} cells, "
        f"{config.days} days (torchscript vs reference, cell LE and H):\n"
        + session_week.markdown(rows)
    )


def _starts_table(records: list[dict[str, object]]) -> str:
    if not any("start" in r for r in records):
        return ""
    from emulators.training.coldstart import summary

    return summary(records)


def _export_triton(args: argparse.Namespace, artifacts: Path) -> int:
    from emulators.serving.triton_repo import DEFAULT_EMULATORS, RepositoryOptions, write_repository

    kind = args.instance_kind or (
        "KIND_GPU" if args.triton_platform == "tensorrt_plan" else "KIND_CPU"
    )
    options = RepositoryOptions(
        platform=args.triton_platform,
        max_batch_size=args.max_batch_size,
        instances=args.instances,
        kind=kind,
    )
    chosen = args.triton_emulator or ()
    emulators = tuple(get_artifact(n) for n in chosen) or DEFAULT_EMULATORS
    for config in write_repository(args.triton, artifacts, emulators, options):
        print(f"wrote {config}")
    print(f"Triton model repository ({options.platform}): {args.triton}")
    return 0


def get_artifact(name: str) -> str:
    from emulators.recipes import get

    return str(get(name).artifact)
