"""From scratch to shipped artifact, per emulator: train → export (TorchScript, AOTInductor, ONNX,
each checked against eager to 1e-5) → manifest → held-out evaluation (skill table in the
manifest, report in the work directory). ``landcoupler emulators train NAME`` runs this. The
LAI emulators' pipeline is ``training.lai_pipeline``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emulators import export
from emulators.compiled.closure import FLUX_OUTPUTS
from emulators.compiled.features import FLUX_FEATURES
from emulators.manifest import Channel, Manifest, TensorSpec, file_entry
from emulators.nets import flux as flux_nets
from emulators.provenance import code_version
from emulators.training import evaluate as ev
from emulators.training.batch import Batch, rollout
from emulators.training.data import simulate
from emulators.training.flux import FluxTrainConfig, TrainResult, train

log = logging.getLogger(__name__)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RTOL = 1e-5


def _override(config: Any, **changes: Any) -> Any:
    """``config`` with the non-None ``changes`` applied (CLI --seed/--epochs)."""
    import dataclasses

    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def _channels(features: Any, mean: torch.Tensor, std: torch.Tensor) -> list[Channel]:
    return [
        Channel(f.name, f.units, f.long_name, float(m), float(s))
        for f, m, s in zip(features, mean.tolist(), std.tolist(), strict=True)
    ]


def export_flux_lstm(
    model: flux_nets.FluxLSTM,
    directory: Path,
    training: dict[str, Any],
    compile_aoti: bool = True,
    name: str = "flux-lstm",
    timestep: float = 3600.0,
) -> Manifest:
    """Write the three artifacts and the manifest of a trained ``flux_lstm`` to ``directory``
    (``timestep``: the step it was trained for, s, recorded in the manifest)."""
    return export_flux(
        model,
        directory,
        name=name,
        architecture="flux_lstm",
        config={
            "hidden": model.hidden,
            "head_hidden": int(model.head_w1.shape[2]),
            "n_features": len(FLUX_FEATURES),
            "n_outputs": len(FLUX_OUTPUTS),
        },
        inputs=model.inputs,
        outputs=model.outputs,
        state={
            "hidden": model.hidden,
            "c_width": model.hidden,
            "h": "LSTM hidden state",
            "c": "LSTM cell state",
        },
        training=training,
        compile_aoti=compile_aoti,
        timestep=timestep,
    )


def export_flux(
    model: torch.nn.Module,
    directory: Path,
    *,
    name: str,
    architecture: str,
    config: dict[str, Any],
    inputs: flux_nets.Normaliser,
    outputs: flux_nets.Normaliser,
    state: dict[str, Any],
    training: dict[str, Any],
    compile_aoti: bool = True,
    timestep: float = 3600.0,
) -> Manifest:
    """Artifacts + manifest of a flux emulator with the recurrent convention
    ``forward(x, h, c) -> (y, h, c)``, trained for steps of ``timestep`` seconds; files are
    named after the directory."""
    model = model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory.name
    hidden, c_width = int(state["hidden"]), int(state["c_width"])
    g = torch.Generator().manual_seed(0)
    x = inputs.mean + inputs.std * torch.randn(64, inputs.mean.shape[0], generator=g)
    args = (
        x.float(),
        torch.rand(64, hidden, generator=g) - 0.5,
        2 * torch.rand(64, c_width, generator=g) - 1.0,
    )
    with torch.no_grad():
        eager = model(*args)
    files: dict[str, Path] = {}
    checks: dict[str, float] = {}
    files["torchscript"] = export.save_torchscript(model, directory / f"{stem}.ts")
    with torch.no_grad():
        checks["torchscript"] = export.compare(
            eager, export.load_torchscript(files["torchscript"])(*args)
        )
    files["onnx"] = export.save_onnx(
        model, args, directory / f"{stem}.onnx", ["x", "h", "c"], ["y", "h_out", "c_out"]
    )
    feeds = {n: a.numpy() for n, a in zip(("x", "h", "c"), args, strict=True)}
    checks["onnx"] = export.compare(eager, export.run_onnx(files["onnx"], feeds))
    if compile_aoti:
        files["aoti"] = export.save_aoti(model, args, directory / f"{stem}.pt2")
        with torch.no_grad():
            checks["aoti"] = export.compare(eager, export.load_aoti(files["aoti"])(*args))
    bad = {k: v for k, v in checks.items() if not v <= RTOL}
    if bad:
        raise RuntimeError(f"exported artifacts disagree with eager beyond {RTOL:g}: {bad}")
    n_out = len(FLUX_OUTPUTS)
    manifest = Manifest(
        name=name,
        architecture=architecture,
        config=config,
        timestep_seconds=float(timestep),
        inputs=[
            TensorSpec(
                "x",
                ["rows", len(FLUX_FEATURES)],
                "float32",
                "per-tile-row features in physical units (normalised inside)",
                _channels(FLUX_FEATURES, inputs.mean, inputs.std),
            ),
            TensorSpec("h", ["rows", hidden], "float32", f"{state['h']} (zeros at start)"),
            TensorSpec("c", ["rows", c_width], "float32", f"{state['c']} (zeros at start)"),
        ],
        outputs=[
            TensorSpec(
                "y",
                ["rows", n_out],
                "float32",
                "predictions in physical units, closed by emulators.compiled.closure",
                [
                    Channel(n, u, ln, float(m), float(sd))
                    for (n, u, ln), m, sd in zip(
                        FLUX_OUTPUTS,
                        outputs.mean.tolist()[:n_out],
                        outputs.std.tolist()[:n_out],
                        strict=True,
                    )
                ],
            ),
            TensorSpec("h_out", ["rows", hidden], "float32", f"{state['h']} after the step"),
            TensorSpec("c_out", ["rows", c_width], "float32", f"{state['c']} after the step"),
        ],
        recurrent_state={
            "hidden": hidden,
            "c_width": c_width,
            "tensors": ["h", "c"],
            "returned_as": ["h_out", "c_out"],
            "dtype": "float32",
            "initial": "zeros",
            "row": "one (member, cell, tile) entry; LandState keys lstm_h (member, cell, tile, "
            "hidden) and lstm_c (member, cell, tile, c_width)",
        },
        artifacts={k: file_entry(p) for k, p in files.items()},
        training=training,
        code_version=code_version(),
        export_checks=checks,
        notes="Inputs: emulators.compiled.features.FLUX_FEATURES; outputs: "
        "emulators.compiled.closure.FLUX_OUTPUTS. One call advances one timestep of "
        "timestep_seconds; fluxes are closed by the shared constraint layer."
        + (
            " At steps of a day or longer the local-solar-hour features (hour_sin, hour_cos) "
            "are constant zeros (a daily step covers every hour)."
            if timestep >= 86_400
            else ""
        ),
    )
    manifest.save(directory)
    return manifest


def train_flux_lstm(
    artifacts: Path = ARTIFACTS,
    work: Path = Path("out/emulators"),
    config: FluxTrainConfig | None = None,
    progress: bool = True,
    compile_aoti: bool = True,
    evaluate: bool = True,
    seed: int | None = None,
    epochs: int | None = None,
) -> Manifest:
    """``landcoupler emulators train flux-lstm`` (hourly)."""
    config = _override(config or FluxTrainConfig(), seed=seed, epochs=epochs)
    return _train_flux(config, "flux-lstm", artifacts, work, progress, compile_aoti, evaluate)


def train_flux_lstm_daily(
    artifacts: Path = ARTIFACTS,
    work: Path = Path("out/emulators"),
    config: FluxTrainConfig | None = None,
    progress: bool = True,
    compile_aoti: bool = True,
    evaluate: bool = True,
    seed: int | None = None,
    epochs: int | None = None,
) -> Manifest:
    """``landcoupler emulators train flux-lstm-daily``: the same architecture and pipeline at
    86 400 s steps (``training.flux.daily_config``)."""
    from emulators.training.flux import daily_config

    config = _override(config or daily_config(), seed=seed, epochs=epochs)
    return _train_flux(config, "flux-lstm-daily", artifacts, work, progress, compile_aoti, evaluate)


def save_best(path: Path, model: torch.nn.Module, config: Any) -> None:
    """The trained weights and the (dataclass) training config, for inspection or fine-tuning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": asdict(config)}, path)


