"""The physics around the flux network compiled by TorchInductor (the ``fused`` backend's).

Why: with the network as one native operator (``fused``), the float64 physics around it —
input features, the water rows' energy balance (a Newton solve, ``open_water``) and the
constraint layer (``closure``) — ran as ~1 000 small torch operations per step, each a pass
over a few hundred kB: at 10 000 cells they took longer than the network itself (outside ÷
network 1.33×, docs/benchmarks.md). ``torch.compile`` (Inductor's C++ code generation) fuses
them into a few loops over the rows.

What changes: not a bit of the algorithm, but the arithmetic's order and its exp/log/pow
(Inductor's vectorised ones), so results agree with the eager physics to float64 round-off,
not bitwise (tested); the constraint layer still closes water and energy exactly by
construction (the backend contract's conservation tests run with it). The bitwise goldens of
the other emulator backends are untouched: they run :data:`flux_step.EAGER`.

Three properties of ``torch.compile`` shape this module:

- it is not thread-safe (pytorch/pytorch#118260, #136833), and sessions step in threads: every
  call of a compiled function holds one process-wide lock;
- the first call of each function compiles it (a session's first hourly step took 49 s on the
  2-core machine with an empty cache; a few more seconds for a new step length, a constant of
  the graph); Inductor's on-disk cache (its ``TORCHINDUCTOR_CACHE_DIR``) cuts a later process's
  first step to the tracing (17 s there; :func:`warm_up` fills the cache ahead); the kernels use
  the torch thread count of the call that compiled them;
- it needs a C++ compiler and Python's headers (its kernels' Python bindings include
  ``Python.h``): where either is missing, or Inductor fails, the eager physics runs, with a
  warning naming why (``make native-deps`` installs both).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emulators.compiled import closure, fused, open_water, row_step
from emulators.compiled.flux_step import EAGER, StepKernels, features

log = logging.getLogger(__name__)

#: held by every call of a compiled function (``torch.compile`` is not thread-safe)
_LOCK = threading.RLock()

Compile = Callable[[Callable[..., Any]], Callable[..., Any]]


def _torch_compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled by Inductor with dynamic row counts."""
    return torch.compile(fn, dynamic=True)


class Compiled:
    """``fn`` compiled on first call (``compile``, default :func:`torch.compile` with dynamic
    shapes) and called under the process-wide lock. If Inductor fails to build it
    (``BackendCompilerFailed``: nothing has run yet), the eager ``fn`` runs from then on and
    :attr:`failed` says why (logged once)."""

    def __init__(self, fn: Callable[..., Any], compile: Compile = _torch_compile) -> None:
        from torch._dynamo.exc import BackendCompilerFailed

        self._build_error = BackendCompilerFailed  # imported once, not on every step
        self.fn = fn
        self._compile = compile
        self._compiled: Callable[..., Any] | None = None
        #: why the compiled function could not be built (None: it was, or not yet tried)
        self.failed: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            if self.failed is None:
                if self._compiled is None:
                    self._compiled = self._compile(self.fn)
                try:
                    return self._compiled(*args, **kwargs)
                except self._build_error as e:
                    inner = getattr(e, "inner_exception", None) or e
                    first = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
                    self.failed = f"{type(inner).__name__}: {first}"
                    log.warning(
                        "compiled physics: Inductor could not build %s (%s); running it eager",
                        getattr(self.fn, "__qualname__", self.fn),
                        self.failed,
                    )
        return self.fn(*args, **kwargs)


def unavailable() -> str | None:
    """Why Inductor cannot compile on this machine (no C++ compiler, no ``Python.h``); None:
    it can."""
    try:
        fused.compiler()
    except fused.NativeBuildError as e:
        return str(e)
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        return (
            f"no Python headers ({header}); install them (Debian: `apt-get install "
            f"python3-dev`, or `make native-deps` as root)"
        )
    return None


@dataclass(frozen=True)
class Physics:
    """The physics of an emulator backend's step around its networks: ``kernels`` (features,
    water rows, constraint layer), ``sums`` (the daily accumulators, ``row_step.daily_sums``)
    and ``label``: ``"inductor"``, ``"eager"``, or ``"eager (why)"`` where compiling was asked
    for and this machine cannot."""

    kernels: StepKernels
    sums: row_step.DailySums
    label: str

    @property
    def failed(self) -> str | None:
        """Why a compiled function fell back to eager (None: none did)."""
        parts = (self.kernels.features, self.kernels.water, self.kernels.close, self.sums)
        return next((f for k in parts if (f := getattr(k, "failed", None))), None)


EAGER_PHYSICS = Physics(EAGER, row_step.daily_sums, "eager")


@functools.cache
def compiled_physics() -> Physics:
    """The step's physics compiled (one set per process: its compiled graphs are shared)."""
    kernels = StepKernels(
        features=Compiled(features),
        water=Compiled(open_water.OpenWater.fluxes),
        close=Compiled(closure.close),
    )
    return Physics(kernels, Compiled(row_step.daily_sums), "inductor")


def physics(compile_physics: bool) -> Physics:
    """The eager physics, or with ``compile_physics`` the compiled one where this machine can
    compile (else the eager one labelled why, warned once per reason)."""
    if not compile_physics:
        return EAGER_PHYSICS
    why = unavailable()
    if why is not None:
        _warn_once(why)
        return dataclasses.replace(EAGER_PHYSICS, label=f"eager ({why})")
    return compiled_physics()


@functools.cache
def _warn_once(why: str) -> None:
    log.warning("compiled physics unavailable, running it eager: %s", why)


#: near-surface forcing of :func:`warm_up`'s steps (a mild summer hour; only shapes matter)
WARM_UP_FORCING = {"tas": 290.0, "huss": 0.008, "ps": 99_000.0, "sfcWind": 3.0, "pr": 0.0,
                   "rsds": 400.0, "rlds": 330.0}  # fmt: skip


def warm_up(timesteps: tuple[float, ...] = (3600.0, 86_400.0), cells: int = 8) -> dict[str, float]:
    """Compile the physics for sessions before the first one steps: one step of a ``fused``
    backend per step length on ``cells`` cells (≥ 2: torch specialises one-row graphs) covering
    every class, water included, so every compiled function runs with dynamic row counts.
    Inductor keeps the result in its on-disk cache (``TORCHINDUCTOR_CACHE_DIR``), which later
    processes reuse. Returns seconds per step length (``"3600"``: …), the compiles included."""
    import time

    import numpy as np

    from emulators import parameters as P
    from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
    from emulators.protocol import LandStatic, StepClock

    if cells < 2:
        raise ValueError(f"cells: must be >= 2 (one-row graphs are specialised), got {cells}")
    lat = torch.linspace(-50.0, 60.0, cells, dtype=torch.float64)
    cover = torch.full((cells, P.N_CLASSES), 1.0 / P.N_CLASSES, dtype=torch.float64)
    static = LandStatic.from_cover(lat, lat * 2, cover)
    forcing = {
        k: torch.full((1, cells), v, dtype=torch.float64) for k, v in WARM_UP_FORCING.items()
    }
    backend = EmulatorBackend(EmulatorConfig(device="cpu", compile_physics=True), "fused")
    out = {}
    for dt in timesteps:
        clock = StepClock(0, np.datetime64("2001-06-30T23:00:00"), dt)  # a day's end: the LAI too
        t0 = time.perf_counter()
        backend.step(backend.initial_state(static, clock), static, forcing, clock)
        out[f"{dt:g}"] = time.perf_counter() - t0
        if backend.physics != "inductor":
            raise RuntimeError(f"warm_up: the physics could not be compiled: {backend.physics}")
    return out
