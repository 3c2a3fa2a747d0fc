"""The downscaler's export spec (``emulators.export.ExportSpec``, written by the one export path
``emulators.export.export_artifacts``): TorchScript (traced), ONNX (dynamo exporter, checked with
onnxruntime) and an AOTInductor package, each of the *whole* module — normalisation, U-Net, prior
and the float64 conservation layer are inside every graph, so every artifact conserves the coarse
fractions by itself. Batch, coarse height ``h`` and width ``w`` are dynamic; the fine features
must be ``factor·h × factor·w`` (the derived dimensions ``8*h``, ``8*w`` of the input specs).
Artifacts are checked against eager on inputs of other shapes than the export example, per class.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from emulators import export as shared
from emulators.constants import SECONDS_PER_YEAR
from emulators.lulc.features import FEATURES
from emulators.lulc.unet import LulcUNet
from emulators.manifest import Channel, TensorSpec
from emulators.parameters import LandCover

MAX_BATCH = 1024
MAX_COARSE = 256  # coarse cells per side (fine: factor × that)
NOTES = (
    "Run once per model year (or scenario year) on the coarse land-cover fractions. "
    "Every artifact contains the conservation layer (float64 Sinkhorn sweeps + exact "
    "rounding onto the transport polytope), so fine fractions aggregate to the coarse "
    "input to float64 round-off. Export checks: worst per-class max|a-b|/max|b| vs "
    "eager on inputs of other shapes than the export example. Skill: held-out test "
    "regions and generator seed; see docs/lulc.md."
)


def example_inputs(
    model: LulcUNet, batch: int = 2, h: int = 6, w: int = 6, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plausible inputs: coarse fractions from a sharp softmax (some classes ≈ 0, some exactly 0)
    and features drawn around the model's normalisation statistics."""
    g = torch.Generator().manual_seed(seed)
    k = model.head.out_channels
    logits = 3.0 * torch.randn(batch, k, h, w, generator=g)
    coarse = torch.softmax(logits, dim=1)
    coarse = torch.where(coarse < 1e-3, torch.zeros_like(coarse), coarse)
    coarse = (coarse / coarse.sum(dim=1, keepdim=True)).float()
    f = model.factor
    n_feat = model.feature_mean.shape[0]
    z = torch.randn(batch, n_feat, f * h, f * w, generator=g)
    features = model.feature_mean[None, :, None, None] + model.feature_std[None, :, None, None] * z
    return coarse, features.float()


def check_inputs_sets(model: LulcUNet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs of other shapes than the export example (dynamic shapes are exercised)."""
    return [example_inputs(model, 3, 4, 5, seed=1), example_inputs(model, 1, 8, 3, seed=2)]


def spec(model: LulcUNet, config: dict[str, Any]) -> shared.ExportSpec:
    """Formats, example and check inputs, dynamic dimensions and the manifest's description
    (``config``: the architecture config, ``asdict(LulcUNetConfig)``)."""
    classes = [Channel(lc.short, "1", lc.name.lower(), 0.0, 1.0) for lc in LandCover]
    feats = [
        Channel(f.name, f.units, f"{f.long_name} [{f.source}]", float(m), float(s))
        for f, m, s in zip(
            FEATURES, model.feature_mean.tolist(), model.feature_std.tolist(), strict=True
        )
    ]
    f = model.factor
    return shared.ExportSpec(
        architecture="lulc_unet",
        config=config,
        timestep_seconds=SECONDS_PER_YEAR,
        inputs=[
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
        ],
        outputs=[
            TensorSpec(
                "fine",
                ["batch", len(classes), f"{f}*h", f"{f}*w"],
                "float64",
                f"fine class fractions: in [0, 1], sum 1 per pixel, mean over each {f}x{f} block "
                "equal to the coarse input (conservation layer inside the graph)",
                classes,
            )
        ],
        example=example_inputs(model),
        notes=NOTES,
        dims={"batch": (1, MAX_BATCH), "h": (1, MAX_COARSE), "w": (1, MAX_COARSE)},
        checks=tuple(check_inputs_sets(model)),
        axis=1,
        torchscript="trace",
    )


def check_artifact(model: LulcUNet, fmt: str, path: Path) -> float:
    """Worst per-class agreement of the artifact ``fmt`` at ``path`` with eager ``model``."""
    return shared.check_artifact(model, fmt, path, spec(model, asdict(model.config)))