def training_record(
    name: str, config: Any, result: Any, held_out: Sequence[Any], seconds: float
) -> dict[str, Any]:
    """The manifest's ``training`` entry of a run of ``landcoupler emulators train NAME``:
    data (hash, training/validation/held-out sources), config, history, best epoch, time."""
    return {
        "command": f"landcoupler emulators train {name}",
        "data_hash": result.data_hash,
        "sources": [asdict(s) for s in config.train],
        "validation": [asdict(s) for s in config.validation],
        "held_out": [asdict(s) for s in held_out],
        "config": asdict(config),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        "threads": config.threads,
        "torch": torch.__version__,
    }


def _train_flux(
    config: FluxTrainConfig,
    name: str,
    artifacts: Path,
    work: Path,
    progress: bool,
    compile_aoti: bool,
    evaluate: bool,
) -> Manifest:
    """Train from scratch → export (three formats, checked) → manifest → held-out skill."""
    directory = artifacts / config.artifact
    previous = Manifest.load(directory).skill if (directory / "manifest.json").exists() else []
    t0 = time.perf_counter()
    result: TrainResult = train(
        config, cache=work / "data", checkpoint_dir=work / "checkpoints", progress=progress
    )
    seconds = time.perf_counter() - t0
    save_best(work / f"{config.artifact}-best.pt", result.model, config)
    training = training_record(name, config, result, ev.flux_held_out(config.timestep), seconds)
    manifest = export_flux_lstm(
        result.model, directory, training, compile_aoti, name=name, timestep=config.timestep
    )
    if evaluate:
        manifest = evaluate_flux(directory, work / f"report-{name}", work / "data", progress)
        if previous:
            drift = skill_drift(previous, manifest.skill)
            log.info("skill change vs the previous artifact: %s", drift)
            if progress:
                print(f"skill change vs the previous artifact (relative): {json.dumps(drift)}")
    return manifest


