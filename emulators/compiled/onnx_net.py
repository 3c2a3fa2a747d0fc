"""ONNX Runtime as an emulator network: an ``InferenceSession`` behind the call signature of the
TorchScript/AOTInductor modules (torch tensors in, torch tensors out, one tensor when the model
has one output), so the compiled backend's features, closure and tile code run unchanged.

CPU by default; ``device="cuda"`` asks for ONNX Runtime's ``CUDAExecutionProvider`` (the
``onnxruntime-gpu`` wheel) and refuses with a RuntimeError when this onnxruntime has none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor


def providers_for(device: str) -> list[str]:
    """The execution providers for ``device`` ("cpu" or "cuda")."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(
                "device: 'cuda' needs onnxruntime's CUDAExecutionProvider (onnxruntime-gpu); "
                f"this onnxruntime has {', '.join(available)}"
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]  # type: ignore[list-item]
    raise RuntimeError(f"device: must be 'cpu' or 'cuda[:N]', got {device!r}")


class OnnxNet:
    """An ONNX model file run by ONNX Runtime, called like the TorchScript module."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(path)
        self.device = device
        self.session = ort.InferenceSession(str(path), options, providers=providers_for(device))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *args: Tensor) -> Any:
        if len(args) != len(self.input_names):
            raise ValueError(
                f"{self.path.name}: expected {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), got {len(args)}"
            )
        device = args[0].device if args else torch.device("cpu")
        feed = {
            name: np.ascontiguousarray(a.detach().to("cpu", torch.float32).numpy())
            for name, a in zip(self.input_names, args, strict=True)
        }
        outs = [torch.from_numpy(o).to(device) for o in self.session.run(None, feed)]
        return outs[0] if len(outs) == 1 else tuple(outs)
