"""``landcoupler replay RECORD_URL``: re-drive a backend from a record, in-process (no server).

Same backend and artifacts as recorded: bitwise mode (exit 1 if any output differs, naming the
first step/field/cell). Another backend (``--backend``): A/B mode, skill against the record.
``--report DIR`` writes JSON + Markdown + PNG; ``--json`` prints the summary JSON.
"""

from __future__ import annotations

import argparse
import json
import sys


def _steps(value: str) -> tuple[int, int | None]:
    """``a:b``, ``a:``, ``:b`` -> (a, b); b None = to the end."""
    head, sep, tail = value.partition(":")
    try:
        a = int(head) if head else 0
        b = int(tail) if tail else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a:b step indices, got {value!r}") from None
    if not sep or a < 0 or (b is not None and b < a):
        raise argparse.ArgumentTypeError(f"expected a:b with 0 <= a <= b, got {value!r}")
    return a, b


def _ranks(value: str) -> list[int]:
    try:
        ranks = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ranks like 0,1, got {value!r}") from None
    if not ranks or min(ranks) < 0:
        raise argparse.ArgumentTypeError(f"expected ranks like 0,1, got {value!r}")
    return ranks


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes >= 1, got {value!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a Zarr record on a backend: bitwise check or A/B skill report",
        description="Re-creates each rank's session from the record (start state inside it) and "
        "drives the backend with the recorded forcing in-process. RECORD_URL is any fsspec URL "
        "of one rank's record or of a run directory holding rank<r>.zarr (see docs/replay.md).",
    )
    p.add_argument("record", metavar="RECORD_URL")
    p.add_argument("--backend", help="backend to replay on (default: the recorded one)")
    p.add_argument("--steps", type=_steps, default=(0, None), help="a:b step range [a, b)")
    p.add_argument("--ranks", type=_ranks, default=None, help="comma-separated ranks (all)")
    p.add_argument(
        "--workers", type=_workers, default=None, metavar="N",
        help="replay the ranks in N processes (default: min(ranks, cores); 1: serially)",
    )  # fmt: skip
    p.add_argument("--report", metavar="DIR", help="write replay.json/.md and PNGs here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from coupler.errors import CouplerError
    from coupler.replay import open_run, replay, report

    try:
        sources = open_run(args.record, args.ranks)
        total = sum(
            min(s.n_steps, args.steps[1] or s.n_steps) - args.steps[0] for s in sources
        )  # fmt: skip
        with tqdm(total=max(total, 0), unit="step", disable=args.no_progress,
                  file=sys.stderr, desc="replay") as bar:  # fmt: skip
            result = replay(sources, backend=args.backend, steps=args.steps,
                            progress=bar.update, workers=args.workers)  # fmt: skip
    except CouplerError as exc:
        print(f"landcoupler replay: error: {exc}", file=sys.stderr)
        return 2
    result.record = args.record
    for line in result.truncated + result.observations.get("ignored", []):
        print(f"landcoupler replay: warning: {line}", file=sys.stderr)
    summary = result.to_dict()
    if args.report:
        summary["report"] = report.write(result, args.report)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print(summary)
    return 1 if result.mode == "bitwise" and not result.bitwise_equal else 0


def _print(summary: dict) -> None:
    first = summary["first_difference"]
    print(f"replay of {summary['record']}: {summary['mode']} mode, backend {summary['backend']}, "
          f"steps {summary['steps'][0]}..{summary['steps'][1] - 1}, ranks {summary['ranks']}, "
          f"{summary['steps_per_second']:.1f} steps/s")  # fmt: skip
    print(f"  bitwise equal: {summary['bitwise_equal']}")
    obs = summary.get("observations", {})
    if obs.get("requests"):
        print(f"  observation requests re-sent: {obs['requests']} ({obs['observations']} "
              "observations)")  # fmt: skip
    if first is not None:
        print(f"  first difference: rank {first['rank']} step {first['step']} field "
              f"{first['field']} cell {first['cell']}: recorded {first['recorded']!r}, "
              f"replayed {first['replayed']!r}")  # fmt: skip
    for row in summary["skill"]:
        print(f"  {row['variable']:>10}: rmse {row['rmse']:.4g}  r {row['pearson_r']}  "
              f"kge {row['kge']}")  # fmt: skip
    for path in summary.get("report", {}).values():
        print(f"  {path}")
