"""The Triton python-backend model that ``landcoupler emulators export --triton`` writes as
``REPO/<emulator>/1/model.py``: it runs the TorchScript artifact beside it (``model.ts``) on CPU
with torch, one batched call for every request Triton's dynamic batcher hands it.

It runs inside Triton's python-backend stub, not in landcoupler: it imports only torch, numpy and
``triton_python_backend_utils``. The stub ignores ``PYTHONPATH``, so the directories of
``$LANDCOUPLER_TRITON_SITE_PACKAGES`` (os.pathsep-separated; the Triton venv's site-packages,
set by ``emulators.serving.triton_server``) go to the front of ``sys.path`` at initialisation.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any


def _site_packages() -> None:
    extra = os.environ.get("LANDCOUPLER_TRITON_SITE_PACKAGES", "")
    for path in reversed([p for p in extra.split(os.pathsep) if p]):
        if path not in sys.path:
            sys.path.insert(0, path)


class TritonPythonModel:
    """Triton's python-backend interface: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args: dict[str, str]) -> None:
        _site_packages()
        import torch

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        torch.set_num_threads(int(params.get("torch_threads", "1")))
        directory = os.path.join(args["model_repository"], args["model_version"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(os.path.join(directory, "model.ts"), map_location="cpu")
        self.net = net.eval()
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np
        import torch
        import triton_python_backend_utils as pb_utils

        arrays = [
            [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs]
            for r in requests
        ]
        sizes = [a[0].shape[0] for a in arrays]
        args = [
            torch.from_numpy(np.ascontiguousarray(np.concatenate([a[i] for a in arrays])))
            for i in range(len(self.inputs))
        ]
        with torch.no_grad():
            out = self.net(*args)
        outs = out if isinstance(out, tuple) else (out,)
        responses = []
        start = 0
        for n in sizes:
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(o[start : start + n].numpy()))
                for name, o in zip(self.outputs, outs, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses

    def finalize(self) -> None:
        self.net = None
