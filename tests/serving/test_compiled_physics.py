"""The physics around the flux network compiled by TorchInductor (``emulators.compiled.inductor``,
the ``fused`` backend's default): each compiled function equals its eager self to round-off on
a real step's inputs (water rows included); the backend with it agrees with the eager one (and,
in ``test_fused``, with TorchScript); concurrent steps give the sequential results; where this
machine cannot compile, or Inductor fails, the eager physics runs and the backend says why."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emulators import parameters as P
from emulators.compiled import flux_step, fused, inductor, row_step
from emulators.compiled.emulator import EmulatorConfig, FusedBackend, TorchScriptBackend
from emulators.protocol import StepClock
from tests.contracts.backend_contract import contract_forcing, contract_static
from tests.coupler.core.conftest import run_threads

from .helpers import AGREEMENT_CASES, agreement, run


def _eager() -> FusedBackend:
    return FusedBackend(EmulatorConfig(device="cpu", compile_physics=False))


def _captured_calls() -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The eager physics functions' arguments in the second hourly step (the first after a
    spin-up) of a fused backend on the contract's cells, nine of them with a water tile."""
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def capture(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] = (args, kwargs)
            return fn(*args, **kwargs)

        return call

    eager = inductor.EAGER_PHYSICS
    kernels = flux_step.StepKernels(
        *(capture(f.name, getattr(eager.kernels, f.name))
          for f in dataclasses.fields(flux_step.StepKernels))
    )  # fmt: skip
    backend = _eager()
    backend._physics = inductor.Physics(kernels, capture("sums", eager.sums), "eager")
    static = contract_static(24, 2, seed=4)
    assert bool((static.cover[:, int(P.LandCover.WATER_ICE)] > 0).any())
    clock = StepClock(0, np.datetime64("2001-06-30T11:00:00"), 3600.0)
    state = backend.initial_state(static, clock)
    for _ in range(2):
        state, _ = backend.step(state, static, contract_forcing(static, clock, 2), clock)
        clock = clock.advance()
    return calls


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor of a result (tensors, tuples, dicts, dataclasses), in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in _tensors(getattr(value, f.name))]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in _tensors(value[k])]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


@pytest.fixture(scope="module")
def calls() -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    return _captured_calls()


@pytest.mark.parametrize("name", ["features", "water", "close", "sums"])
def test_each_compiled_function_equals_its_eager_self(
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]], name: str
) -> None:
    compiled = inductor.compiled_physics()
    if name == "sums":
        fn, eager = compiled.sums, inductor.EAGER_PHYSICS.sums
    else:
        fn = getattr(compiled.kernels, name)
        eager = getattr(inductor.EAGER_PHYSICS.kernels, name)
    assert isinstance(fn, inductor.Compiled) and fn.fn is eager
    args, kwargs = calls[name]
    with torch.no_grad():
        want, got = _tensors(eager(*args, **kwargs)), _tensors(fn(*args, **kwargs))
    assert fn.failed is None
    assert len(want) == len(got) > 0
    for w, g in zip(want, got, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        # float64 physics to round-off; the float32 features may round the other way
        tol = 1e-13 if w.dtype == torch.float64 else 1e-6
        if w.numel() == 0:
            continue
        scale = max(float(w.abs().max()), 1e-300)
        assert float((g - w).abs().max()) <= tol * scale, name


def test_the_water_rows_are_solved_by_the_compiled_newton(
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    args, _ = calls["water"]
    rows = args[1]["tas"].shape[0]  # the water rows (padded to a multiple of 64)
    assert rows >= 64 and rows % 64 == 0


def test_the_fused_backend_compiles_its_physics_by_default() -> None:
    assert FusedBackend(EmulatorConfig(device="cpu")).physics == "inductor"
    assert _eager().physics == "eager"
    assert TorchScriptBackend(EmulatorConfig(device="cpu")).physics == "eager"


def test_another_cpu_backend_compiles_its_physics_when_asked() -> None:
    compiled = TorchScriptBackend(EmulatorConfig(device="cpu", compile_physics=True))
    assert compiled.physics == "inductor"
    worst, where = agreement(
        compiled, TorchScriptBackend(EmulatorConfig(device="cpu")), 3600.0, "2001-06-30T20:00:00", 6
    )
    assert worst <= 1e-6, f"{where}: relative difference {worst:.2e}"


@pytest.mark.parametrize(("dt", "start", "steps"), AGREEMENT_CASES)
def test_the_backend_agrees_with_its_eager_self(dt: float, start: str, steps: int) -> None:
    """(Against ``torchscript``: ``test_fused.test_agrees_with_torchscript``, whose backend
    compiles its physics by default.)"""
    compiled = FusedBackend(EmulatorConfig(device="cpu"))
    worst, where = agreement(compiled, _eager(), dt, start, steps)
    assert worst <= 1e-6, f"{where}: relative difference {worst:.2e}"
    assert compiled.physics == "inductor"


def test_concurrent_steps_give_the_sequential_results() -> None:
    static = contract_static(24, 2, seed=4)
    start, steps = "2001-06-30T20:00:00", 6
    want = run(FusedBackend(EmulatorConfig(device="cpu")), static, steps, 3600.0, start)
    results: dict[int, list[dict[str, torch.Tensor]]] = {}

    def session(i: int) -> None:
        results[i] = run(FusedBackend(EmulatorConfig(device="cpu")), static, steps, 3600.0, start)

    errors = run_threads([lambda i=i: session(i) for i in range(4)])
    assert not errors, errors
    assert len(results) == 4
    for got in results.values():
        for a, b in zip(got, want, strict=True):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_without_python_headers_the_physics_runs_eager_naming_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inductor.sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    inductor._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=inductor.__name__):
        backend = FusedBackend(EmulatorConfig(device="cpu"))
    assert backend.physics.startswith(f"eager (no Python headers ({tmp_path / 'Python.h'})")
    assert "python3-dev" in backend.physics
    assert "compiled physics unavailable" in caplog.text
    static = contract_static(24, 2, seed=4)
    got = run(backend, static, 3, 3600.0, "2001-06-30T10:00:00")
    want = run(_eager(), static, 3, 3600.0, "2001-06-30T10:00:00")
    assert all(torch.equal(a[k], b[k]) for a, b in zip(got, want, strict=True) for k in a)


def test_without_a_compiler_the_physics_runs_eager_naming_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fused.shutil, "which", lambda name: None)
    why = inductor.unavailable()
    assert why is not None and "no C++ compiler found" in why
    assert inductor.physics(True).label == f"eager ({why})"
    assert inductor.physics(False) is inductor.EAGER_PHYSICS


