"""``lulc-unet`` in the emulator suite: train → evaluate → export → manifest, re-export, and
held-out evaluation of the shipped artifact (``landcoupler emulators train|export|evaluate
lulc-unet``).

Entry points follow ``emulators.suite``: ``train_lulc_unet(artifacts, work, progress, seed,
epochs)``, ``export_lulc_unet(artifacts, work)``, ``evaluate_lulc_unet(artifacts, out_dir,
cache, progress)``, each returning the manifest. ``artifacts`` is the suite's artifacts root.

Shipped files (``emulators/artifacts/lulc_unet/``): ``lulc_unet.ts`` (TorchScript; its weights
plus the manifest's config rebuild the eager module, :func:`load_eager`), ``lulc_unet.onnx``,
``lulc_unet.pt2`` (AOTInductor, CPU) and ``manifest.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from emulators.constants import DAYS_PER_YEAR, SECONDS_PER_DAY
from emulators.lulc import data as lulc_data
from emulators.lulc import export as lulc_export
from emulators.lulc import report
from emulators.lulc.features import FEATURES
from emulators.lulc.generator import GeneratorConfig
from emulators.lulc.train import TrainConfig, tile_batches
from emulators.lulc.train import train as train_model
from emulators.lulc.unet import LulcUNet, LulcUNetConfig
from emulators.manifest import Channel, Manifest, ManifestError, TensorSpec, file_entry
from emulators.nets import registry
from emulators.parameters import LandCover
from emulators.provenance import code_version

log = logging.getLogger(__name__)
NAME = "lulc-unet"
ARCHITECTURE = "lulc_unet"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SUBDIR = "lulc_unet"
WORK = Path("out/emulators")
FILES = {
    "torchscript": "lulc_unet.ts",
    "onnx": "lulc_unet.onnx",
    "aoti": "lulc_unet.pt2",
}
RTOL = 1e-5
YEAR_SECONDS = DAYS_PER_YEAR * SECONDS_PER_DAY


# ---- the eager network of a shipped artifact ---------------------------------------------
def load_eager(
    directory: Path, manifest: Manifest | None = None
) -> tuple[LulcUNet, LulcUNetConfig]:
    """The eager module (eval mode) and its config, rebuilt from the manifest's config and the
    weights inside the (sha256-checked) TorchScript artifact."""
    manifest = manifest or Manifest.load(directory)
    if manifest.architecture != ARCHITECTURE:
        raise ManifestError(
            "architecture",
            f"{directory}: architecture {manifest.architecture!r}, expected {ARCHITECTURE!r}",
        )
    options = dict(manifest.config)
    options["widths"] = tuple(options["widths"])
    config = registry.config(ARCHITECTURE, options)
    if not isinstance(config, LulcUNetConfig):
        raise TypeError(f"{ARCHITECTURE}: unexpected config {type(config).__name__}")
    model = config.build()
    ts = lulc_export.shared.load_torchscript(manifest.artifact_path(directory, "torchscript"))
    model.load_state_dict(ts.state_dict())
    return model.eval(), config


# ---- manifest ----------------------------------------------------------------------------
def _specs(model: LulcUNet) -> tuple[list[TensorSpec], list[TensorSpec]]:
    classes = [Channel(lc.short, "1", lc.name.lower(), 0.0, 1.0) for lc in LandCover]
    feats = [
        Channel(f.name, f.units, f"{f.long_name} [{f.source}]", float(m), float(s))
        for f, m, s in zip(
            FEATURES, model.feature_mean.tolist(), model.feature_std.tolist(), strict=True
        )
    ]
    f = model.factor
    inputs = [
        TensorSpec(
            "coarse",
            ["batch", len(classes), "h", "w"],
            "float32",
            "land-cover class fractions of coarse cells (sum 1 per cell; renormalised inside)",
            classes,
        ),
        TensorSpec(
            "features",
            ["batch", len(feats), f"{f}*h", f"{f}*w"],
            "float32",
            "fine static features on the 5' grid, physical units (standardised inside with "
            "mean/std)",
            feats,
        ),
    ]
    outputs = [
        TensorSpec(
            "fine",
            ["batch", len(classes), f"{f}*h", f"{f}*w"],
            "float64",
            f"fine class fractions: in [0, 1], sum 1 per pixel, mean over each {f}x{f} block "
            "equal to the coarse input (conservation layer inside the graph)",
            classes,
        )
    ]
    return inputs, outputs


def export_all(
    model: LulcUNet,
    config: LulcUNetConfig,
    directory: Path,
    training: dict[str, Any],
    skill: list[dict[str, Any]],
    aoti: bool = True,
) -> Manifest:
    """Write the three artifacts (each checked against eager to ``RTOL``) and the manifest to
    ``directory``."""
    model = model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    args = lulc_export.example_inputs(model)
    files: dict[str, Path] = {}
    files["torchscript"] = lulc_export.save_torchscript(
        model, args, directory / FILES["torchscript"]
    )
    files["onnx"] = lulc_export.save_onnx(model, args, directory / FILES["onnx"])
    if aoti:
        files["aoti"] = lulc_export.save_aoti(model, args, directory / FILES["aoti"])
    checks = {
        fmt: lulc_export.check_artifact(model, fmt, files[fmt]) for fmt in FILES if fmt in files
    }
    bad = {k: v for k, v in checks.items() if not v <= RTOL}
    if bad:
        raise RuntimeError(f"exported artifacts disagree with eager beyond {RTOL:g}: {bad}")
    inputs, outputs = _specs(model)
    manifest = Manifest(
        name=NAME,
        architecture=ARCHITECTURE,
        config=asdict(config),
        timestep_seconds=YEAR_SECONDS,
        inputs=inputs,
        outputs=outputs,
        recurrent_state={},
        artifacts={fmt: file_entry(p) for fmt, p in files.items()},
        training=training,
        code_version=code_version(),
        export_checks=checks,
        skill=skill,
        notes=(
            "Run once per model year (or scenario year) on the coarse land-cover fractions. "
            "Every artifact contains the conservation layer (float64 Sinkhorn sweeps + exact "
            "rounding onto the transport polytope), so fine fractions aggregate to the coarse "
            "input to float64 round-off. Export checks: worst per-class max|a-b|/max|b| vs "
            "eager on inputs of other shapes than the export example. Skill: held-out test "
            "regions and generator seed; see docs/lulc.md."
        ),
    )
    manifest.save(directory)
    return manifest


# ---- suite entry points --------------------------------------------------------------------
def train_lulc_unet(
    artifacts: Path = ARTIFACTS,
    work: Path = WORK,
    progress: bool = True,
    seed: int = 0,
    epochs: int | None = None,
) -> Manifest:
    """From scratch: build the data, train, score on the held-out test regions, export, write
    the manifest to ``artifacts/lulc_unet`` and the report to ``work/report-lulc-unet``."""
    directory = Path(artifacts) / SUBDIR
    work = Path(work)
    previous = Manifest.load(directory).skill if (directory / "manifest.json").exists() else []
    t0 = time.perf_counter()
    data = lulc_data.build()
    digest = lulc_data.data_hash(data)
    build_s = time.perf_counter() - t0
    tc = TrainConfig(seed=seed) if epochs is None else TrainConfig(seed=seed, epochs=epochs)
    mc = LulcUNetConfig(factor=data.config.factor)
    result = train_model(data, mc, tc, work / "lulc-unet-checkpoints", progress=progress)
    test = tile_batches(data, data.tiles("test"), data.config.test_seed)
    table = report.score(result.model, test, mc.factor)
    accept = report.acceptance(table)
    training = {
        "command": "landcoupler emulators train lulc-unet"
        + (f" --seed {seed}" if seed else "")
        + (f" --epochs {epochs}" if epochs is not None else ""),
        "data_hash": digest,
        "data": asdict(data.config),
        "generator": asdict(GeneratorConfig()) | {"seed": "train_seeds / val_seed / test_seed"},
        "domain": "76N-56S, all longitudes; 5' fine grid, 40' coarse cells",
        "regions": {
            k: [asdict(r) | {"label": r.label()} for r in v] for k, v in data.regions.items()
        },
        "config": asdict(tc),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "data_seconds": round(build_s, 1),
        "seconds": round(result.seconds, 1),
        "threads": tc.threads,
        "torch": torch.__version__,
        "test_tiles": len(data.tiles("test")),
        "acceptance": accept,
    }
    manifest = export_all(result.model, mc, directory, training, report.skill_rows(table, "test"))
    write_report(work / f"report-{NAME}", table, accept, result.model, test, mc.factor)
    if previous:
        drift = skill_drift(previous, manifest.skill)
        log.info("skill change vs the previous artifact: %s", drift)
        if progress:
            print(f"skill change vs the previous artifact (relative): {json.dumps(drift)}")
    return manifest


def export_lulc_unet(artifacts: Path = ARTIFACTS, work: Path = WORK) -> Manifest:
    """Re-export the three artifacts from the weights of the shipped TorchScript artifact,
    keeping training and skill."""
    directory = Path(artifacts) / SUBDIR
    old = Manifest.load(directory)
    model, config = load_eager(directory, old)
    return export_all(model, config, directory, old.training, old.skill)


def evaluate_lulc_unet(
    artifacts: Path = ARTIFACTS,
    out_dir: Path = WORK / f"report-{NAME}",
    cache: Path | None = None,
    progress: bool = True,
) -> Manifest:
    """Score the shipped TorchScript artifact and the baselines on the held-out test regions
    (test generator seed); write skill.json, skill.md and tiles.png to ``out_dir`` and update
    the manifest's skill. ``cache`` is unused (the data take ≈ 1 min to rebuild)."""
    directory = Path(artifacts) / SUBDIR
    manifest = Manifest.load(directory)
    model = lulc_export.shared.load_torchscript(manifest.artifact_path(directory, "torchscript"))
    cfg = lulc_data.DataConfig.from_dict(manifest.training["data"])
    data = lulc_data.build(cfg, seeds=(cfg.test_seed,))
    test = tile_batches(data, data.tiles("test"), cfg.test_seed)
    factor = int(manifest.config["factor"])
    table = report.score(model, test, factor)
    accept = report.acceptance(table)
    write_report(Path(out_dir), table, accept, model, test, factor)
    manifest.skill = report.skill_rows(table, "test")
    manifest.save(directory)
    return manifest


def skill_drift(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, float]:
    """Relative change of the U-Net's accuracy, MAE and mean IoU between two skill tables."""
    before = {r["method"]: r for r in old if "method" in r}
    drift: dict[str, float] = {}
    for r in new:
        if r.get("method") != ARCHITECTURE or ARCHITECTURE not in before:
            continue
        for m in ("accuracy", "accuracy_mixed", "mae", "mae_mixed", "mean_iou", "mean_iou_mixed"):
            a, b = before[ARCHITECTURE][m], r[m]
            drift[m] = round(abs(b - a) / max(abs(a), 1e-12), 5)
    return drift


def write_report(
    out: Path,
    table: dict[str, Any],
    accept: dict[str, bool],
    model: Any,
    test: list[Any],
    factor: int,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "skill.json").write_text(
        json.dumps({"skill": table, "acceptance": accept}, indent=2) + "\n"
    )
    (out / "skill.md").write_text(
        "# lulc-unet: held-out test regions\n\n"
        + report.markdown(table)
        + "\nAcceptance: "
        + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in accept.items())
        + "\n"
    )
    if test:
        report.plot_tiles(model, report.most_mixed(test, 4), factor, out / "tiles.png")
