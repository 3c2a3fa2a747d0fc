"""The LAI emulators from scratch to shipped artifact (``lai``: daily aggregates of hourly land
steps; ``lai-daily``: of 86 400 s land steps): train → export (TorchScript, AOTInductor, ONNX,
each checked against eager to 1e-5) → manifest → held-out evaluation. The flux counterpart and the
shared helpers are in ``training.pipeline``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emulators import export
from emulators.compiled.lai_step import lai_timestep
from emulators.manifest import Channel, Manifest, TensorSpec, file_entry
from emulators.provenance import code_version
from emulators.training import evaluate as ev
from emulators.training.data import simulate
from emulators.training.pipeline import (
    ARTIFACTS,
    RTOL,
    _channels,
    _override,
    save_best,
    shipped_evaluator,
    training_record,
)

#: held out from ``lai`` (hourly land steps); ``evaluate.lai_held_out(86400)`` for ``lai-daily``
LAI_HELD_OUT = ev.lai_held_out(3600)


def export_lai(
    model: torch.nn.Module,
    directory: Path,
    training: dict[str, Any],
    compile_aoti: bool = True,
    name: str = "lai",
    timestep: float = 3600.0,
) -> Manifest:
    """Write an LAI emulator's artifacts and manifest to ``directory`` (files named after the
    directory); ``timestep``: the land step [s] of its training trajectories (notes)."""
    from emulators.compiled.lai_step import LAI_FEATURES, LAI_OUTPUTS
    from emulators.nets.lai import LAIEmulator

    if not isinstance(model, LAIEmulator):
        raise TypeError("export_lai needs an LAIEmulator")
    model = model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory.name
    g = torch.Generator().manual_seed(0)
    x = model.inputs.mean + model.inputs.std * torch.randn(64, len(LAI_FEATURES), generator=g)
    args = (x.float(),)
    with torch.no_grad():
        eager = (model(*args),)
    files: dict[str, Path] = {
        "torchscript": export.save_torchscript(model, directory / f"{stem}.ts")
    }
    checks: dict[str, float] = {}
    with torch.no_grad():
        checks["torchscript"] = export.compare(
            eager, (export.load_torchscript(files["torchscript"])(*args),)
        )
    files["onnx"] = export.save_onnx(model, args, directory / f"{stem}.onnx", ["x"], ["dlai"])
    checks["onnx"] = export.compare(eager, export.run_onnx(files["onnx"], {"x": args[0].numpy()}))
    if compile_aoti:
        files["aoti"] = export.save_aoti(model, args, directory / f"{stem}.pt2")
        with torch.no_grad():
            checks["aoti"] = export.compare(eager, (export.load_aoti(files["aoti"])(*args),))
    bad = {k: v for k, v in checks.items() if not v <= RTOL}
    if bad:
        raise RuntimeError(f"exported artifacts disagree with eager beyond {RTOL:g}: {bad}")
    manifest = Manifest(
        name=name,
        architecture="lai",
        config={
            "n_features": len(LAI_FEATURES),
            "hidden": int(model.mlp[0].out_features),  # type: ignore[arg-type]
            "layers": sum(isinstance(m, torch.nn.Linear) for m in model.mlp) - 1,
        },
        timestep_seconds=86_400.0,
        inputs=[
            TensorSpec(
                "x",
                ["rows", len(LAI_FEATURES)],
                "float32",
                "per-tile-row daily aggregates in physical units (normalised inside)",
                _channels(LAI_FEATURES, model.inputs.mean, model.inputs.std),
            )
        ],
        outputs=[
            TensorSpec(
                "dlai",
                ["rows", 1],
                "float32",
                "LAI change over the day; LAI' = clip(LAI + dlai, 0, LAI_max)",
                [
                    Channel(n, u, ln, float(model.outputs.mean[0]), float(model.outputs.std[0]))
                    for n, u, ln in LAI_OUTPUTS
                ],
            )
        ],
        recurrent_state={
            "hidden": 0,
            "tensors": [],
            "carried": "LAI as leaf carbon (cleaf = "
            "LAI/SLA) in LandState; the network itself is stateless",
        },
        artifacts={k: file_entry(p) for k, p in files.items()},
        training=training,
        code_version=code_version(),
        export_checks=checks,
        notes="Called once per day per tile with the day's aggregates "
        "(emulators.compiled.lai_step)."
        + (
            f" Trained on reference trajectories at {timestep:g} s land steps "
            "(training.config.timestep); the emulator backend serves it to sessions with that dt."
            if timestep != 3600
            else ""
        ),
    )
    manifest.save(directory)
    return manifest


def train_lai(
    artifacts: Path = ARTIFACTS,
    work: Path = Path("out/emulators"),
    config: Any = None,
    progress: bool = True,
    compile_aoti: bool = True,
    evaluate: bool = True,
    seed: int | None = None,
    epochs: int | None = None,
) -> Manifest:
    """``landcoupler emulators train lai`` (daily aggregates of hourly land steps)."""
    from emulators.training import lai as lai_training

    config = _override(config or lai_training.LAITrainConfig(), seed=seed, epochs=epochs)
    return _train_lai(config, "lai", artifacts, work, progress, compile_aoti, evaluate)


def train_lai_daily(
    artifacts: Path = ARTIFACTS,
    work: Path = Path("out/emulators"),
    config: Any = None,
    progress: bool = True,
    compile_aoti: bool = True,
    evaluate: bool = True,
    seed: int | None = None,
    epochs: int | None = None,
) -> Manifest:
    """``landcoupler emulators train lai-daily``: the same architecture and pipeline on reference
    trajectories at 86 400 s land steps (``training.lai.daily_config``)."""
    from emulators.training import lai as lai_training

    config = _override(config or lai_training.daily_config(), seed=seed, epochs=epochs)
    return _train_lai(config, "lai-daily", artifacts, work, progress, compile_aoti, evaluate)


def _train_lai(
    config: Any,
    name: str,
    artifacts: Path,
    work: Path,
    progress: bool,
    compile_aoti: bool,
    evaluate: bool,
) -> Manifest:
    """Train from scratch → export (three formats, checked) → manifest → held-out skill."""
    from emulators.training import lai as lai_training

    t0 = time.perf_counter()
    result = lai_training.train(config, cache=work / "data", progress=progress)
    seconds = time.perf_counter() - t0
    save_best(work / f"{name}-best.pt", result.model, config)
    training = training_record(name, config, result, ev.lai_held_out(config.timestep), seconds)
    directory = artifacts / config.artifact
    manifest = export_lai(
        result.model, directory, training, compile_aoti, name=name, timestep=config.timestep
    )
    if evaluate:
        manifest = evaluate_lai_at(directory, work / f"report-{name}", work / "data", progress)
    return manifest


def evaluate_lai_daily(
    artifacts: Path = ARTIFACTS,
    out_dir: Path = Path("out/emulators/report-lai-daily"),
    cache: Path | None = Path("out/emulators/data"),
    progress: bool = True,
) -> Manifest:
    """Held-out skill of ``lai-daily`` at 86 400 s land steps (updates its manifest), and, for
    comparison, of the hourly-trained ``lai`` on the same held-out data
    (``out_dir/lai-at-86400/``; the ``lai`` manifest is not changed)."""
    manifest = evaluate_lai_at(artifacts / "lai_daily", out_dir, cache, progress)
    if (artifacts / "lai" / "manifest.json").exists():
        evaluate_lai_at(
            artifacts / "lai", out_dir / "lai-at-86400", cache, progress, timestep=86_400
        )
    return manifest


def evaluate_lai_at(
    directory: Path,
    out_dir: Path,
    cache: Path | None = Path("out/emulators/data"),
    progress: bool = True,
    timestep: float | None = None,
) -> Manifest:
    """Held-out skill of the TorchScript LAI emulator in ``directory`` over free-running years
    of reference trajectories at ``timestep`` s land steps (default: the step it was trained on,
    :func:`lai_timestep`; held-out sources ``evaluate.lai_held_out``). The manifest's skill is
    updated only at the trained step; the report goes to ``out_dir`` either way."""
    from emulators.training import lai as lai_training

    manifest = Manifest.load(directory)
    trained = lai_timestep(manifest)
    dt = trained if timestep is None else float(timestep)
    net = export.load_torchscript(manifest.artifact_path(directory, "torchscript"))
    tables: dict[str, pd.DataFrame] = {}
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pooled: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for spec in ev.lai_held_out(dt):
        data = lai_training.daily([simulate(spec, int(dt), progress=progress, cache=cache)])
        with torch.no_grad():
            pred = lai_training.rollout(net, data).numpy()
        ref = data.lai[1:].numpy()
        veg = (data.vegetated > 0).numpy()
        tables[spec.label] = ev.skill({"lai": pred[:, veg]}, {"lai": ref[:, veg]}, ("lai",))
        pooled[0].append(pred[:, veg].reshape(-1))
        pooled[1].append(ref[:, veg].reshape(-1))
        if spec.source in ("tmy3-greensboro", "pcse-wageningen"):
            days = np.arange(1, data.days + 1)
            for tile, label in ((1, "deciduous forest"), (3, "cropland")):
                row = int(np.nonzero(data.tile.numpy() == tile)[0][0])
                series[f"{spec.label} {label} LAI [m2 m-2]"] = (days, pred[:, row], ref[:, row])
    tables["all held-out"] = ev.skill(
        {"lai": np.concatenate(pooled[0])[:, None]},
        {"lai": np.concatenate(pooled[1])[:, None]},
        ("lai",),
    )
    result = ev.report(
        tables,
        series,
        out_dir,
        f"{manifest.name} vs reference model (held-out years, free-running, {dt:g} s land steps)",
        ("lai",),
        preamble="Vegetated tiles only (LAI of the vegetated part), daily, the emulator running "
        "on its own LAI for the whole record from the reference LAI of the first day; the "
        f"reference model and the daily aggregates at {dt:g} s land steps (the emulator was "
        f"trained at {trained:g} s).",
    )
    if dt == trained:
        manifest.skill = result["records"]
        manifest.save(directory)
    return manifest


#: held-out skill of the shipped hourly-step LAI emulator (``emulators evaluate lai``)
evaluate_lai = shipped_evaluator(evaluate_lai_at, "lai", "report-lai")
