"""``landcoupler bench TARGET``: run a benchmark, write JSON, update docs/benchmarks.md."""

from __future__ import annotations

import argparse
import importlib
import os

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
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (writes JSON, updates docs/benchmarks.md)")
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument(
        "--update-doc",
        default=None,
        metavar="MD",
        help="replace this benchmark's section of a Markdown file",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coupler.bench import doc

    module = importlib.import_module(TARGETS[args.target])
    load_before = os.getloadavg()[0]
    payload = module.run()
    m = doc.machine()
    payload["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    payload["machine"] = (
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['date']}, 1-min load average "
        f"{load_before:.1f} before / {payload['load_average']['after']:.1f} after "
        "(other processes; ≈0 on a quiet machine)"
    )
    md = module.markdown(payload)
    print(md)
    if args.json:
        print(f"json: {doc.write_json(args.json, payload)}")
    if args.update_doc:
        print(f"updated: {doc.update_section(args.update_doc, args.target, md)}")
    return 0