def shipped_evaluator(
    evaluate_at: Callable[[Path, Path, Path | None, bool], Manifest], artifact: str, report: str
) -> Callable[..., Manifest]:
    """``landcoupler emulators evaluate NAME`` of a shipped artifact: ``evaluate_at(directory,
    out_dir, cache, progress)`` on ``ARTIFACTS/artifact``, the report under
    ``out/emulators/report``; updates the manifest's skill table."""

    def evaluate(
        artifacts: Path = ARTIFACTS,
        out_dir: Path = Path("out/emulators") / report,
        cache: Path | None = Path("out/emulators/data"),
        progress: bool = True,
    ) -> Manifest:
        return evaluate_at(artifacts / artifact, out_dir, cache, progress)

    evaluate.__doc__ = (
        f"Held-out skill of the shipped ``{artifact}`` emulator (updates its manifest)."
    )
    return evaluate


def evaluate_flux(
    directory: Path,
    out_dir: Path,
    cache: Path | None = Path("out/emulators/data"),
    progress: bool = True,
) -> Manifest:
    """Held-out skill of a shipped TorchScript flux emulator at the manifest's timestep (held-out
    sources: ``evaluate.flux_held_out``); updates the manifest's skill."""
    manifest = Manifest.load(directory)
    dt = manifest.timestep_seconds
    daily = dt >= 86_400
    net = export.load_torchscript(manifest.artifact_path(directory, "torchscript"))
    hidden = int(manifest.recurrent_state["hidden"])
    c_width = int(manifest.recurrent_state.get("c_width", hidden))
    tables: dict[str, pd.DataFrame] = {}
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pooled_sim: dict[str, list[np.ndarray]] = {k: [] for k in ev.FLUX_VARIABLES}
    pooled_ref: dict[str, list[np.ndarray]] = {k: [] for k in ev.FLUX_VARIABLES}
    for spec in ev.flux_held_out(dt):
        traj = simulate(spec, int(dt), progress=progress, cache=cache)
        batch = Batch.of([traj], torch.float64)
        with torch.no_grad():
            out = rollout(net, batch, hidden, fields=ev.FLUX_VARIABLES, c_width=c_width)
        sim = {k: out[k].numpy() for k in ev.FLUX_VARIABLES}
        ref = {k: batch.outputs[k].numpy() for k in ev.FLUX_VARIABLES}
        tables[spec.label] = ev.skill(sim, ref, ev.FLUX_VARIABLES)
        for k in ev.FLUX_VARIABLES:
            pooled_sim[k].append(sim[k].reshape(-1))
            pooled_ref[k].append(ref[k].reshape(-1))
        if spec.source in ("tmy3-greensboro", "pcse-wageningen", "tmy3-sandpoint"):
            times = traj.time[: batch.steps]
            start = int(np.searchsorted(times, np.datetime64(f"{str(times[0])[:4]}-07-01")))
            sl = slice(0, batch.steps) if daily else slice(start, start + 240)
            row = int(np.nonzero(batch.tile.numpy() == 2)[0][0])  # a grassland tile
            for var in ("hfls", "hfss"):
                when = "daily, whole year" if daily else "July"
                series[f"{spec.label} grassland {var} [W m-2], {when}"] = (
                    times[sl],
                    sim[var][sl, row],
                    ref[var][sl, row],
                )
    tables["all held-out"] = ev.skill(
        {k: np.concatenate(v)[:, None] for k, v in pooled_sim.items()},
        {k: np.concatenate(v)[:, None] for k, v in pooled_ref.items()},
        ev.FLUX_VARIABLES,
    )
    result = ev.report(
        tables,
        series,
        out_dir,
        f"{manifest.name} vs reference model (held-out, free-running)",
        ("hfls", "hfss"),
        preamble=f"Pooled over all tiles and {'days' if daily else 'hours'} of each held-out "
        "source; the emulator runs closed-loop on its own soil water and temperatures from the "
        f"first step ({dt:g} s steps).",
    )
    manifest.skill = result["records"]
    manifest.save(directory)
    return manifest


#: held-out skill of the shipped hourly and daily flux emulators (``emulators evaluate ...``)
evaluate_flux_lstm = shipped_evaluator(evaluate_flux, "flux_lstm", "report-flux-lstm")
evaluate_flux_lstm_daily = shipped_evaluator(
    evaluate_flux, "flux_lstm_daily", "report-flux-lstm-daily"
)


def skill_drift(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, float]:
    """Relative change of NSE, KGE and RMSE of LE and H per source between two skill tables."""

    def key(r: dict[str, Any]) -> tuple[str, str]:
        return r["source"], r["variable"]

    before = {key(r): r for r in old}
    drift: dict[str, float] = {}
    for r in new:
        if r["variable"] not in ("hfls", "hfss") or key(r) not in before:
            continue
        for m in ("nse", "kge", "rmse"):
            a, b = before[key(r)].get(m), r.get(m)
            if a is None or b is None:
                continue
            drift[f"{r['source']}/{r['variable']}/{m}"] = round(abs(b - a) / max(abs(a), 1e-12), 5)
    return drift
