"""``landcoupler emulators export --triton REPO``: a Triton Inference Server model repository of
the shipped emulators.

One model per emulator artifact directory (``REPO/<name>/config.pbtxt`` and version ``1/``),
named as the directory (``flux_lstm``, ``lai``, ...). The batch dimension is the backend's row
dimension (one (member, cell, tile) entry per row), so ``max_batch_size`` caps the rows of one
call and Triton's dynamic batcher may merge the calls of several sessions: every row is
independent. Recurrent emulators keep their state **explicit**: ``h``/``c`` are inputs and
``h_out``/``c_out`` outputs (no sequence batcher, no server-side state), so the session still
owns its state and any Triton instance can serve any step.

Platforms (``platform=``):

- ``python``: Triton's python backend with ``model.py`` (``emulators.serving.triton_model``)
  running the TorchScript artifact with torch. The only one the Triton server bundled with
  nvidia-pytriton can load (it ships the python backend alone), so it is the default and what
  the tests serve.
- ``onnxruntime_onnx``: the ONNX artifact on Triton's onnxruntime backend.
- ``pytorch_libtorch``: the TorchScript artifact on Triton's libtorch backend (its outputs are
  named ``<name>__<index>``, that backend's convention).
- ``tensorrt_plan``: a TensorRT engine built from the ONNX artifact by ``build_tensorrt.sh``
  (``trtexec``, on the GPU that will run it); the repository holds the ONNX file and the script,
  the engine ``model.plan`` only after it ran.

Each config carries ``landcoupler_manifest_hash`` (the manifest's hash), which the ``triton``
backend compares with its local manifest before it trusts the served network.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from emulators.manifest import Manifest, TensorSpec

PLATFORMS = ("python", "onnxruntime_onnx", "pytorch_libtorch", "tensorrt_plan")
#: the emulators the compiled backends load (``EmulatorConfig``'s flux and LAI defaults)
DEFAULT_EMULATORS = ("flux_lstm", "flux_lstm_daily", "lai", "lai_daily")
_FILES = {
    "python": ("torchscript", "model.ts"),
    "onnxruntime_onnx": ("onnx", "model.onnx"),
    "pytorch_libtorch": ("torchscript", "model.pt"),
    "tensorrt_plan": ("onnx", "model.onnx"),
}
_DTYPES = {"float32": "TYPE_FP32", "float64": "TYPE_FP64", "int64": "TYPE_INT64"}


@dataclass(frozen=True)
class RepositoryOptions:
    """``platform``: one of :data:`PLATFORMS`. ``max_batch_size``: rows per call (the
    backends' ``chunk_rows`` must not exceed it). ``instances``/``kind``: the instance group
    (KIND_CPU or KIND_GPU). ``max_queue_delay_us``: how long the dynamic batcher waits to merge
    calls. ``torch_threads``: intra-op threads of each python-backend instance."""

    platform: str = "python"
    max_batch_size: int = 16_384
    instances: int = 1
    kind: str = "KIND_CPU"
    max_queue_delay_us: int = 100
    torch_threads: int = 1

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform: must be one of {PLATFORMS}, got {self.platform!r}")
        for name in ("max_batch_size", "instances", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us: must be >= 0, got {self.max_queue_delay_us}")
        if self.kind not in ("KIND_CPU", "KIND_GPU"):
            raise ValueError(f"kind: must be KIND_CPU or KIND_GPU, got {self.kind!r}")
        if self.platform == "tensorrt_plan" and self.kind != "KIND_GPU":
            raise ValueError("kind: the tensorrt_plan platform runs on KIND_GPU only")


def _tensor(spec: TensorSpec, name: str) -> str:
    dims = [d for d in spec.shape[1:]]
    if spec.shape[0] != "rows" or not all(isinstance(d, int) for d in dims):
        raise ValueError(f"{spec.name}: shape {spec.shape} is not (rows, fixed...)")
    dtype = _DTYPES.get(spec.dtype)
    if dtype is None:
        raise ValueError(f"{spec.name}: dtype {spec.dtype!r} has no Triton type")
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(map(str, dims))} ] }}'


def config_pbtxt(name: str, manifest: Manifest, options: RepositoryOptions) -> str:
    """The ``config.pbtxt`` of emulator ``name`` (protobuf text format)."""
    o = options
    out_names = [s.name for s in manifest.outputs]
    if o.platform == "pytorch_libtorch":
        out_names = [f"{n}__{i}" for i, n in enumerate(out_names)]
    engine = 'backend: "python"' if o.platform == "python" else f'platform: "{o.platform}"'
    params = {
        "landcoupler_manifest_hash": manifest.hash(),
        "timestep_seconds": f"{manifest.timestep_seconds:g}",
        "recurrent_state": ",".join(manifest.recurrent_state.get("tensors", [])) or "none",
        "torch_threads": str(o.torch_threads),
    }
    lines = [
        f'name: "{name}"',
        engine,
        f"max_batch_size: {o.max_batch_size}",
        "input [",
        ",\n".join(_tensor(s, s.name) for s in manifest.inputs),
        "]",
        "output [",
        ",\n".join(_tensor(s, n) for s, n in zip(manifest.outputs, out_names, strict=True)),
        "]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {o.max_queue_delay_us} }}",
        f"instance_group [ {{ count: {o.instances} kind: {o.kind} }} ]",
        *(
            f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}'
            for k, v in params.items()
        ),
    ]
    return "\n".join(lines) + "\n"


def _trtexec(manifest: Manifest, max_rows: int) -> str:
    def shapes(rows: int) -> str:
        return ",".join(
            f"{s.name}:{'x'.join(str(d) for d in [rows, *s.shape[1:]])}" for s in manifest.inputs
        )

    return (
        'trtexec --onnx="$here/1/model.onnx" --saveEngine="$here/1/model.plan" '
        f"--minShapes={shapes(1)} --optShapes={shapes(max_rows)} --maxShapes={shapes(max_rows)}"
    )


def write_repository(
    repo: str | Path,
    artifacts: str | Path,
    emulators: tuple[str, ...] = DEFAULT_EMULATORS,
    options: RepositoryOptions | None = None,
) -> list[Path]:
    """Write the model repository ``repo`` (created; existing models of these names are
    replaced) from the artifact directories ``artifacts/<name>``. Returns the config files."""
    options = options or RepositoryOptions()
    repo = Path(repo)
    fmt, filename = _FILES[options.platform]
    written = []
    for name in emulators:
        source = Path(artifacts) / name
        manifest = Manifest.load(source)
        artifact = manifest.artifact_path(source, fmt)  # verifies the SHA-256
        model = repo / name
        if model.exists():
            shutil.rmtree(model)
        (model / "1").mkdir(parents=True)
        shutil.copyfile(artifact, model / "1" / filename)
        if options.platform == "python":
            shutil.copyfile(Path(__file__).with_name("triton_model.py"), model / "1" / "model.py")
        if options.platform == "tensorrt_plan":
            script = model / "build_tensorrt.sh"
            script.write_text(
                "#!/bin/sh\n# Build the TensorRT engine on the GPU that will serve it "
                "(TensorRT's trtexec).\nset -e\n"
                f'here="$(cd "$(dirname "$0")" && pwd)"\n'
                f"{_trtexec(manifest, options.max_batch_size)}\n"
            )
            script.chmod(0o755)
        shutil.copyfile(source / "manifest.json", model / "manifest.json")
        config = model / "config.pbtxt"
        config.write_text(config_pbtxt(name, manifest, options))
        written.append(config)
    return written
