"""``landcoupler calibrate``: the MdPL twin — train the parameter generator through the frozen
flux emulator, leave-one-out cross-validation within each class, per-site direct optimisation,
the ensemble filter's state-augmentation estimate (an assimilating session through the client
API), identifiability, Taylor diagram and the calibrated parameter map (docs/calibration.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

#: the filter's ensemble size: at least 2 (an ensemble), at most 1000
DA_MEMBERS = (2, 1000)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="MdPL parameter calibration twin through the frozen flux emulator",
        description=__doc__,
    )
    p.add_argument("--out", type=Path, default=Path("calibration"), help="output directory")
    p.add_argument("--sites-per-class", type=int, default=6)
    p.add_argument("--classes", type=int, default=4, help="1..4 (EBF, woodland, grass, crop)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--noise", type=float, default=5.0, help="observation noise [W m-2]")
    p.add_argument("--class-shift", type=float, default=0.35)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=0, help="seed of the twin (sites, truth, noise)")
    p.add_argument("--fit-seed", type=int, default=None, help="seed of the fit (default --seed)")
    p.add_argument("--no-loocv", action="store_true", help="skip leave-one-out generators")
    p.add_argument(
        "--no-da", action="store_true", help="skip the ensemble filter's parameter estimate"
    )
    p.add_argument(
        "--da-members", type=int, default=30, help="ensemble size of the filter (2..1000)"
    )
    p.add_argument(
        "--da-parameters",
        choices=("sensitive", "all"),
        default="sensitive",
        help="the parameters the filter estimates: those the fluxes are sensitive to "
        "(>= 1 W m-2 per 10 %% of the range), or all 12",
    )
    p.add_argument(
        "--da-inflation",
        choices=("none", "adaptive"),
        default="none",
        help="the filter's inflation (adaptive: the session default, sd 0.6)",
    )
    p.add_argument("--resume", type=Path, default=None, help="go on from this checkpoint.pt")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from emulators.calibration.experiment import run
    from emulators.calibration.fit import FitConfig
    from emulators.calibration.sites import TwinConfig

    lo, hi = DA_MEMBERS
    if not lo <= args.da_members <= hi:
        raise ValueError(f"--da-members: must be in {lo}..{hi}, got {args.da_members}")
    torch.set_num_threads(args.threads)
    twin = TwinConfig(
        sites_per_class=args.sites_per_class,
        classes=args.classes,
        days=args.days,
        noise_wm2=args.noise,
        class_shift=args.class_shift,
        seed=args.seed,
    )
    cfg = FitConfig(
        epochs=args.epochs,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed if args.fit_seed is None else args.fit_seed,
        loocv=not args.no_loocv,
        checkpoint=args.out / "checkpoint.pt",
        resume=args.resume,
        progress=not args.no_progress,
    )
    report = run(twin, cfg, args.out, None if args.no_da else _filter(args))
    d = report["rmse_wm2"]["default"]
    for method, cut in report["rmse_cut_vs_default"].items():
        r = report["rmse_wm2"][method]
        print(
            f"{method:>10}: LE RMSE {d['hfls']:.2f} -> {r['hfls']:.2f} W m-2 "
            f"({100 * cut['hfls']:+.0f} % cut), H {d['hfss']:.2f} -> {r['hfss']:.2f} "
            f"({100 * cut['hfss']:+.0f} %)"
        )
    ident = [p["parameter"] for p in report["parameters"] if p["identifiable"]]
    print(f"identifiable: {', '.join(ident) or 'none'}")
    print(f"{report['seconds']['total']:.0f} s; report, taylor.png, parameters.zarr in {args.out}")
    return 0


def _filter(args: argparse.Namespace) -> Any:
    """The ensemble filter's estimate as an extra method of the twin (``experiment.Extra``)."""
    from coupler.experiments.calibration_da import FilterConfig, run_filter, screen, summary

    def extra(sites: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        names, sens = screen(sites)
        cfg = FilterConfig(
            members=args.da_members,
            parameters=names if args.da_parameters == "sensitive" else FilterConfig.parameters,
            inflation=args.da_inflation,
            seed=args.seed if args.fit_seed is None else args.fit_seed,
            progress=not args.no_progress,
        )
        result = run_filter(sites, cfg, args.noise)
        info = {**summary(sites, result, cfg), "screening_sensitivity_wm2": sens.tolist()}
        return {"filter": result.estimate}, {"filter": info}

    return extra
