"""The ``triton`` land backend: the compiled-emulator backend whose networks run on a Triton
Inference Server (``tritonclient.grpc``), serving the repository of ``landcoupler emulators
export --triton``. Features, closure, tiles and phenology are the in-process backend's
(``emulators.compiled.emulator.EmulatorBackend``); only the network call goes to Triton.

Server: ``url`` (HOST:PORT of Triton's gRPC endpoint), else ``$LANDCOUPLER_TRITON_URL``
(``landcoupler serve --triton-url`` passes it through the registry's ``BackendOptions``).

Transport: on a loopback server the tensors travel through **system shared memory**: each
served model gets input and output regions sized for ``max_batch_size`` rows, registered with
the server once and reused by every later call (a pool: concurrent sessions take one set each),
unregistered and unlinked by :meth:`TritonBackend.close`. A remote server (any other host) gets
plain tensors in the gRPC messages. ``shared_memory=`` (or ``$LANDCOUPLER_TRITON_SHM`` = 1 / 0)
forces either: a Triton sidecar on localhost needs the pod's ``/dev/shm`` shared with it for
shared memory, else set 0.

Before it trusts a served model the backend compares the config's ``landcoupler_manifest_hash``
with the hash of its local manifest (the same artifact files), and refuses a mismatch.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.manifest import Manifest

URL_ENV = "LANDCOUPLER_TRITON_URL"
#: "1" / "0" forces shared memory on / off; unset or "auto": on for a loopback URL
SHM_ENV = "LANDCOUPLER_TRITON_SHM"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
CONNECT_TIMEOUT = 10.0  # s: a server that does not answer readiness in time is unavailable
Tensor = torch.Tensor


def is_loopback(url: str) -> bool:
    return url.rsplit(":", 1)[0] in LOOPBACK


class _Regions:
    """One set of system shared-memory regions of a model: inputs then outputs."""

    def __init__(self, client: Any, model: str, in_bytes: int, out_bytes: int) -> None:
        import tritonclient.utils.shared_memory as shm

        tag = uuid.uuid4().hex[:12]
        self.client = client
        self.names = (f"lc_{model}_{tag}_in", f"lc_{model}_{tag}_out")
        self.handles = []
        for name, size in zip(self.names, (in_bytes, out_bytes), strict=True):
            handle = shm.create_shared_memory_region(name, f"/{name}", size, create_only=True)
            self.handles.append(handle)
            client.register_system_shared_memory(name, f"/{name}", size)

    def buffer(self, which: int) -> memoryview:
        buf: memoryview = self.handles[which]._mpsm_handle.buf
        return buf

    def close(self) -> None:
        import tritonclient.utils.shared_memory as shm

        for name, handle in zip(self.names, self.handles, strict=True):
            try:
                self.client.unregister_system_shared_memory(name)
            finally:
                shm.destroy_shared_memory_region(handle)
        self.handles = []


class TritonNet:
    """A model served by Triton, called like the TorchScript module (torch tensors in and out;
    one tensor when the model has one output)."""

    def __init__(self, client: Any, model: str, manifest: Manifest, shared_memory: bool) -> None:
        config = client.get_model_config(model, as_json=True, client_timeout=CONNECT_TIMEOUT)
        config = config["config"]
        served = config.get("parameters", {}).get("landcoupler_manifest_hash", {})
        if served.get("string_value") != manifest.hash():
            raise RuntimeError(
                f"triton: model {model!r} does not serve the local {manifest.name} artifact "
                "(landcoupler_manifest_hash differs): re-export the repository with "
                "`landcoupler emulators export --triton`"
            )
        self.client, self.model = client, model
        self.inputs = [(i["name"], int(i["dims"][0])) for i in config["input"]]
        self.outputs = [(o["name"], int(o["dims"][0])) for o in config["output"]]
        self.max_rows = int(config.get("max_batch_size", 0)) or 16_384
        self.shared_memory = shared_memory
        self._lock = threading.Lock()
        self._free: list[_Regions] = []
        self._all: list[_Regions] = []

    def _take(self) -> _Regions:
        with self._lock:
            if self._free:
                return self._free.pop()
        in_bytes = self.max_rows * 4 * sum(w for _, w in self.inputs)
        out_bytes = self.max_rows * 4 * sum(w for _, w in self.outputs)
        regions = _Regions(self.client, self.model, in_bytes, out_bytes)
        with self._lock:
            self._all.append(regions)
        return regions

    def __call__(self, *args: Tensor) -> Any:
        if len(args) != len(self.inputs):
            raise ValueError(f"{self.model}: expected {len(self.inputs)} inputs, got {len(args)}")
        device = args[0].device
        arrays = [np.ascontiguousarray(a.detach().to("cpu", torch.float32).numpy()) for a in args]
        rows = arrays[0].shape[0]
        parts = [
            self._infer([a[s : s + self.max_rows] for a in arrays])
            for s in range(0, rows, self.max_rows)
        ]
        outs = [
            torch.from_numpy(np.concatenate([p[i] for p in parts])) for i in range(len(parts[0]))
        ]
        outs = [o.to(device) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _infer(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        import tritonclient.grpc as grpcclient

        rows = arrays[0].shape[0]
        inputs = [grpcclient.InferInput(name, [rows, width], "FP32") for name, width in self.inputs]
        if not self.shared_memory:
            for inp, a in zip(inputs, arrays, strict=True):
                inp.set_data_from_numpy(a)
            result = self.client.infer(self.model, inputs)
            return [result.as_numpy(name).copy() for name, _ in self.outputs]
        regions = self._take()
        try:
            offset = 0
            buf = regions.buffer(0)
            for inp, a in zip(inputs, arrays, strict=True):
                np.ndarray(a.shape, np.float32, buffer=buf, offset=offset)[:] = a
                inp.set_shared_memory(regions.names[0], a.nbytes, offset)
                offset += a.nbytes
            outputs, offsets, offset = [], [], 0
            for name, width in self.outputs:
                out = grpcclient.InferRequestedOutput(name)
                out.set_shared_memory(regions.names[1], rows * width * 4, offset)
                outputs.append(out)
                offsets.append(offset)
                offset += rows * width * 4
            self.client.infer(self.model, inputs, outputs=outputs)
            out_buf = regions.buffer(1)
            return [
                np.ndarray((rows, width), np.float32, buffer=out_buf, offset=off).copy()
                for (_, width), off in zip(self.outputs, offsets, strict=True)
            ]
        finally:
            with self._lock:
                self._free.append(regions)

    def close(self) -> None:
        """Unregister and unlink every shared-memory region of this model."""
        with self._lock:
            regions, self._all, self._free = self._all, [], []
        for r in regions:
            r.close()


class TritonBackend(EmulatorBackend):
    """``triton``: the emulator backend with its networks served by Triton (module docstring)."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        url: str | None = None,
        shared_memory: bool | None = None,
    ) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        url = url or os.environ.get(URL_ENV)
        if not url:
            raise RuntimeError(
                f"triton_url: no Triton server configured (landcoupler serve --triton-url "
                f"HOST:PORT, or ${URL_ENV})"
            )
        self.url = url
        if shared_memory is None:
            choice = os.environ.get(SHM_ENV, "auto").strip().lower()
            if choice not in ("auto", "", "0", "1"):
                raise RuntimeError(f"{SHM_ENV}: must be auto, 0 or 1, got {choice!r}")
            shared_memory = is_loopback(url) if choice in ("auto", "") else choice == "1"
        self.shared_memory = shared_memory
        self._client: Any = grpcclient.InferenceServerClient(url)
        self._nets: list[TritonNet] = []
        try:
            ready = self._client.is_server_ready(client_timeout=CONNECT_TIMEOUT)
        except InferenceServerException as exc:
            self._client.close()
            raise ConnectionError(f"triton_url: no Triton server at {url}: {exc}") from exc
        if not ready:
            self._client.close()
            raise ConnectionError(f"triton_url: the Triton server at {url} is not ready")

        def load(manifest: Manifest, directory: Path, device: str) -> Callable[..., Any]:
            try:
                net = TritonNet(self._client, directory.name, manifest, self.shared_memory)
            except InferenceServerException as exc:
                raise RuntimeError(f"triton: model {directory.name!r}: {exc}") from exc
            self._nets.append(net)
            return net

        try:
            super().__init__(config or EmulatorConfig(device="cpu"), loader="triton", load=load)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Unregister the shared memory of every model and close the connection (idempotent)."""
        nets, self._nets = self._nets, []
        client, self._client = self._client, None
        try:
            for net in nets:
                net.close()
        finally:
            if client is not None:
                client.close()
