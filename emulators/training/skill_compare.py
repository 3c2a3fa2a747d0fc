"""Held-out rows of several flux emulators side by side: which rows each meets, what a candidate
gains and loses against the first, and which rows every one of them misses.

A row is a (source, start, window, variable) skill record of LE or H (``skill_gaps``: the
pooled rows are not counted), meeting issue 14's targets when NSE ≥ 0.97 and KGE ≥ 0.95. Rows
missed by every network whose mean errors share one sign are what retraining with another seed,
or averaging seeds, does not move: the recipe's misses, not the seed's (docs/emulators.md,
"Other seeds and an ensemble of seeds").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulators.training.skill_gaps import held_out_rows, meets

#: (source, start, window, variable)
Key = tuple[str, str, str, str]


def rows(
    records: Sequence[Mapping[str, Any]], variables: Sequence[str] = ("hfls", "hfss")
) -> dict[Key, Mapping[str, Any]]:
    """The held-out rows of skill ``records`` (``skill_gaps.held_out_rows``) by key (continuous
    records: start "continuous", window "whole")."""
    return {
        (r["source"], r.get("start", "continuous"), r.get("window", "whole"), r["variable"]): r
        for r in held_out_rows(records, variables)
    }


@dataclass(frozen=True)
class Comparison:
    """Rows meeting both targets per network; the rows a network gains and loses against the
    first; the rows every network misses, and those of them with one sign of mean error in all."""

    labels: tuple[str, ...]
    total: int
    meeting: dict[str, int]
    gained: dict[str, list[Key]]
    lost: dict[str, list[Key]]
    missed_by_all: list[Key]
    one_sign: list[Key]


def compare(named: Mapping[str, Sequence[Mapping[str, Any]]]) -> Comparison:
    """Compare the skill records of the networks in ``named`` (label -> records; the first is
    the base). Every network must have the same rows (the same held-out protocol)."""
    if len(named) < 2:
        raise ValueError(f"compare: need at least two networks, got {len(named)}")
    by = {label: rows(records) for label, records in named.items()}
    labels = tuple(by)
    base = by[labels[0]]
    if not base:
        raise ValueError(f"compare: {labels[0]} has no held-out LE/H rows")
    for label in labels[1:]:
        if set(by[label]) != set(base):
            extra = sorted(set(by[label]) ^ set(base))[:3]
            raise ValueError(
                f"compare: {label} has other held-out rows than {labels[0]} (e.g. {extra}): "
                "evaluated with another protocol"
            )
    keys = sorted(base)
    missed = [k for k in keys if not any(meets(by[label][k]) for label in labels)]
    signs = [
        {(by[label][k]["bias"] > 0) - (by[label][k]["bias"] < 0) for label in labels}
        for k in missed
    ]
    return Comparison(
        labels=labels,
        total=len(keys),
        meeting={label: sum(meets(by[label][k]) for k in keys) for label in labels},
        gained={
            label: [k for k in keys if meets(by[label][k]) and not meets(base[k])]
            for label in labels[1:]
        },
        lost={
            label: [k for k in keys if meets(base[k]) and not meets(by[label][k])]
            for label in labels[1:]
        },
        missed_by_all=missed,
        one_sign=[k for k, s in zip(missed, signs, strict=True) if len(s) == 1 and 0 not in s],
    )


def markdown(c: Comparison) -> str:
    """The comparison as a table, a sentence and the lists of rows missed by all, gained, lost."""
    base = c.labels[0]
    lines = [
        f"| network | rows meeting both (of {c.total}) | gained / lost against {base} |",
        "|---|---:|---:|",
        f"| {base} | {c.meeting[base]} | – |",
        *(
            f"| {label} | {c.meeting[label]} | {len(c.gained[label])} / {len(c.lost[label])} |"
            for label in c.labels[1:]
        ),
        "",
        f"Missed by every network: {len(c.missed_by_all)} rows, {len(c.one_sign)} of them with a "
        "mean error of one sign in all.",
    ]
    if c.missed_by_all:
        mixed = set(c.missed_by_all) - set(c.one_sign)
        lines.append(
            "missed by every network: "
            + "; ".join(
                " / ".join(k) + (" (signs differ)" if k in mixed else "") for k in c.missed_by_all
            )
        )
    for label in c.labels[1:]:
        for what, keys in (("gained", c.gained[label]), ("lost", c.lost[label])):
            if keys:
                lines.append(f"{label} {what}: " + "; ".join(" / ".join(k) for k in keys))
    return "\n".join(lines)
