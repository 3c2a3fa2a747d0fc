"""Export of emulator networks — the one export path of every recipe (flux, LAI, LULC U-Net):
TorchScript (the product card's in-process format), ``torch.export`` + AOTInductor packages (the
compiled forward path) and ONNX (for Triton/TensorRT, checked with onnxruntime), each checked
against the eager module, and the manifest (:func:`export_artifacts`, driven by an
:class:`ExportSpec`: formats, example and check inputs, dynamic dimensions, the manifest's
description of inputs, outputs and recurrent state).

TorchScript is deprecated in torch 2.13 and every ``torch.jit.script/save/load`` warns. We keep
it on purpose (it runs the same graph in-process on CPU and CUDA, and on Triton's libtorch backend)
and silence exactly that warning in ONE place: :func:`torchscript_quiet`.

Agreement: for each output column, ``max |a − b| ≤ rtol · max |b|`` (error relative to the column's
scale), the check used for every artifact (rtol = 1e-5; see :func:`relative_error`).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from emulators.manifest import Manifest, TensorSpec, file_entry
from emulators.provenance import code_version

Tensor = torch.Tensor


@contextlib.contextmanager
def torchscript_quiet() -> Iterator[None]:
    """Silence torch 2.13's DeprecationWarning for ``torch.jit.script/trace/save/load`` (and only
    that warning) inside the block. The one place landcoupler does so, on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, message=r"`torch\.jit\.\w+` is deprecated"
        )
        yield


# ---- TorchScript ------------------------------------------------------------------------------
def save_torchscript(
    module: nn.Module, path: str | Path, trace: Sequence[Tensor] | None = None
) -> Path:
    """Script ``module`` (eval mode) and save it to ``path``; with ``trace`` inputs, trace it
    instead (shape arithmetic is recorded, so other input shapes work)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if trace is not None:
        with torchscript_quiet(), torch.no_grad():
            traced = torch.jit.trace(module.eval(), tuple(trace), check_trace=False)
            torch.jit.save(traced, str(path))
        return path
    with torchscript_quiet():
        scripted = torch.jit.script(module.eval())
        torch.jit.save(scripted, str(path))
    return path


def load_torchscript(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """A ScriptModule from ``path`` on ``device`` (eval mode)."""
    with torchscript_quiet():
        module = torch.jit.load(str(path), map_location=device)
    return module.eval()


# ---- torch.export + AOTInductor ----------------------------------------------------------------
MAX_ROWS = 1 << 22


def _dynamic_rows(args: Sequence[Tensor]) -> tuple[dict[int, Any], ...]:
    rows = torch.export.Dim("rows", min=1, max=MAX_ROWS)
    return tuple({0: rows} for _ in args)


def export_program(module: nn.Module, args: Sequence[Tensor], dynamic_shapes: Any = None) -> Any:
    """``torch.export`` of ``module``; ``dynamic_shapes`` default: the leading (row) dimension of
    every input dynamic."""
    shapes = _dynamic_rows(args) if dynamic_shapes is None else dynamic_shapes
    return torch.export.export(module.eval(), tuple(args), dynamic_shapes=shapes, strict=False)


def save_aoti(
    module: nn.Module, args: Sequence[Tensor], path: str | Path, dynamic_shapes: Any = None
) -> Path:
    """Compile ``module`` ahead of time with AOTInductor (system C++ compiler; tens of seconds)
    into a ``.pt2`` package for the device of ``args``, for the portable CPU target of
    :mod:`emulators.cpu_target` (x86-64-v3 on x86), recorded in the package."""
    from torch._inductor import aoti_compile_and_package

    from emulators import cpu_target

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = export_program(module, args, dynamic_shapes)
    with torch.no_grad():
        out = aoti_compile_and_package(
            program, package_path=str(path), inductor_configs=cpu_target.compile_options()
        )
    return Path(out)


def load_aoti(path: str | Path) -> Callable[..., Any]:
    """The compiled callable of an AOTInductor package (runs on the device it was built for);
    a package this CPU cannot run is refused first (``cpu_target.CPUTargetError``), never
    loaded into a crash."""
    from torch._inductor import aoti_load_package

    from emulators import cpu_target

    cpu_target.check(Path(path))
    loaded: Callable[..., Any] = aoti_load_package(str(path))
    return loaded


# ---- ONNX --------------------------------------------------------------------------------------
def save_onnx(
    module: nn.Module,
    args: Sequence[Tensor],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: Any = None,
) -> Path:
    """ONNX (dynamo exporter); ``dynamic_shapes`` default: a dynamic leading ``rows`` dimension
    on every input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = _dynamic_rows(args) if dynamic_shapes is None else dynamic_shapes
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        program = torch.onnx.export(
            module.eval(),
            tuple(args),
            dynamo=True,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=shapes,
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))
    return path


