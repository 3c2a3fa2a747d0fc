"""Held-out skill of the ``hybrid`` backend (the reference model with the ``canopy-mlp`` network
in its canopy phase) against the reference model: the flux emulators' protocol
(``evaluate.evaluate_flux``), on the same held-out sources and starts.

* **continuous**: the backend runs free over each whole record from the reference's state at
  its first step (soil water, skin and soil temperatures of its own after that);
* **fresh**: from the backends' initial state, on the reference trajectories without spin-up
  (``coldstart.fresh_specs``), first 48 h vs the rest;
* **resumed**: from the spun-up reference state at the same dates, 7 days each.

As for the flux emulators, leaf carbon is the reference's at every step, so the figures measure
the fluxes; rows whose reference state left the valid range (``Trajectory.physical_rows``) are
left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators.manifest import Manifest
from emulators.protocol import LandState, StepClock
from emulators.reference.model import ReferenceBackend
from emulators.training import coldstart
from emulators.training.data import DEFAULT_CACHE, SourceSpec, Trajectory, setup, simulate
from emulators.training.evaluate import FLUX_VARIABLES, FluxSkill, flux_held_out

Arrays = coldstart.Arrays


def rollout(
    make: type[ReferenceBackend] | Any,
    spec: SourceSpec,
    traj: Trajectory,
    start: int | None,
    steps: int | None = None,
    timestep: int = 3600,
) -> Arrays:
    """(time, row) ``FLUX_VARIABLES`` of a backend built by ``make(config)`` over ``steps`` steps
    (None: to the end) of ``spec``'s forcing from step ``start`` of ``traj``'s recorded state
    (None: the backend's initial state, a fresh session), with ``traj``'s leaf carbon."""
    run = setup(spec, timestep)
    backend = make(run.config)
    first = 0 if start is None else start
    end = traj.steps if steps is None else first + steps
    k = traj.rows // run.n
    clock = StepClock(0, run.times[first], float(timestep))
    state = backend.initial_state(run.static, clock)

    def recorded(name: str, i: int) -> torch.Tensor:
        v = torch.as_tensor(np.asarray(traj.state[name][i], dtype=np.float64))
        return v.reshape(1, run.n, k, *v.shape[1:])

    if start is not None:
        state = LandState(
            {**state.tensors, **{n: recorded(n, start) for n in ("w", "ts", "tsoil", "cleaf")}}
        )
    out = {v: np.empty((end - first, traj.rows), np.float64) for v in FLUX_VARIABLES}
    for i in range(first, end):
        forcing = {name: a[i : i + 1] for name, a in run.arrays.items()}
        state, tiles = backend.step_tiles(state, run.static, forcing, clock)
        for v in FLUX_VARIABLES:
            out[v][i - first] = tiles[v][0].reshape(-1).numpy()
        if i + 1 < end:
            state = LandState({**state.tensors, "cleaf": recorded("cleaf", i + 1)})
        clock = clock.advance()
    return out


def _pairs(sim: Arrays, traj: Trajectory, first: int, steps: int) -> tuple[Arrays, Arrays]:
    keep = traj.physical_rows()
    ref = {v: traj.outputs[v][first : first + steps, keep].astype(np.float64) for v in sim}
    return {v: a[:, keep] for v, a in sim.items()}, ref


def starts(
    make: Any,
    spec: SourceSpec,
    traj: Trajectory,
    cache: Path | None,
    progress: bool,
    timestep: int = 3600,
) -> dict[tuple[str, str], tuple[Arrays, Arrays]]:
    """(start, window) -> (hybrid, reference) flattened arrays (``coldstart``'s starts at steps
    of ``timestep`` seconds: the first window is 48 h, or the first 2 days at daily steps)."""
    per_day, first = coldstart.steps_per_day(timestep), coldstart.first_steps(timestep)
    offsets = coldstart.start_days(coldstart.record_days(spec, timestep))
    length = coldstart.COLD_DAYS * per_day
    fresh = []
    for fs in coldstart.fresh_specs(spec, offsets):
        cold = simulate(fs, timestep, progress=progress, cache=cache)
        fresh.append(_pairs(rollout(make, fs, cold, None, timestep=timestep), cold, 0, cold.steps))
    resumed = [
        _pairs(rollout(make, spec, traj, o * per_day, length, timestep), traj, o * per_day, length)
        for o in offsets
        if o * per_day + length <= traj.steps
    ]
    return {
        (case, window): found
        for case, pairs in (("fresh", fresh), ("resumed", resumed))
        for window, found in coldstart.split(pairs, first, FLUX_VARIABLES).items()
    }


def evaluate_hybrid(
    directory: Path,
    out_dir: Path,
    cache: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    specs: Sequence[SourceSpec] | None = None,
    save: bool = True,
    make: Any = None,
    timestep: int = 3600,
) -> Manifest:
    """Held-out skill of the ``hybrid`` backend with the canopy artifact in ``directory``
    (module docstring) at land steps of ``timestep`` seconds (held-out sources:
    ``evaluate.flux_held_out(timestep)``, the daily flux emulator's at daily steps);
    ``make(config)`` builds the backend (default: ``HybridBackend`` on that artifact's
    TorchScript). Writes the report to ``out_dir`` and, when ``save``, the skill into the
    manifest (the network is trained on hourly steps; its manifest keeps the hourly skill)."""
    from emulators.compiled.hybrid import HybridBackend

    manifest = Manifest.load(directory)
    if make is None:

        def make(config: Any) -> HybridBackend:
            return HybridBackend(config, artifact=directory)

    held = FluxSkill()
    for spec in specs if specs is not None else flux_held_out(timestep):
        traj = simulate(spec, timestep, progress=progress, cache=cache)
        sim, ref = _pairs(rollout(make, spec, traj, 0, timestep=timestep), traj, 0, traj.steps)
        held.add(spec.label, sim, ref, starts(make, spec, traj, cache, progress, timestep))
    return held.write(
        manifest,
        directory,
        out_dir,
        f"hybrid backend ({manifest.name}) vs reference model (held-out, free-running)",
        "The reference model with its canopy phase from the network, free-running on "
        f"its own soil water and temperatures from the first step ({timestep:g} s steps), leaf "
        "carbon from the reference. Tables named '(fresh start, …)' and '(resumed start, …)' "
        "are the cold starts of `emulators.training.coldstart` (first 48 h, or the first 2 days "
        "at daily steps, vs the rest).",
        save=save,
    )
