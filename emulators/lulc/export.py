"""Export of the downscaler: TorchScript (traced), ONNX (dynamo exporter, checked with
onnxruntime) and an AOTInductor package, each of the *whole* module — normalisation, U-Net,
prior and the float64 conservation layer are inside every graph, so every artifact conserves
the coarse fractions by itself. Batch, coarse height ``h`` and width ``w`` are dynamic; the fine
features must be ``factor·h × factor·w``.

The shared helpers of ``emulators.export`` are used for the one TorchScript warning filter,
loading, onnxruntime and the agreement metric; the exports themselves need derived dynamic
dimensions (fine = factor × coarse), which the shared row-only helpers do not cover.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators import export as shared
from emulators.lulc.unet import LulcUNet

MAX_BATCH = 1024
MAX_COARSE = 256  # coarse cells per side (fine: factor × that)


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


def _dynamic_shapes(factor: int) -> dict[str, dict[int, Any]]:
    b = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    h = torch.export.Dim("h", min=1, max=MAX_COARSE)
    w = torch.export.Dim("w", min=1, max=MAX_COARSE)
    return {
        "coarse": {0: b, 2: h, 3: w},
        "features": {0: b, 2: factor * h, 3: factor * w},
    }


def save_torchscript(model: LulcUNet, args: tuple[torch.Tensor, ...], path: Path) -> Path:
    """Traced TorchScript (shape arithmetic is recorded, so any batch/h/w works)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with shared.torchscript_quiet(), torch.no_grad():
        traced = torch.jit.trace(model.eval(), args, check_trace=False)
        torch.jit.save(traced, str(path))
    return path


def export_program(model: LulcUNet, args: tuple[torch.Tensor, ...]) -> Any:
    return torch.export.export(
        model.eval(), args, dynamic_shapes=_dynamic_shapes(model.factor), strict=False
    )


def save_onnx(model: LulcUNet, args: tuple[torch.Tensor, ...], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        program = torch.onnx.export(
            model.eval(),
            args,
            dynamo=True,
            input_names=["coarse", "features"],
            output_names=["fine"],
            dynamic_shapes=_dynamic_shapes(model.factor),
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))
    return path


def save_aoti(model: LulcUNet, args: tuple[torch.Tensor, ...], path: Path) -> Path:
    """AOTInductor package (system C++ compiler, ≈ 20–45 s)."""
    from torch._inductor import aoti_compile_and_package

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        out = aoti_compile_and_package(export_program(model, args), package_path=str(path))
    return Path(out)


def agreement(eager: torch.Tensor, other: torch.Tensor | np.ndarray) -> float:
    """Per class: ``max |a − b| / max |b|``, worst class (``emulators.export.relative_error``
    with the class axis last)."""
    a = torch.as_tensor(other).movedim(1, -1)
    return shared.relative_error(a, eager.movedim(1, -1))


def check_inputs_sets(model: LulcUNet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs of other shapes than the export example (dynamic shapes are exercised)."""
    return [example_inputs(model, 3, 4, 5, seed=1), example_inputs(model, 1, 8, 3, seed=2)]


def check_artifact(model: LulcUNet, fmt: str, path: Path) -> float:
    """Worst :func:`agreement` of the artifact ``fmt`` at ``path`` with eager ``model``."""
    model.eval()
    if fmt == "torchscript":
        run = shared.load_torchscript(path)
    elif fmt == "aoti":
        run = shared.load_aoti(path)
    elif fmt == "onnx":

        def run(c: torch.Tensor, f: torch.Tensor) -> np.ndarray:
            return shared.run_onnx(path, {"coarse": c.numpy(), "features": f.numpy()})[0]
    else:
        raise ValueError(f"format: unknown artifact format {fmt!r}")
    worst = 0.0
    with torch.no_grad():
        for c, f in check_inputs_sets(model):
            worst = max(worst, agreement(model(c, f), run(c, f)))
    return worst
