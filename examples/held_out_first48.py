"""Held-out skill of a shipped flux emulator split into the first 48 steps of each free run (a
fresh session: reference state after spin-up, zero recurrent state) and the rest, per held-out
source, as a Markdown table. Reuses the reference trajectories ``landcoupler emulators evaluate``
cached (or simulates them).

    python examples/held_out_first48.py [ARTIFACT_DIR] [DATA_CACHE]

defaults: emulators/artifacts/flux_lstm and out/emulators/data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from emulators import metrics
from emulators.export import load_torchscript
from emulators.manifest import Manifest
from emulators.training import evaluate as ev
from emulators.training.batch import Batch, rollout
from emulators.training.data import simulate

FIELDS = ("hfls", "hfss")


def main(artifact: Path, cache: Path) -> None:
    torch.set_num_threads(1)
    manifest = Manifest.load(artifact)
    dt = manifest.timestep_seconds
    net = load_torchscript(manifest.artifact_path(artifact, "torchscript"))
    hidden = int(manifest.recurrent_state["hidden"])
    c_width = int(manifest.recurrent_state.get("c_width", hidden))
    first = 48 if dt < 86_400 else 2
    print("| source | part | LE NSE | LE KGE | LE RMSE | H NSE | H KGE | H RMSE |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for spec in ev.flux_held_out(dt):
        batch = Batch.of([simulate(spec, int(dt), progress=False, cache=cache)], torch.float64)
        with torch.no_grad():
            out = rollout(net, batch, hidden, fields=FIELDS, c_width=c_width)
        sim = {k: out[k].numpy() for k in FIELDS}
        ref = {k: batch.outputs[k].numpy() for k in FIELDS}
        for part, sl in ((f"first {first}", slice(0, first)), ("rest", slice(first, None))):
            table = ev.skill(
                {k: v[sl] for k, v in sim.items()}, {k: v[sl] for k, v in ref.items()}, FIELDS
            )
            r = {rec["variable"]: rec for rec in metrics.table_to_records(table)}
            le, h = r["hfls"], r["hfss"]
            print(
                f"| {spec.label} | {part} | {le['nse']:.3f} | {le['kge']:.3f} | {le['rmse']:.1f} "
                f"| {h['nse']:.3f} | {h['kge']:.3f} | {h['rmse']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        Path(args[0]) if args else Path("emulators/artifacts/flux_lstm"),
        Path(args[1]) if len(args) > 1 else Path("out/emulators/data"),
    )