def test_a_failed_inductor_build_falls_back_to_eager_naming_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    builds: list[int] = []

    def broken(gm: Any, example_inputs: Any) -> Any:
        builds.append(1)
        raise RuntimeError("cc1plus: fatal error: Python.h: No such file or directory")

    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2.0

    fn = inductor.Compiled(double, compile=lambda f: torch.compile(f, backend=broken))
    x = torch.arange(4.0)
    with caplog.at_level(logging.WARNING, logger=inductor.__name__):
        assert torch.equal(fn(x), x * 2.0)
    assert fn.failed == "RuntimeError: cc1plus: fatal error: Python.h: No such file or directory"
    assert "could not build" in caplog.text and "Python.h" in caplog.text
    assert torch.equal(fn(x + 1), (x + 1) * 2.0)
    assert len(builds) == 1  # not tried again
    physics = inductor.Physics(flux_step.EAGER, fn, "inductor")
    assert physics.failed == fn.failed


def test_compile_physics_is_validated_by_name() -> None:
    with pytest.raises(ValueError, match="compile_physics: must be None, True or False, got 'yes'"):
        EmulatorConfig(compile_physics="yes")  # type: ignore[arg-type]


def test_the_daily_sums_are_the_accumulators_and_the_gpp_pool(
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]],
) -> None:
    args, _ = calls["sums"]
    acc, acc_gpp, inp, closed, soil, dt = args
    sums, pool = row_step.daily_sums(acc, acc_gpp, inp, closed, soil, dt)
    assert set(sums) == set(row_step.LAI_ACCUMULATORS)
    assert torch.equal(sums["acc_time"], acc["acc_time"] + dt)
    gpp = row_step.gpp_vegetated(closed.fields["gpp"], inp.params, inp.const)
    assert torch.equal(pool, acc_gpp + gpp * dt)


def test_warm_up_compiles_every_function_at_both_step_lengths() -> None:
    seconds = inductor.warm_up(cells=4)
    assert set(seconds) == {"3600", "86400"} and all(v > 0 for v in seconds.values())
    compiled = inductor.compiled_physics()
    kernels = compiled.kernels
    for fn in (kernels.features, kernels.water, kernels.close, compiled.sums):
        assert isinstance(fn, inductor.Compiled) and fn._compiled is not None and fn.failed is None
    with pytest.raises(ValueError, match="cells: must be >= 2"):
        inductor.warm_up(cells=1)
