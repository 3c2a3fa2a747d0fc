"""``landcoupler bench TARGET``: run a benchmark, write JSON, update docs/benchmarks.md;
``landcoupler bench summary``: the ratios against the floors from those JSON files (no run)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
from typing import Any

#: target name -> module in coupler.bench with ``run(**kw) -> dict`` and ``markdown(dict) -> str``
TARGETS = {
    "reference": "coupler.bench.reference",
    "emulators": "coupler.bench.emulators",
    "service": "coupler.bench.service",
    "assimilation": "coupler.bench.assimilation",
    "replay": "coupler.bench.replay",
    "triton": "coupler.bench.serving",
    "gpu": "coupler.bench.gpu",
    "wire": "coupler.bench.wire",
    "load": "coupler.bench.load",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (writes JSON, updates docs/benchmarks.md)")
    p.add_argument(
        "target",
        choices=[*sorted(TARGETS), "summary"],
        help="a benchmark to run, or 'summary': the ratios against the floors read from the "
        "JSON files in --dir (measures nothing)",
    )
    p.add_argument(
        "--dir",
        default="out",
        help="summary only: the folder of the bench-*.json files (default: out)",
    )
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument(
        "--update-doc",
        default=None,
        metavar="MD",
        help="replace this benchmark's section of a Markdown file",
    )
    p.add_argument(
        "--section",
        default=None,
        metavar="KEY",
        help="the marked section <!-- bench:KEY --> of --update-doc to replace (default: the "
        "target's name), e.g. to keep a short run beside the full one",
    )
    p.add_argument(
        "--set",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument of the target's run() (its default's type), e.g. "
        "--set sessions=20 --set steps=100 (bench load); repeatable",
    )
    p.set_defaults(func=run)


def _params(fn: Any, pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs as keyword arguments of ``fn``, converted to its defaults' types."""
    defaults = {
        n: p.default
        for n, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"--set {pair!r}: expected NAME=VALUE, NAME one of {sorted(defaults)}")
        default = defaults[name]
        if isinstance(default, bool):
            out[name] = text.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int | float):
            out[name] = type(default)(text)
        elif isinstance(default, tuple):
            out[name] = tuple(type(default[0])(v) for v in text.split(",")) if default else ()
        else:
            out[name] = text
    return out


def summary(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from coupler.bench import doc
    from coupler.bench import summary as s

    if args.params:
        raise ValueError(f"bench summary: --set {args.params[0]!r}: summary runs nothing")
    if not os.path.isdir(args.dir):
        raise FileNotFoundError(f"bench summary: --dir {args.dir!r} is not a folder")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = s.rows(args.dir)
    md = s.markdown(table, args.dir, generated)
    payload = s.to_json(table, args.dir, generated)
    doc.publish(md, payload, "summary", args.json, args.update_doc, first=True)
    return 0


def run(args: argparse.Namespace) -> int:
    from coupler.bench import doc

    if args.target == "summary":
        return summary(args)

    module = importlib.import_module(TARGETS[args.target])
    load_before = os.getloadavg()[0]
    payload = module.run(**_params(module.run, args.params))
    m = doc.machine()
    payload["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    payload["machine"] = (
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['date']}, 1-min load average "
        f"{load_before:.1f} before / {payload['load_average']['after']:.1f} after "
        "(other processes; ≈0 on a quiet machine)"
    )
    section = args.section or args.target
    doc.publish(module.markdown(payload), payload, section, args.json, args.update_doc)
    return 0
