"""Skill from step 0: the flux emulator where sessions start (issue 14, item 1).

Two starts per held-out source, each split into the first 48 h and the rest:

* **fresh** — a new session: the reference model and the emulator both from the backends' initial
  state (``landstep.initial_state``: soil water at 3/4 of capacity, skin and soil temperatures
  from latitude, no spin-up), the emulator's recurrent state (h, c) at zero. Reference
  trajectories without spin-up (``SourceSpec(spinup_days=0)``) of :data:`COLD_DAYS` days from
  :data:`STARTS_PER_SOURCE` dates spread over the record (:func:`fresh_specs`).
* **resumed** — a session resumed from a state that carries no recurrent state of this emulator
  (a reference-model state after its 60-day spin-up, e.g. a checkpoint written by another backend
  or a state remapped outside the emulator): the emulator from the reference's physical state with
  h, c at zero, at the same dates of the spun-up record, :data:`COLD_DAYS` days each.

A checkpoint of the emulator backend itself keeps ``lstm_h``/``lstm_c`` and resumes bitwise as if
never interrupted (the backend contract tests), so its skill after a resume is the continuous
run's. The continuous whole-record rollout of ``evaluate.evaluate_flux`` is reported beside these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators.compiled.open_water import OpenWater
from emulators.training.batch import Batch, rollout
from emulators.training.data import SourceSpec, load_forcing, simulate

COLD_DAYS = 7
STARTS_PER_SOURCE = 4
FIRST_HOURS = 48
WINDOWS = ("first 48 h", "after 48 h", "whole")


def steps_per_day(timestep: int) -> int:
    """Steps of ``timestep`` seconds in a day (1 at steps of a day or longer)."""
    return max(1, 86_400 // timestep)


def first_steps(timestep: int) -> int:
    """Steps in the first window of a start: 48 h, or the first 2 days at daily steps."""
    return FIRST_HOURS * 3600 // timestep if timestep < 86_400 else 2


def record_days(spec: SourceSpec, timestep: int) -> int:
    """Days in ``spec``'s forcing record at ``timestep``."""
    if spec.source == "synthetic":
        return spec.days
    return int(load_forcing(spec, timestep).sizes["time"]) // steps_per_day(timestep)


def start_days(days: int, starts: int = STARTS_PER_SOURCE, length: int = COLD_DAYS) -> list[int]:
    """``starts`` start days evenly over a record of ``days`` days (each followed by ``length``)."""
    room = days - length
    if room < 0:
        raise ValueError(f"record of {days} days is shorter than a {length}-day start")
    return sorted({round(i * room / starts) for i in range(starts)})


def fresh_specs(
    spec: SourceSpec, offsets: Sequence[int], length: int = COLD_DAYS
) -> tuple[SourceSpec, ...]:
    """``spec`` without spin-up, recorded for ``length`` days from each offset (days)."""
    return tuple(
        dataclasses.replace(spec, spinup_days=0, offset_days=int(o), record_days=length)
        for o in offsets
    )


def time_slice(batch: Batch, start: int, steps: int) -> Batch:
    """Steps ``start`` .. ``start + steps`` of ``batch`` (every row)."""
    sl = slice(start, start + steps)
    return dataclasses.replace(
        batch,
        forcing={k: v[sl] for k, v in batch.forcing.items()},
        state={k: v[sl] for k, v in batch.state.items()},
        outputs={k: v[sl] for k, v in batch.outputs.items()},
        doy=batch.doy[sl],
        sod=batch.sod[sl],
    )


Arrays = dict[str, np.ndarray]
#: (emulator, reference) arrays of the same variables
Pair = tuple[Arrays, Arrays]


def split(
    pairs: Sequence[tuple[Arrays, Arrays]], first: int, variables: Sequence[str]
) -> dict[str, tuple[Arrays, Arrays]]:
    """window (:data:`WINDOWS`) -> (emulator, reference) arrays of ``variables``, flattened over
    rows and the runs in ``pairs`` (each a (time, row) (emulator, reference) pair from one
    start); the first window is the first ``first`` steps of each run."""
    slices = dict(zip(WINDOWS, (slice(0, first), slice(first, None), slice(None)), strict=True))
    return {
        window: (
            {v: np.concatenate([p[0][v][sl].reshape(-1) for p in pairs]) for v in variables},
            {v: np.concatenate([p[1][v][sl].reshape(-1) for p in pairs]) for v in variables},
        )
        for window, sl in slices.items()
    }


def starts(
    net: Callable[..., object],
    hidden: int,
    c_width: int,
    spec: SourceSpec,
    timestep: int,
    variables: Sequence[str],
    cache: Path | None,
    progress: bool = False,
    continuous: Batch | None = None,
    water: OpenWater | None = None,
    spin_up: int = 0,
) -> dict[tuple[str, str], tuple[Arrays, Arrays]]:
    """(start, window) -> (emulator, reference) arrays of ``variables`` (flattened over rows and
    the start dates): ``fresh`` and, with the spun-up ``continuous`` batch, ``resumed``; windows
    :data:`WINDOWS`; ``water``: the water rows from physics, ``spin_up``: the recurrent
    state's spin-up (``batch.rollout``)."""
    per_day, first = steps_per_day(timestep), first_steps(timestep)
    offsets = start_days(record_days(spec, timestep))
    cases: list[tuple[str, list[Batch]]] = [
        (
            "fresh",
            [
                Batch.of([simulate(s, timestep, progress=progress, cache=cache)], torch.float64)
                for s in fresh_specs(spec, offsets)
            ],
        )
    ]
    if continuous is not None:
        length = COLD_DAYS * per_day
        resumed = [o * per_day for o in offsets if o * per_day + length <= continuous.steps]
        cases.append(("resumed", [time_slice(continuous, o, length) for o in resumed]))
    out: dict[tuple[str, str], tuple[Arrays, Arrays]] = {}
    for case, batches in cases:
        pairs = []
        for batch in batches:
            with torch.no_grad():
                res = rollout(
                    net,  # type: ignore[arg-type]
                    batch,
                    hidden,
                    fields=variables,
                    c_width=c_width,
                    water=water,
                    spin_up=spin_up,
                )
            pairs.append(
                (
                    {k: res[k].numpy() for k in variables},
                    {k: batch.outputs[k].numpy() for k in variables},
                )
            )
        for window, found in split(pairs, first, variables).items():
            out[(case, window)] = found
    return out


def summary(
    records: Sequence[Mapping[str, Any]], variables: Sequence[str] = ("hfls", "hfss")
) -> str:
    """Markdown: per source, NSE/KGE of ``variables`` over the continuous record and the fresh
    and resumed starts, first 48 h vs the rest (empty when the records have no starts)."""
    if not any("start" in r for r in records):
        return ""
    cols = [("continuous", "whole")] + [
        (s, w) for s in ("fresh", "resumed") for w in ("first 48 h", "after 48 h")
    ]
    index = {
        (r["source"], r.get("start", "continuous"), r.get("window", "whole"), r["variable"]): r
        for r in records
        if "variable" in r
    }
    sources = list(dict.fromkeys(r["source"] for r in records if "variable" in r))
    head = "| source | variable | " + " | ".join(f"{s} {w}" for s, w in cols) + " |"
    lines = [head, "|---|---|" + "---:|" * len(cols)]
    for src in sources:
        for v in variables:
            cells = []
            for s, w in cols:
                r = index.get((src, s, w, v))
                cells.append("–" if r is None else f"{r['nse']:.3f} / {r['kge']:.3f}")
            lines.append(f"| {src} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
