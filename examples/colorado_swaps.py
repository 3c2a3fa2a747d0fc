"""Which field puts NSRDB PSM3 Colorado outside a flux emulator's training weather: move one
field (or several) towards the sea-level training cells, re-run the reference model over the
year and run the emulator free on it; prints LE and H NSE / KGE per change. Diagnosis only (the
changed forcing is no source); each change re-runs the reference (1.5-6 min on a loaded 2-core
machine).

    python examples/colorado_swaps.py [ARTIFACT.ts] [HIDDEN] [CHANGE ...]

CHANGE: ``none`` or ``+``-joined parts: ``ps`` (1013 hPa, same vapour pressure), ``rh``
(relative humidity + 0.15), ``rlds`` (+ 40 W m-2), ``warm`` (+ 8 K, same RH), ``sw`` (rsds x 0.8),
``wind`` (x 1.5). Defaults: emulators/artifacts/flux_lstm/flux_lstm.ts, 32, none ps ps+rh
ps+rlds ps+warm.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from emulators.forcing import _derive as FD
from emulators.metrics import kge, nse
from emulators.training import data as D
from emulators.training.batch import Batch, rollout
from emulators.training.evaluate import NEW_REAL_HELD_OUT


def changed(parts: set[str]) -> Callable[..., xr.Dataset]:
    original = D.load_forcing

    def load(spec: D.SourceSpec, timestep: int = 3600) -> xr.Dataset:
        ds = original(spec, timestep).copy(deep=True)
        t, q, p = ds["tas"].values, ds["huss"].values, ds["ps"].values
        e = q * p / (0.622 + 0.378 * q)  # vapour pressure, Pa
        if "ps" in parts:
            ds["ps"].values[:] = 101300.0
            ds["huss"].values[:] = FD.specific_humidity(e, 101300.0)
        if "rh" in parts:
            es = FD.saturation_vapour_pressure(t - 273.15) * 1e3
            ds["huss"].values[:] = FD.specific_humidity(
                np.minimum(e + 0.15 * es, 0.97 * es), ds["ps"].values
            )
        if "rlds" in parts:
            ds["rlds"].values[:] = ds["rlds"].values + 40.0
        if "warm" in parts:
            ratio = FD.saturation_vapour_pressure(t + 8 - 273.15) / FD.saturation_vapour_pressure(
                t - 273.15
            )
            ds["tas"].values[:] = t + 8.0
            ds["huss"].values[:] = FD.specific_humidity(e * ratio, ds["ps"].values)
        if "sw" in parts:
            ds["rsds"].values[:] = ds["rsds"].values * 0.8
        if "wind" in parts:
            ds["sfcWind"].values[:] = ds["sfcWind"].values * 1.5
        return ds

    return load


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    path = argv[0] if argv else "emulators/artifacts/flux_lstm/flux_lstm.ts"
    hidden = int(argv[1]) if len(argv) > 1 else 32
    changes = argv[2:] or ["none", "ps", "ps+rh", "ps+rlds", "ps+warm"]
    spec = next(s for s in NEW_REAL_HELD_OUT if s.source == "psm3-colorado")
    net = torch.jit.load(path)
    original = D.load_forcing
    print("| change | LE NSE / KGE | H NSE / KGE |\n|---|---:|---:|")
    for change in changes:
        D.load_forcing = original if change == "none" else changed(set(change.split("+")))
        try:
            traj, _ = D.simulate(spec, 3600, progress=False).physical()
        finally:
            D.load_forcing = original
        batch = Batch.of([traj], torch.float64)
        with torch.no_grad():
            out = rollout(net, batch, hidden, fields=("hfls", "hfss"))
        cells = []
        for k in ("hfls", "hfss"):
            sim, ref = out[k].numpy(), batch.outputs[k].numpy()
            cells.append(f"{float(nse(sim, ref)):.3f} / {float(kge(sim, ref)):.3f}")
        print(f"| {change} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
