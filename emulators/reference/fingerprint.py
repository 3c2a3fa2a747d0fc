"""A fingerprint of the reference model's physics: which teacher a trajectory or an emulator
came from.

Emulators learn from trajectories of the reference model, and trajectories are cached by their
source's spec. A change of the reference's physics (the roughness floor of 2026-12-06 was one:
2-m station wind over tall trees) then leaves every cached trajectory and every artifact trained
on them describing a model that no longer exists, silently: the cache key does not change, and
an artifact's manifest said nothing about its teacher. :func:`fingerprint` is a short hash of
what the reference computes on a fixed probe, so

- cached trajectories are keyed by it (``training.data.simulate``): after a physics change they
  are simulated again instead of read;
- ``landcoupler emulators train`` records it in the manifest (``training.reference_fingerprint``)
  and ``landcoupler emulators evaluate`` says when the artifact's teacher is not today's
  reference;
- a test checks every shipped artifact against it.

The probe: 4 cells (tropical to boreal, by latitude and a temperature offset) × all 8 tiles ×
two measurement heights (10 m, and 2 m, where wind over tall trees needs the roughness floor),
48 hourly steps of an analytic diurnal forcing with a rain shower, then 3 daily steps (daily
phenology); every state and tile output of every step is hashed. Values are rounded to 15 bits
of mantissa (≈ 5 significant digits) first, so last-bit differences between CPUs' vector paths
do not change the fingerprint while any change of the physics that matters to training does.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from emulators import parameters as P
from emulators.protocol import LandStatic, StepClock

#: latitude [°N] and air-temperature offset [K] of the probe's cells
CELLS: tuple[tuple[float, float], ...] = ((5.0, 10.0), (-30.0, 6.0), (45.0, 0.0), (65.0, -6.0))
#: measurement heights of wind and temperature [m]
HEIGHTS: tuple[float, ...] = (10.0, 2.0)
HOURS = 48
DAYS = 3
#: mantissa bits kept of each float32 value before hashing
MANTISSA_BITS = 15


def _forcing(step: int, dt: float) -> dict[str, torch.Tensor]:
    """Forcing (1, cell) of probe step ``step`` (of ``dt`` seconds): a clear-sky diurnal cycle
    (hourly) or daily means (daily), a shower in hours 30-32."""
    offsets = torch.tensor([t for _, t in CELLS], dtype=torch.float64)
    if dt < 86_400:
        hour = step % 24
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 12))
        rsds, tas = 850.0 * sun, 287.0 + 7.0 * math.sin(math.pi * (hour - 9) / 12)
        pr = 8e-4 if 30 <= step <= 32 else 0.0
    else:
        rsds, tas, pr = 240.0, 290.0 - 2.0 * step, 3e-5 * (step == 1)
    n = len(CELLS)

    def full(v: float) -> torch.Tensor:
        return torch.full((1, n), v, dtype=torch.float64)

    return {
        "tas": full(tas) + offsets,
        "huss": full(0.0075),
        "ps": full(100_500.0),
        "sfcWind": full(3.5),
        "pr": full(pr),
        "rsds": full(rsds),
        "rlds": full(330.0) + 2.0 * offsets,
    }


def _quantised(t: torch.Tensor) -> bytes:
    """``t`` as float32 with its mantissa rounded to :data:`MANTISSA_BITS` bits."""
    bits = 23 - MANTISSA_BITS
    a = np.ascontiguousarray(t.detach().to(torch.float32).numpy()).view(np.int32)
    return ((a + (1 << (bits - 1))) & ~((1 << bits) - 1)).tobytes()


def compute() -> str:
    """The fingerprint computed now (:func:`fingerprint` caches it per process)."""
    from emulators.reference.model import ReferenceBackend, ReferenceConfig

    lat = torch.tensor([c for c, _ in CELLS], dtype=torch.float64)
    cover = torch.full((len(CELLS), P.N_CLASSES), 1.0 / P.N_CLASSES, dtype=torch.float64)
    static = LandStatic.from_cover(lat, lat * 2.0, cover)
    h = hashlib.sha256()
    for height in HEIGHTS:
        backend = ReferenceBackend(ReferenceConfig(height_wind=height, height_temperature=height))
        for dt, steps in ((3600.0, HOURS), (86_400.0, DAYS)):
            clock = StepClock(0, np.datetime64("2001-05-01T00:00:00"), dt)
            state = backend.initial_state(static, clock)
            for i in range(steps):
                state, tiles = backend.step_tiles(state, static, _forcing(i, dt), clock)
                for name in sorted(tiles):
                    h.update(name.encode() + _quantised(tiles[name]))
                for name in sorted(state.tensors):
                    h.update(name.encode() + _quantised(state.tensors[name]))
                clock = clock.advance()
    return h.hexdigest()[:16]


@functools.cache
def fingerprint() -> str:
    """16 hex digits identifying the reference model's physics (module docstring)."""
    return compute()


def teacher(training: Mapping[str, Any]) -> str | None:
    """What a manifest's ``training`` record says about its teacher, for the CLI: None for an
    artifact not trained on reference trajectories (no ``sources``), else one line naming the
    recorded fingerprint and today's, with a warning when they differ or none was recorded."""
    if "sources" not in training:
        return None
    recorded, today = training.get("reference_fingerprint"), fingerprint()
    if recorded == today:
        return f"teacher: the reference model of today (fingerprint {today})"
    if recorded is None:
        said = "its manifest records no reference fingerprint (trained before they were kept)"
    else:
        said = f"trained against reference fingerprint {recorded}"
    return (
        f"WARNING: {said}; today's reference is {today}: its skill is against today's "
        "reference, but it learned from another; retrain it (`landcoupler emulators train`)"
    )
