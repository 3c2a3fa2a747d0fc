"""Compare the held-out flux skill of emulators from their ``skill.json`` reports (written by
``landcoupler emulators evaluate`` / ``train``): the tables of docs/emulators.md.

    python -m emulators.training.compare shipped=out/shipped/report/skill.json \\
        D=out/candD/report-flux-lstm/skill.json            # per column: targets met, pooled, worst
    python -m emulators.training.compare --per-source OLD.json NEW.json   # old → new per source

Targets are issue 14's: NSE ≥ 0.97 and KGE ≥ 0.95 for LE and H, per held-out source, over the
continuous record and the first 48 h of fresh and resumed sessions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

NSE_TARGET, KGE_TARGET = 0.97, 0.95
POOLED = "all held-out"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("continuous", "whole"),
    ("fresh", "first 48 h"),
    ("resumed", "first 48 h"),
    ("fresh", "after 48 h"),
    ("resumed", "after 48 h"),
)
VARIABLES: tuple[tuple[str, str], ...] = (("hfls", "LE"), ("hfss", "H"))
Key = tuple[str, str, str, str]  # source, start, window, variable


def load(path: str | Path) -> dict[Key, dict[str, Any]]:
    """The records of a ``skill.json`` by (source, start, window, variable); the continuous
    whole-record rows have no start or window in the file."""
    out: dict[Key, dict[str, Any]] = {}
    for r in json.loads(Path(path).read_text())["skill"]:
        if "variable" in r:
            out[
                (r["source"], r.get("start", "continuous"), r.get("window", "whole"), r["variable"])
            ] = r
    return out


def meets(record: Mapping[str, Any]) -> bool:
    return bool(record["nse"] >= NSE_TARGET and record["kge"] >= KGE_TARGET)


def summary_rows(named: Sequence[tuple[str, Mapping[Key, Mapping[str, Any]]]]) -> list[str]:
    """Markdown rows: per network and variable, per column, sources meeting both targets (of
    the sources in that column), pooled NSE/KGE and the worst source's NSE."""
    head = "| network | variable | " + " | ".join(f"{s} {w}" for s, w in COLUMNS) + " |"
    rows = [head, "|---|---|" + "---:|" * len(COLUMNS)]
    for name, skill in named:
        for var, label in VARIABLES:
            cells = []
            for start, window in COLUMNS:
                per = [
                    r for k, r in skill.items() if k[1:] == (start, window, var) and k[0] != POOLED
                ]
                if not per:
                    cells.append("–")
                    continue
                pooled = skill.get((POOLED, start, window, var))
                p = f"{pooled['nse']:.3f}/{pooled['kge']:.3f}" if pooled else "–"
                worst = min(r["nse"] for r in per)
                cells.append(f"{sum(map(meets, per))}/{len(per)}; {p}; min {worst:.3f}")
            rows.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return rows


def _cell(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "–"
    text = f"{record['nse']:.3f} / {record['kge']:.3f}"
    return text if meets(record) else f"**{text}**"


def per_source_tables(
    old: Mapping[Key, Mapping[str, Any]], new: Mapping[Key, Mapping[str, Any]], names: str
) -> list[str]:
    """Markdown: per variable, per source, ``old → new`` NSE / KGE in every column (bold:
    below a target); ``names`` heads the tables, e.g. "shipped → candidate D"."""
    sources = list(dict.fromkeys(k[0] for k in new))
    lines: list[str] = []
    for var, label in VARIABLES:
        lines += ["", f"{label}: NSE / KGE, {names}", ""]
        lines.append("| source | " + " | ".join(f"{s} {w}" for s, w in COLUMNS) + " |")
        lines.append("|---|" + "---:|" * len(COLUMNS))
        for src in sources:
            cells = [
                f"{_cell(old.get((src, s, w, var)))} → {_cell(new.get((src, s, w, var)))}"
                for s, w in COLUMNS
            ]
            lines.append(f"| {src} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.training.compare")
    parser.add_argument("reports", nargs="+", help="NAME=skill.json (or OLD NEW with --per-source)")
    parser.add_argument("--per-source", action="store_true", help="old → new per source")
    args = parser.parse_args(argv)
    if args.per_source:
        if len(args.reports) != 2:
            parser.error("--per-source takes exactly two reports: OLD NEW")
        old, new = (load(p.split("=", 1)[-1]) for p in args.reports)
        print("\n".join(per_source_tables(old, new, "old → new")))
        return 0
    named = []
    for item in args.reports:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: expected NAME=path/to/skill.json")
        named.append((name, load(path)))
    print("\n".join(summary_rows(named)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
