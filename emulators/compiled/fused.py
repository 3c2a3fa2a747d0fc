"""``fused``: the ``flux_lstm`` network's step as one native CPU operator.

Why: the network's matrix products run near the CPU's float32 peak, but TorchScript runs its
~20 elementwise kernels (gates, cell update, task gating, heads) as separate passes over
memory, so the whole call reached a quarter of the peak (docs/benchmarks.md). The operator in
``native/flux_lstm.cpp`` cuts the rows into blocks; on each core a block's matrix products run
single-threaded in BLAS and its elementwise work runs vectorised on the block's values while
they are still in cache.

The operator is compiled on first use, on the machine that runs it (``-O3 -march=native``, the
system C++ compiler and torch's headers, ~10 s), into a cache keyed by the source, the flags,
torch's version, the compiler and the CPU (``LANDCOUPLER_CACHE``, else
``$XDG_CACHE_HOME/landcoupler``, else ``~/.cache/landcoupler``). It takes the weights of the
network's TorchScript artifact (the same file, checked against its manifest's sha256, that the
``torchscript`` backend runs) and agrees with it to float32 round-off (the nonlinearities use a
polynomial exp of relative error ~1e-7). It needs torch's x86_64 CPU build, whose
``libtorch_cpu`` exports BLAS's ``sgemm_`` (MKL)."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

Tensor = torch.Tensor
SOURCE = Path(__file__).with_name("native") / "flux_lstm.cpp"
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
         "-std=c++20", "-shared", "-fPIC")  # fmt: skip
#: the operator's parameters, in its order (``FluxLSTM``'s state-dict names)
PARAMS = ("inputs.mean", "inputs.std", "wx.weight", "wx.bias", "wh.weight", "head_w1",
          "head_b1", "head_w2", "head_b2", "outputs.mean", "outputs.std")  # fmt: skip
#: rows per block: a block's pre-activations (rows × (4H + T·H) float32, 442 kB at H = 48, T = 5)
#: stay in one core's L2 cache
BLOCK = 256


class NativeBuildError(RuntimeError):
    """The fused operator could not be compiled or loaded on this machine."""


def cache_dir() -> Path:
    """Where compiled operators are kept (see module docstring)."""
    if os.environ.get("LANDCOUPLER_CACHE"):
        return Path(os.environ["LANDCOUPLER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "landcoupler"


def compiler() -> str:
    """The C++ compiler: ``$CXX``, else ``g++``, else ``c++``."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return name
    raise NativeBuildError(
        "fused: no C++ compiler found ($CXX, g++ or c++); install one (Debian: "
        "`apt-get install g++`, or `make native-deps` as root) or use the torchscript backend"
    )


def _cpu() -> str:
    """The CPU's model name and feature flags (what ``-march=native`` compiles for)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    first = text.split("\n\n", 1)[0]
    keep = ("model name", "flags", "Features", "CPU part")
    return "\n".join(line for line in first.splitlines() if line.split(":")[0].strip() in keep)


def _command(cxx: str, out: Path) -> list[str]:
    from torch.utils import cpp_extension

    abi = int(torch.compiled_with_cxx11_abi())
    libs = cpp_extension.library_paths()[0]
    return [
        cxx, *FLAGS, f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        *(f"-I{p}" for p in cpp_extension.include_paths()),
        str(SOURCE), f"-L{libs}", f"-Wl,-rpath,{libs}", "-ltorch_cpu", "-lc10", "-ltorch",
        "-o", str(out),
    ]  # fmt: skip


def library(cache: Path | None = None) -> Path:
    """The compiled operator for this machine, compiled now if the cache has none."""
    cxx = compiler()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(
        "\0".join(
            (SOURCE.read_text(), " ".join(FLAGS), torch.__version__, version, _cpu())
        ).encode()
    ).hexdigest()[:16]
    directory = cache or cache_dir()
    path = directory / f"flux_lstm-{key}.so"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        partial = Path(tmp) / path.name
        done = subprocess.run(_command(cxx, partial), capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "error" in line]
            raise NativeBuildError(
                f"fused: compiling {SOURCE.name} with {cxx} failed (exit {done.returncode}): "
                + ("; ".join(errors[:5]) or done.stderr[-2000:])
            )
        os.replace(partial, path)  # atomic: concurrent builds leave one complete file
    return path


@functools.lru_cache(maxsize=1)
def operator() -> Any:
    """``torch.ops.landcoupler.flux_lstm_step``, compiled and loaded once per process."""
    path = library()
    try:
        torch.ops.load_library(str(path))
    except OSError as err:
        raise NativeBuildError(
            f"fused: loading {path} failed ({err}); the operator needs torch's x86_64 CPU "
            "build, whose libtorch_cpu exports BLAS sgemm_"
        ) from err
    return torch.ops.landcoupler.flux_lstm_step


class FusedFluxLSTM:
    """``flux_lstm``'s ``forward(x (N, F), h (N, H), c (N, H)) -> (y (N, T), h, c)`` with the
    given weights (float32, CPU), run by the fused operator in blocks of ``block`` rows."""

    def __init__(
        self, config: Mapping[str, Any], weights: Mapping[str, Tensor], block: int = BLOCK
    ) -> None:
        if config.get("physics", False):
            raise ValueError(
                "fused: flux_lstm with physics=true (derived Penman-Monteith inputs) is not "
                "supported; use the torchscript backend"
            )
        if not isinstance(block, int) or not 1 <= block <= 65_536:
            raise ValueError(f"block: must be an integer in [1, 65536], got {block!r}")
        missing = [name for name in PARAMS if name not in weights]
        if missing:
            raise ValueError(f"fused: flux_lstm weights lack {missing}")
        self.params = [weights[n].detach().to("cpu", torch.float32).contiguous() for n in PARAMS]
        f, h = int(config["n_features"]), int(config["hidden"])
        shapes = {"inputs.mean": (f,), "wh.weight": (4 * h, h)}
        for name, p in zip(PARAMS, self.params, strict=True):
            if name in shapes and tuple(p.shape) != shapes[name]:
                raise ValueError(
                    f"fused: {name} has shape {tuple(p.shape)}, the config says {shapes[name]}"
                )
        self.block = block
        self._op = operator()

    @classmethod
    def from_torchscript(cls, path: Path, config: Mapping[str, Any]) -> FusedFluxLSTM:
        """The weights of a ``flux_lstm`` TorchScript artifact."""
        from emulators.export import load_torchscript

        return cls(config, dict(load_torchscript(path, "cpu").state_dict()))

    def __call__(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out: tuple[Tensor, Tensor, Tensor] = self._op(x, h, c, self.params, self.block)
        return out
