"""The CPU an AOTInductor package is compiled for, and whether this CPU can run it.

AOTInductor compiles C++ with ``-march=native`` and vectorises for the best ISA of the machine it
compiles on, by default. A package built on an AVX-512 machine then dies with SIGILL (the whole
server with it) on a CPU without AVX-512: measured 2026-12-07 on an AMD EPYC without AVX-512,
where every shipped ``.pt2`` (built on AVX-512 Xeons and EPYCs) crashed at load. So the packages
are compiled for a portable target, :data:`X86_TARGET` (x86-64-v3: AVX2 and FMA), vectorised
for AVX2, the target recorded in the package's metadata (:data:`TARGET_KEY`); and before a
package is loaded, :func:`check` refuses one this CPU cannot run with :class:`CPUTargetError` (a
``RuntimeError``: a backend then reports itself unavailable with the reason), never a crash.
Other architectures keep torch's defaults (``native``).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: the x86 target of the packages this code compiles (gcc's micro-architecture level)
X86_TARGET = "x86-64-v3"
#: the vector width AOTInductor vectorises for with :data:`X86_TARGET` (AVX2)
X86_SIMDLEN = 256
#: the /proc/cpuinfo flags :data:`X86_TARGET` needs beyond x86-64 (``abm``: LZCNT)
X86_TARGET_FLAGS = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
#: the package metadata key holding the target a package was compiled for
TARGET_KEY = "landcoupler_cpu_target"
#: the package metadata key in which torch records the ISA it vectorised for
ISA_KEY = "AOTI_CPU_ISA"


class CPUTargetError(RuntimeError):
    """An AOTInductor package this CPU cannot run (``rule``: ``cpu_machine``, ``cpu_isa``,
    ``cpu_target`` or ``unknown_target``)."""

    def __init__(self, path: Path, rule: str, message: str) -> None:
        super().__init__(f"{path.name}: {message}")
        self.path, self.rule = path, rule


def x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def target() -> str:
    """The target this machine compiles packages for: :data:`X86_TARGET` on x86-64, else
    ``native``."""
    return X86_TARGET if x86() else "native"


def compile_options() -> dict[str, Any]:
    """``aoti_compile_and_package``'s ``inductor_configs``: :func:`target`, its vector width, and
    the target in the package's metadata."""
    options: dict[str, Any] = {"aot_inductor.metadata": {TARGET_KEY: target()}}
    if x86():
        options |= {"cpp.march": X86_TARGET, "cpp.simdlen": X86_SIMDLEN}
    return options


def cpu_flags() -> frozenset[str] | None:
    """This CPU's feature flags (Linux ``/proc/cpuinfo``); None where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def supported_isa() -> frozenset[str]:
    """The vector ISA names (as torch records them, upper case) this CPU supports."""
    from torch._inductor.cpu_vec_isa import valid_vec_isa_list

    return frozenset(word.upper() for isa in valid_vec_isa_list() for word in str(isa).split())


def metadata(path: Path) -> dict[str, str]:
    """The metadata torch and this module recorded in the package at ``path``."""
    import torch

    loader: Any = torch._C._aoti.AOTIModelPackageLoader  # the stubs lack this static method
    return dict(loader.load_metadata_from_package(str(path), "model"))


def check(path: Path, recorded: Mapping[str, str] | None = None) -> None:
    """Refuse (:class:`CPUTargetError`) the package at ``path`` (its ``recorded`` metadata, read
    from it by default) if this CPU cannot run it: a vector ISA it lacks, a target whose flags it
    lacks, or no recorded target on x86 (compiled with ``-march=native`` somewhere: any
    instruction of that machine may be in it; re-export it here)."""
    recorded = metadata(path) if recorded is None else recorded
    machine = recorded.get("AOTI_MACHINE")
    if machine is not None and machine.lower() != platform.machine().lower():
        raise CPUTargetError(
            path, "cpu_machine", f"compiled for {machine}; this machine is {platform.machine()}"
        )
    isa = set(recorded.get(ISA_KEY, "").upper().split()) - {"INVALID_VEC_ISA"}  # scalar code
    lacking = sorted(isa - supported_isa())
    if lacking:
        raise CPUTargetError(
            path,
            "cpu_isa",
            f"compiled for {' '.join(sorted(isa))}; this CPU lacks {' '.join(lacking)}: serve "
            "the torchscript or onnx artifact, or re-export the package here "
            "(`landcoupler emulators export NAME`)",
        )
    built_for = recorded.get(TARGET_KEY)
    if built_for is None:
        if x86():
            raise CPUTargetError(
                path,
                "unknown_target",
                "compiled for an unrecorded CPU target (-march=native on its build machine); "
                f"re-export it for {X86_TARGET} (`landcoupler emulators export NAME`)",
            )
        return
    if built_for == X86_TARGET:
        flags = cpu_flags()
        missing = [] if flags is None else [f for f in X86_TARGET_FLAGS if f not in flags]
        if missing:
            raise CPUTargetError(
                path,
                "cpu_target",
                f"compiled for {X86_TARGET}; this CPU lacks {' '.join(missing)}",
            )
