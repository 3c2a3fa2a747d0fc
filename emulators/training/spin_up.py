"""How many network calls spin up a recurrent flux emulator's state at a start, chosen on the
artifact's *validation* sources (never on held-out ones), and written into its manifest
(``recurrent_state.spin_up``), where the backends and ``evaluate_flux`` read it.

A session starts its recurrent state at zero (``recurrent_state.initial``), a state the network
saw in training only at the start of its windows; the backends spin it up instead
(``compiled.flux_step.spin_up_state``): the network is called ``K`` times on the first step's
inputs held fixed. For each candidate ``K``, every validation source is rolled out from fresh
and resumed starts exactly as ``evaluate_flux`` scores held-out ones (``coldstart.starts``); the
score is the mean NSE of LE and H over {fresh, resumed} × {first 48 h, whole window}. The best
``K`` wins (the smaller one on a tie); the score of every candidate is kept in the manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emulators.manifest import Manifest
from emulators.metrics import nse
from emulators.training import coldstart
from emulators.training.batch import Batch
from emulators.training.data import DEFAULT_CACHE, SourceSpec, simulate
from emulators.training.evaluate import load_flux, served_water

#: the spin-up lengths tried (network calls)
CANDIDATES: tuple[int, ...] = (0, 1, 3, 10, 30, 100)
#: what the score averages: starts × windows × variables
STARTS, WINDOWS, VARIABLES = ("fresh", "resumed"), ("first 48 h", "whole"), ("hfls", "hfss")
CRITERION = (
    "mean NSE of hfls and hfss over fresh and resumed starts, first 48 h and whole windows, "
    "pooled over the validation sources"
)


def validation_specs(manifest: Manifest) -> list[SourceSpec]:
    """The validation sources recorded in a flux artifact's manifest (``training.validation``)."""
    specs = [SourceSpec.from_record(raw) for raw in manifest.training.get("validation", [])]
    if not specs:
        raise ValueError(f"{manifest.name}: the manifest lists no validation sources")
    return specs


def scores(
    directory: Path,
    candidates: Iterable[int] = CANDIDATES,
    cache: Path | None = DEFAULT_CACHE,
    progress: bool = True,
) -> dict[int, float]:
    """Candidate spin-up -> score (module docstring) of the TorchScript flux artifact in
    ``directory`` on its validation sources, with the water tile from physics as served."""
    flux = load_flux(directory)
    dt = int(flux.manifest.timestep_seconds)
    runs = []
    for spec in validation_specs(flux.manifest):
        batch = Batch.of([simulate(spec, dt, progress=progress, cache=cache)], torch.float64)
        runs.append((spec, batch, served_water(spec, dt)))
    out: dict[int, float] = {}
    for k in tqdm(list(candidates), desc=f"{flux.manifest.name} spin-up", disable=not progress):
        found: dict[tuple[str, str], list[coldstart.Pair]] = {}
        for spec, batch, water in runs:
            per = coldstart.starts(
                flux.net,
                flux.hidden,
                flux.c_width,
                spec,
                dt,
                VARIABLES,
                cache,
                continuous=batch,
                water=water,
                spin_up=k,
            )
            for key, pair in per.items():
                found.setdefault(key, []).append(pair)
        parts = [_pooled_nse(found[(s, w)], v) for s in STARTS for w in WINDOWS for v in VARIABLES]
        out[k] = float(np.mean(parts))
    return out


def _pooled_nse(pairs: Sequence[coldstart.Pair], var: str) -> float:
    sim = np.concatenate([p[0][var] for p in pairs])
    ref = np.concatenate([p[1][var] for p in pairs])
    return float(nse(sim, ref))


def best(found: dict[int, float]) -> int:
    """The candidate with the highest score; the smallest of equals."""
    top = max(found.values())
    return min(k for k, v in found.items() if v == top)


def select(
    directory: Path,
    candidates: Iterable[int] = CANDIDATES,
    cache: Path | None = DEFAULT_CACHE,
    progress: bool = True,
) -> Manifest:
    """Score ``candidates`` (:func:`scores`), write the best into the manifest's
    ``recurrent_state.spin_up`` with every score (``spin_up_selection``) and save it."""
    found = scores(directory, candidates, cache, progress)
    manifest = Manifest.load(directory)
    state = dict(manifest.recurrent_state)
    state["spin_up"] = best(found)
    state["spin_up_selection"] = {
        "criterion": CRITERION,
        "sources": [s.label for s in validation_specs(manifest)],
        "scores": {str(k): round(v, 6) for k, v in found.items()},
    }
    manifest = dataclasses.replace(manifest, recurrent_state=state)
    manifest.save(directory)
    return manifest
