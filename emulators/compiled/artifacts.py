"""Loading the emulator artifacts the backend serves: one flux (and LAI) emulator per trained
timestep, TorchScript (CPU or CUDA), AOTInductor (CPU), ONNX (ONNX Runtime, CPU or CUDA) or
``fused`` (the ``flux_lstm`` networks' TorchScript weights run by the native fused operator of
``emulators.compiled.fused``, CPU; other networks TorchScript), and the refusal of a step length
that has none."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emulators.compiled.lai_step import lai_timestep
from emulators.manifest import Manifest

Tensor = torch.Tensor
LOADERS = ("torchscript", "aoti", "onnx", "fused")
#: a loader: (manifest, artifact directory, device) -> the network callable
Loader = Callable[[Manifest, Path, str], Callable[..., Any]]


class TimestepError(ValueError):
    """The session's step length has no trained flux (or, with ``phenology="emulator"``, LAI)
    emulator. ``field`` is ``"dt"`` and ``rule`` ``"trained_timestep"`` (the coupler's
    InvalidArgument convention)."""

    field = "dt"
    rule = "trained_timestep"


class HeightsError(ValueError):
    """The session's forcing heights are not served: the flux network of its step has no height
    input, or was trained on other heights. ``field`` names the height, ``rule`` is
    ``"backend_heights"``."""

    rule = "backend_heights"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


#: the ranges of measurement heights [m] a height-aware flux network was trained at
#: (``{"wind": [low, high], "temperature": [low, high]}``, its manifest's ``training.heights``)
HeightRanges = dict[str, list[float]]


def trained_heights(manifest: Manifest) -> HeightRanges | None:
    """The heights ``manifest``'s network was trained at, where it takes them as inputs (its
    inputs end with ``HEIGHT_FEATURES``); None for a network without a height input."""
    from emulators.compiled.features import HEIGHT_FEATURES

    names = [c.name for c in manifest.inputs[0].channels] if manifest.inputs else []
    if names[-len(HEIGHT_FEATURES) :] != [f.name for f in HEIGHT_FEATURES]:
        return None
    found = manifest.training.get("heights")
    if not found:
        raise ValueError(
            f"{manifest.name}: takes the heights but its manifest has no training.heights"
        )
    return {k: [float(v) for v in found[k]] for k in ("wind", "temperature")}


@dataclass(frozen=True)
class LoadedFlux:
    """A loaded flux emulator: its manifest, callable, recurrent state widths and the
    iterations that spin up a never-stepped row's recurrent state (``flux_step.spin_up_state``;
    the manifest's ``recurrent_state.spin_up``, 0 where it has none)."""

    manifest: Manifest
    net: Callable[..., Any]
    hidden: int
    c_width: int
    spin_up: int = 0
    #: the measurement heights it was trained at (``trained_heights``); None: no height input
    heights: HeightRanges | None = None

    @classmethod
    def of(cls, manifest: Manifest, net: Callable[..., Any]) -> LoadedFlux:
        """``net`` with the widths and spin-up its manifest's ``recurrent_state`` records, and
        the heights it takes (``trained_heights``)."""
        state = manifest.recurrent_state
        hidden = int(state["hidden"])
        c_width = int(state.get("c_width", hidden))
        spin = int(state.get("spin_up", 0))
        return cls(manifest, net, hidden, c_width, spin, trained_heights(manifest))


@dataclass(frozen=True)
class LoadedLAI:
    """A loaded LAI emulator: its manifest and callable."""

    manifest: Manifest
    net: Callable[[Tensor], Tensor]


def load_artifact(
    manifest: Manifest, directory: Path, loader: str, device: str
) -> Callable[..., Any]:
    from emulators import export

    if loader == "fused":
        return _load_fused(manifest, directory, device)
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


def _load_fused(manifest: Manifest, directory: Path, device: str) -> Callable[..., Any]:
    """A ``flux_lstm`` network's TorchScript weights in the fused operator; any other network
    its TorchScript artifact."""
    from emulators import export
    from emulators.compiled.fused import FusedFluxLSTM

    if device != "cpu":
        raise RuntimeError(f"device: the fused backend runs on the CPU only, got {device!r}")
    path = manifest.artifact_path(directory, "torchscript")
    if manifest.architecture != "flux_lstm":
        return export.load_torchscript(path, device)  # type: ignore[no-any-return,unused-ignore]
    return FusedFluxLSTM.from_torchscript(path, manifest.config)


#: builds one network: (manifest, artifact directory) -> the callable
NetBuilder = Callable[[Manifest, Path], Callable[..., Any]]


def _by_timestep(
    what: tuple[str, str, str],
    artifacts: Path,
    names: Sequence[str],
    timestep: Callable[[Manifest], float],
    make: Callable[[Manifest, Path], Any],
) -> dict[float, Any]:
    """``make(manifest, directory)`` for each of ``names`` under ``artifacts``, by
    ``timestep(manifest)`` [s]; ``what``: (field, emulator name, step name) for errors. With
    several names a missing directory is skipped; two for one timestep, or none, are refused."""
    field, kind, steps = what
    out: dict[float, Any] = {}
    for name in names:
        directory = artifacts / name
        if not (directory / "manifest.json").exists() and len(names) > 1:
            continue
        manifest = Manifest.load(directory)
        dt = timestep(manifest)
        if dt in out:
            raise ValueError(
                f"{field}: {name!r} and {out[dt].manifest.name!r} are both trained "
                f"for {dt:g} s {steps}"
            )
        out[dt] = make(manifest, directory)
    if not out:
        raise RuntimeError(f"{field}: no {kind} emulator artifacts in {artifacts}")
    return out


def load_fluxes(
    artifacts: Path, names: Sequence[str], build: NetBuilder
) -> dict[float, LoadedFlux]:
    """The flux emulators ``names`` under ``artifacts``, by trained timestep [s]
    (:func:`_by_timestep`'s rules)."""

    def make(manifest: Manifest, directory: Path) -> LoadedFlux:
        return LoadedFlux.of(manifest, build(manifest, directory))

    return _by_timestep(
        ("flux", "flux", "steps"), artifacts, names, lambda m: float(m.timestep_seconds), make
    )


def load_lais(artifacts: Path, names: Sequence[str], build: NetBuilder) -> dict[float, LoadedLAI]:
    """The LAI emulators ``names`` under ``artifacts``, by the land step [s] they were trained
    on (:func:`_by_timestep`'s rules)."""

    def make(manifest: Manifest, directory: Path) -> LoadedLAI:
        return LoadedLAI(manifest, build(manifest, directory))

    return _by_timestep(("lai", "LAI", "land steps"), artifacts, names, lai_timestep, make)


def for_dt(table: Mapping[float, Any], dt: float, what: str, hint: str) -> Any:
    """The entry of ``table`` (timestep -> loaded emulator) for steps of ``dt`` seconds, else
    :class:`TimestepError` naming the available timesteps."""
    found = table.get(float(dt))
    if found is None:
        available = ", ".join(f"{t:g} s ({table[t].manifest.name})" for t in sorted(table))
        raise TimestepError(f"dt: {what} trained for {available}; got {float(dt):g} s{hint}")
    return found
