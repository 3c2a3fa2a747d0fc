"""Size and write time of a record's observation table (``docs/replay.md``).

A recorder (``coupler.core.recorder.ZarrRecorder``, default ``RecordOptions``) writes a
``make run``-like record (337 cells, daily steps, 730 steps) with one Assimilate
request per day: daily-mean latent heat flux at a random half of the cells (values uniform in
0..200 W m-2, so they do not compress). Prints the observations, the bytes of ``observations/``
and its object count.

    .venv/bin/python examples/observation_table_size.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from coupler.core import checkpoint
from coupler.core.recorder import ZarrRecorder
from coupler.spec import GridSpec, SessionSpec
from coupler.spec.observations import ObservationBatch, parse
from emulators import variables as V

CELLS, STEPS = 337, 730


def main() -> None:
    rng = np.random.default_rng(0)
    grid = GridSpec(lat=rng.uniform(-60.0, 75.0, CELLS), lon=rng.uniform(-180.0, 180.0, CELLS))
    start = np.datetime64("2015-01-01T00:00:00", "s")
    cfg = SessionSpec(grid=grid, start=start, timestep=86_400, outputs=("hfls",),
                      land_cover="grass")  # fmt: skip
    blob = checkpoint.to_bytes(checkpoint.CheckpointData("s", "o", cfg, {"name": "x"}, 0, {}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rank0.zarr"
        recorder = ZarrRecorder(str(path), cfg, {"name": "x"}, start=blob)
        t0, n_obs = time.perf_counter(), 0
        for step in range(STEPS):
            if step:
                seen = rng.uniform(size=CELLS) < 0.5
                n = int(seen.sum())
                day = start + np.timedelta64(step - 1, "D")
                batch = ObservationBatch("hfls", rng.uniform(0.0, 200.0, n), np.full(n, 10.0),
                                         grid.lat[seen], grid.lon[seen], [day] * n)  # fmt: skip
                recorder.observations(step, step - 1, [parse(batch)], ["W m-2"])
                n_obs += n
            forcing = {k: rng.uniform(150.0, 300.0, CELLS) for k in V.REQUIRED_FORCING}
            recorder.record(step, forcing, {"hfls": rng.uniform(0.0, 200.0, CELLS)})
        recorder.close()
        seconds = time.perf_counter() - t0
        files = [p for p in (path / "observations").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    print(f"{n_obs} observations in {STEPS - 1} requests: observations/ {size} bytes "
          f"({size / n_obs:.1f} B per observation, 40 B raw), {len(files)} objects; "
          f"recording took {seconds:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
