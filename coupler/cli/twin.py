"""``landcoupler twin``: the land data-assimilation twin experiment (synthetic LAI, LE/H and LST
from a truth run with hidden parameters; free vs assimilating ensemble)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "twin",
        help="land DA twin experiment: free vs assimilating ensemble (JSON, Markdown, PNG)",
        description="Truth = reference land model with hidden parameters; synthetic 8-day LAI "
        "composites, daily LE/H at tower cells and LST at a 10:30 overpass with documented "
        "errors; a free and an assimilating ensemble (serial EAKF, adaptive inflation, "
        "parameter estimation). Writes twin.json, twin.md and twin.png (see "
        "docs/assimilation.md).",
    )
    p.add_argument("--members", type=int, default=20, help="ensemble size (default 20)")
    p.add_argument("--cells", type=int, default=16, help="number of land cells (default 16)")
    p.add_argument("--days", type=int, default=365, help="length in days (default 365)")
    p.add_argument(
        "--towers", type=int, default=None, help="cells with daily LE/H (default min(4, cells))"
    )
    p.add_argument("--spinup-days", type=int, default=30, help="days left out of statistics")
    p.add_argument("--start", default="2001-01-01", help="UTC start date (default 2001-01-01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backend",
        default="reference",
        help="land backend of the ensembles: reference, torchscript, aoti, onnx, hybrid, "
        "transformer (default reference)",
    )
    p.add_argument(
        "--truth-backend", default="reference", help="land backend of the truth (default reference)"
    )
    p.add_argument(
        "--estimate",
        default="vmax0,psicr",
        help="comma-separated parameters the ensemble estimates, the others held at the "
        "truth's hidden values; 'none' for none (default vmax0,psicr)",
    )
    p.add_argument(
        "--observe",
        default="lai,flux,lst",
        help="comma-separated observation types assimilated: lai, flux (tower LE/H), lst "
        "(default lai,flux,lst)",
    )
    p.add_argument("--out", default="out/twin", help="report directory (default out/twin)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary JSON only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from coupler.errors import InvalidArgument
    from coupler.experiments import twin_report
    from coupler.experiments.twin import run_twin
    from coupler.experiments.twin_config import TwinConfig

    torch.set_num_threads(max(1, args.threads))
    try:
        towers = min(4, args.cells) if args.towers is None else args.towers
        cfg = TwinConfig(
            members=args.members,
            cells=args.cells,
            days=args.days,
            spinup_days=args.spinup_days,
            start=args.start,
            seed=args.seed,
            towers=towers,
            backend=args.backend,
            truth_backend=args.truth_backend,
            estimate=_names(args.estimate),
            observe=_names(args.observe),
        )
        result = run_twin(cfg, progress=not args.json)
    except InvalidArgument as exc:
        print(f"landcoupler twin: error: {exc} (rule: {exc.rule})", file=sys.stderr)
        return 2
    paths = twin_report.write(result, args.out)
    if args.json:
        print(json.dumps(twin_report.summary(result), indent=2))
    else:
        print(twin_report.markdown(result))
        for kind, path in paths.items():
            print(f"{kind}: {path}")
    return 0


def _names(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; ``"none"`` -> ``()`` (validated by ``TwinConfig``)."""
    if text.strip() == "none":
        return ()
    return tuple(x.strip() for x in text.split(","))
