"""Export of emulator networks: TorchScript (the product card's in-process format), ``torch.export``
+ AOTInductor packages (the compiled forward path) and ONNX (for Triton/TensorRT, checked with
onnxruntime), with agreement checks against the eager module.

TorchScript is deprecated in torch 2.13 and every ``torch.jit.script/save/load`` warns. We keep
it on purpose (it runs the same graph in-process on CPU and CUDA, and on Triton's libtorch backend)
and silence exactly that warning in ONE place: :func:`torchscript_quiet`.

Agreement: for each output column, ``max |a − b| ≤ rtol · max |b|`` (error relative to the column's
scale), the check used for every artifact (rtol = 1e-5; see :func:`relative_error`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
def save_torchscript(module: nn.Module, path: str | Path) -> Path:
    """Script ``module`` (eval mode) and save it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
def _dynamic_rows(args: Sequence[Tensor]) -> tuple[dict[int, Any], ...]:
    rows = torch.export.Dim("rows", min=1, max=1 << 22)
    return tuple({0: rows} for _ in args)


def export_program(module: nn.Module, args: Sequence[Tensor]) -> Any:
    """``torch.export`` of ``module`` with the leading (row) dimension of every input dynamic."""
    return torch.export.export(module.eval(), tuple(args), dynamic_shapes=_dynamic_rows(args))


def save_aoti(module: nn.Module, args: Sequence[Tensor], path: str | Path) -> Path:
    """Compile ``module`` ahead of time with AOTInductor (system C++ compiler; tens of seconds)
    into a ``.pt2`` package for the device of ``args``."""
    from torch._inductor import aoti_compile_and_package

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = export_program(module, args)
    with torch.no_grad():
        out = aoti_compile_and_package(program, package_path=str(path))
    return Path(out)


def load_aoti(path: str | Path) -> Callable[..., Any]:
    """The compiled callable of an AOTInductor package (runs on the device it was built for)."""
    from torch._inductor import aoti_load_package

    loaded: Callable[..., Any] = aoti_load_package(str(path))
    return loaded


# ---- ONNX --------------------------------------------------------------------------------------
def save_onnx(
    module: nn.Module,
    args: Sequence[Tensor],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
) -> Path:
    """ONNX (dynamo exporter) with a dynamic leading ``rows`` dimension on every input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = torch.export.Dim("rows", min=1, max=1 << 22)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        program = torch.onnx.export(
            module.eval(),
            tuple(args),
            dynamo=True,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=tuple({0: rows} for _ in args),
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


def compare(eager: Sequence[Tensor], other: Sequence[Tensor | np.ndarray]) -> float:
    """Worst :func:`relative_error` over corresponding outputs."""
    if len(eager) != len(other):
        raise ValueError(f"compare: {len(eager)} eager outputs vs {len(other)}")
    return max(relative_error(o, e) for e, o in zip(eager, other, strict=True))
