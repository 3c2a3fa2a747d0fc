"""Loading the emulator artifacts the backend serves: one flux (and LAI) emulator per trained
timestep, TorchScript (CPU or CUDA), AOTInductor (CPU) or ONNX (ONNX Runtime, CPU or CUDA), and
the refusal of a step length that has none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emulators.manifest import Manifest

Tensor = torch.Tensor
LOADERS = ("torchscript", "aoti", "onnx")
#: a loader: (manifest, artifact directory, device) -> the network callable
Loader = Callable[[Manifest, Path, str], Callable[..., Any]]


class TimestepError(ValueError):
    """The session's step length has no trained flux (or, with ``phenology="emulator"``, LAI)
    emulator. ``field`` is ``"dt"`` and ``rule`` ``"trained_timestep"`` (the coupler's
    InvalidArgument convention)."""

    field = "dt"
    rule = "trained_timestep"


@dataclass(frozen=True)
class LoadedFlux:
    """A loaded flux emulator: its manifest, callable and recurrent state widths."""

    manifest: Manifest
    net: Callable[..., Any]
    hidden: int
    c_width: int


@dataclass(frozen=True)
class LoadedLAI:
    """A loaded LAI emulator: its manifest and callable."""

    manifest: Manifest
    net: Callable[[Tensor], Tensor]


def load_artifact(
    manifest: Manifest, directory: Path, loader: str, device: str
) -> Callable[..., Any]:
    from emulators import export

    path = manifest.artifact_path(directory, loader)
    if loader == "torchscript":
        return export.load_torchscript(path, device)  # type: ignore[no-any-return,unused-ignore]
    if loader == "aoti":
        if device != "cpu":
            raise RuntimeError(f"{path.name}: the shipped AOTInductor packages are built for CPU")
        return export.load_aoti(path)
    if loader == "onnx":
        from emulators.compiled.onnx_net import OnnxNet

        return OnnxNet(path, device)
    raise ValueError(f"loader: must be one of {LOADERS}, got {loader!r}")