def run_onnx(path: str | Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run an ONNX model with onnxruntime on CPU; outputs in the model's order."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return list(session.run(None, inputs))


# ---- agreement ---------------------------------------------------------------------------------
def relative_error(actual: Tensor | np.ndarray, expected: Tensor | np.ndarray) -> float:
    """max over columns of ``max |a − b| / max |b|`` (last axis = columns; the absolute error
    where a column of ``b`` is all zero)."""
    a = torch.as_tensor(actual).detach().cpu().double()
    b = torch.as_tensor(expected).detach().cpu().double()
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    a, b = (
        a.reshape(-1, a.shape[-1] if a.dim() else 1),
        b.reshape(-1, b.shape[-1] if b.dim() else 1),
    )
    err = (a - b).abs().amax(0)
    scale = b.abs().amax(0)
    rel = torch.where(scale > 0, err / scale.clamp_min(1e-300), err)
    return float(rel.max())


def compare(eager: Sequence[Tensor], other: Sequence[Tensor | np.ndarray], axis: int = -1) -> float:
    """Worst :func:`relative_error` over corresponding outputs, columns along ``axis``."""
    if len(eager) != len(other):
        raise ValueError(f"compare: {len(eager)} eager outputs vs {len(other)}")
    return max(
        relative_error(torch.as_tensor(o).movedim(axis, -1), e.movedim(axis, -1))
        for e, o in zip(eager, other, strict=True)
    )


# ---- the one export path: artifacts + checks + manifest -----------------------------------------
RTOL = 1e-5  # agreement every exported artifact must reach (relative_error)
FORMATS = ("torchscript", "onnx", "aoti")
SUFFIX = {"torchscript": ".ts", "onnx": ".onnx", "aoti": ".pt2"}


@dataclass(frozen=True)
class ExportSpec:
    """How to export one network and describe it in its manifest.

    ``inputs``/``outputs``: the manifest's tensor specs, in call order (their names are the ONNX
    names); a string in an input's shape is a dynamic dimension, ``"rows"``, or ``"8*h"`` for
    8 × the dimension ``h`` (``dims``: each name's (min, max)). ``example``: the inputs the graphs
    are traced, exported and compiled with; ``checks``: the inputs each artifact is compared with
    the eager module on (default: the example), columns along ``axis`` of every output.
    ``recurrent_state``: the state layout recorded in the manifest."""

    architecture: str
    config: dict[str, Any]
    timestep_seconds: float
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    example: tuple[Tensor, ...]
    recurrent_state: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    dims: Mapping[str, tuple[int, int]] = field(default_factory=lambda: {"rows": (1, MAX_ROWS)})
    checks: tuple[tuple[Tensor, ...], ...] = ()
    axis: int = -1
    torchscript: Literal["script", "trace"] = "script"
    formats: tuple[str, ...] = FORMATS

    def __post_init__(self) -> None:
        if len(self.example) != len(self.inputs):
            raise ValueError(f"example: {len(self.example)} tensors for {len(self.inputs)} inputs")
        if unknown := set(self.formats) - set(FORMATS):
            raise ValueError(f"formats: unknown {sorted(unknown)}; known: {FORMATS}")
        if "torchscript" not in self.formats:
            raise ValueError("formats: the TorchScript artifact is required (weights, serving)")

    def dynamic_shapes(self) -> tuple[dict[int, Any], ...]:
        """``torch.export`` dynamic shapes of the inputs (fresh ``Dim`` objects per call)."""
        dim = {name: torch.export.Dim(name, min=lo, max=hi) for name, (lo, hi) in self.dims.items()}
        shapes = []
        for spec in self.inputs:
            axes: dict[int, Any] = {}
            for i, size in enumerate(spec.shape):
                if isinstance(size, str):
                    factor, _, name = size.rpartition("*")
                    axes[i] = int(factor) * dim[name] if factor else dim[name]
            shapes.append(axes)
        return tuple(shapes)


def _outputs(out: Any) -> tuple[Any, ...]:
    return (out,) if isinstance(out, (Tensor, np.ndarray)) else tuple(out)


def check_artifact(model: nn.Module, fmt: str, path: Path, spec: ExportSpec) -> float:
    """Worst agreement (:func:`compare`) of the artifact ``fmt`` at ``path`` with eager ``model``
    over the spec's check inputs (NaN if any output is NaN)."""
    names = [s.name for s in spec.inputs]
    run: Callable[..., Any]
    if fmt == "torchscript":
        run = load_torchscript(path)
    elif fmt == "aoti":
        run = load_aoti(path)
    elif fmt == "onnx":

        def run(*args: Tensor) -> list[np.ndarray]:
            return run_onnx(path, {n: a.numpy() for n, a in zip(names, args, strict=True)})
    else:
        raise ValueError(f"format: unknown artifact format {fmt!r}")
    model.eval()
    errors = []
    with torch.no_grad():
        for args in spec.checks or (spec.example,):
            errors.append(compare(_outputs(model(*args)), _outputs(run(*args)), spec.axis))
    return math.nan if any(math.isnan(e) for e in errors) else max(errors)


def export_artifacts(
    model: nn.Module,
    directory: Path,
    spec: ExportSpec,
    *,
    name: str,
    training: dict[str, Any],
    skill: Sequence[dict[str, Any]] = (),
    compile_aoti: bool = True,
) -> Manifest:
    """Write ``model``'s artifacts (files named after ``directory``), check each against eager to
    :data:`RTOL` and write the manifest; returns it."""
    model = model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    args = spec.example
    formats = [f for f in spec.formats if compile_aoti or f != "aoti"]
    files: dict[str, Path] = {}
    for fmt in formats:
        path = directory / f"{directory.name}{SUFFIX[fmt]}"
        if fmt == "torchscript":
            trace = args if spec.torchscript == "trace" else None
            files[fmt] = save_torchscript(model, path, trace)
        elif fmt == "onnx":
            names = [s.name for s in spec.inputs]
            outs = [s.name for s in spec.outputs]
            files[fmt] = save_onnx(model, args, path, names, outs, spec.dynamic_shapes())
        else:
            files[fmt] = save_aoti(model, args, path, spec.dynamic_shapes())
    checks = {fmt: check_artifact(model, fmt, p, spec) for fmt, p in files.items()}
    bad = {k: v for k, v in checks.items() if not v <= RTOL}
    if bad:
        raise RuntimeError(f"exported artifacts disagree with eager beyond {RTOL:g}: {bad}")
    manifest = Manifest(
        name=name,
        architecture=spec.architecture,
        config=spec.config,
        timestep_seconds=float(spec.timestep_seconds),
        inputs=spec.inputs,
        outputs=spec.outputs,
        recurrent_state=spec.recurrent_state,
        artifacts={k: file_entry(p) for k, p in files.items()},
        training=training,
        code_version=code_version(),
        export_checks=checks,
        skill=list(skill),
        notes=spec.notes,
    )
    manifest.save(directory)
    return manifest
