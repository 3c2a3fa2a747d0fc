"""Where a flux emulator's held-out misses come from, by land-cover class: the emulator runs free
over each held-out source's whole record (as ``landcoupler emulators evaluate`` does: the water
tile from the reference's physics, ``open_water``; with ``--network-alone`` every tile from the
network) and LE and H NSE / KGE are printed over all tiles, over all but the water tile, and over
the water tile alone. Diagnosis only; the reference trajectories come from (or go to) the cache
directory.

    python examples/flux_skill_by_class.py [--network-alone] [ARTIFACT_DIR] [CACHE_DIR]

Defaults: emulators/artifacts/flux_lstm, out/emulators/data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from emulators import parameters as P
from emulators.compiled.open_water import OpenWater
from emulators.export import load_torchscript
from emulators.manifest import Manifest
from emulators.metrics import kge, nse
from emulators.training.batch import Batch, rollout
from emulators.training.data import load_forcing, reference_config, simulate
from emulators.training.evaluate import flux_held_out


def main(artifact: Path, cache: Path, network_alone: bool = False) -> None:
    manifest = Manifest.load(artifact)
    net = load_torchscript(manifest.artifact_path(artifact, "torchscript"))
    hidden = int(manifest.recurrent_state["hidden"])
    c_width = int(manifest.recurrent_state.get("c_width", hidden))
    dt = int(manifest.timestep_seconds)
    water_tile = int(P.LandCover.WATER_ICE)
    how = "network alone" if network_alone else "water tile from physics"
    print(f"{manifest.name} ({how}): NSE / KGE against the reference, continuous, per source")
    print("| source | LE all | LE without water | LE water | H all | H without water | H water |")
    print("|---|---|---|---|---|---|---|")
    for spec in flux_held_out(dt):
        batch = Batch.of([simulate(spec, dt, progress=False, cache=cache)], torch.float64)
        physics = None if network_alone else OpenWater(reference_config(load_forcing(spec, dt)))
        with torch.no_grad():
            out = rollout(
                net, batch, hidden, fields=("hfls", "hfss"), c_width=c_width, water=physics
            )
        tile = batch.tile.numpy()
        cells = []
        for v in ("hfls", "hfss"):
            sim, ref = out[v].numpy(), batch.outputs[v].numpy()
            for rows in (slice(None), tile != water_tile, tile == water_tile):
                a, o = sim[:, rows].ravel(), ref[:, rows].ravel()
                cells.append(f"{nse(a, o):.3f} / {kge(a, o):.3f}")
        print(f"| {spec.label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if a != "--network-alone"]
    main(
        Path(args[0]) if args else Path("emulators/artifacts/flux_lstm"),
        Path(args[1]) if len(args) > 1 else Path("out/emulators/data"),
        network_alone="--network-alone" in sys.argv[1:],
    )
