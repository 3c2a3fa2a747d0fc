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
phenology); every state and tile output of every step.

**Recorded, not hashed live** (2026-12-07). The first version hashed the probe's values rounded
to 15 bits of mantissa, meant to ignore last-bit differences between machines. It did not: a
hash of rounded values changes whenever one value crosses a rounding boundary, and a relative
change of 1e-13 in one forcing field did that (tested), so two machines computed two
fingerprints for the same code (0f1a7b4c1b2fe8b4 where the artifacts were trained,
dc6e221e80057fe3 on the next machine). Now the probe's values are recorded in
``probe.npz`` (float32, beside this module) and the fingerprint is the hash of that file's
arrays: the same on every machine. The reference is compared with the record within
:data:`TOLERANCE` (relative to each field's largest magnitude): last-bit differences amplified
over the probe's steps are far inside it (1e-11 relative forcing changes: tested), any change of
the physics that matters to training far outside (a 1 % change of von Kármán's constant, the
roughness floor: tested). Where the reference no longer reproduces the record,
:func:`fingerprint` is a hash of the probe computed now, prefixed ``x`` (so caches and manifests
of the recorded teacher no longer match) until the record is written again
(``python -m emulators.reference.fingerprint --write``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
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
#: the recorded probe (``python -m emulators.reference.fingerprint --write``)
RECORD = Path(__file__).with_name("probe.npz")
#: largest deviation from the record, relative to each field's largest magnitude, that still
#: counts as the recorded reference
TOLERANCE = 1e-5


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


def probe() -> dict[str, np.ndarray]:
    """The probe's values computed now: ``{height}m/{dt}s/{name}`` → float32 (step, ...)."""
    from emulators.reference.model import ReferenceBackend, ReferenceConfig

    lat = torch.tensor([c for c, _ in CELLS], dtype=torch.float64)
    cover = torch.full((len(CELLS), P.N_CLASSES), 1.0 / P.N_CLASSES, dtype=torch.float64)
    static = LandStatic.from_cover(lat, lat * 2.0, cover)
    out: dict[str, list[np.ndarray]] = {}
    for height in HEIGHTS:
        backend = ReferenceBackend(ReferenceConfig(height_wind=height, height_temperature=height))
        for dt, steps in ((3600.0, HOURS), (86_400.0, DAYS)):
            clock = StepClock(0, np.datetime64("2001-05-01T00:00:00"), dt)
            state = backend.initial_state(static, clock)
            for i in range(steps):
                state, tiles = backend.step_tiles(state, static, _forcing(i, dt), clock)
                for kind, fields in (("tile", tiles), ("state", state.tensors)):
                    for name, value in fields.items():
                        key = f"{height:g}m/{dt:g}s/{kind}/{name}"
                        out.setdefault(key, []).append(value.detach().to(torch.float32).numpy())
                clock = clock.advance()
    return {k: np.stack(v) for k, v in sorted(out.items())}


def _digest(values: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(values):
        a = np.ascontiguousarray(values[name], dtype="<f4")
        h.update(f"{name}:{a.shape}".encode() + a.tobytes())
    return h.hexdigest()[:16]


def recorded() -> dict[str, np.ndarray]:
    """The recorded probe (:data:`RECORD`)."""
    with np.load(RECORD) as f:
        return {k: f[k] for k in f.files}


def deviation(now: Mapping[str, np.ndarray], record: Mapping[str, np.ndarray]) -> float:
    """Largest |now − record| over every field, relative to the field's largest magnitude in
    the record (inf where the fields or shapes differ)."""
    if set(now) != set(record):
        return math.inf
    worst = 0.0
    for name, want in record.items():
        got = now[name]
        if got.shape != want.shape:
            return math.inf
        scale = max(float(np.abs(want).max()), 1e-30)
        worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()) / scale)
    return worst


def compute() -> str:
    """The fingerprint computed now (:func:`fingerprint` caches it per process): the record's
    hash if the reference reproduces it within :data:`TOLERANCE`, else ``x`` + the hash of the
    probe computed now."""
    now, record = probe(), recorded()
    if deviation(now, record) <= TOLERANCE:
        return _digest(record)
    return "x" + _digest(now)[1:]


def write(path: Path = RECORD) -> str:
    """Record the probe as the reference computes it now; returns the new fingerprint."""
    values = probe()
    np.savez_compressed(path, **values)  # type: ignore[arg-type]
    fingerprint.cache_clear()
    return _digest(values)


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


def main(argv: list[str] | None = None) -> int:
    """``python -m emulators.reference.fingerprint [--write]``: print the fingerprint and the
    deviation from the record; ``--write`` records the probe anew (after a physics change)."""
    parser = argparse.ArgumentParser(prog="python -m emulators.reference.fingerprint")
    parser.add_argument("--write", action="store_true", help="record the probe anew")
    args = parser.parse_args(argv)
    if args.write:
        print(f"recorded {RECORD}: fingerprint {write()}")
        return 0
    worst = deviation(probe(), recorded())
    print(f"fingerprint {fingerprint()}; deviation from the record {worst:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
