"""Frozen land: vegetation replays the first run year's seasonal cycle, the rest stays live."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from coupler.core import frozen
from emulators.protocol import LandBackend, LandState, LandStatic, StepClock
from emulators.reference import ReferenceBackend

N = 3


def _forcing(day: int, warm: float) -> dict[str, torch.Tensor]:
    season = np.cos(2 * np.pi * (day - 200) / 365.0)
    full = {
        "tas": 283.0 + 12.0 * season + warm, "huss": 0.007 + 0.004 * season, "ps": 100_000.0,
        "sfcWind": 3.0, "pr": 3e-5 * (day % 3 == 0), "rsds": 180.0 + 120.0 * season,
        "rlds": 320.0 + 30.0 * season,
    }  # fmt: skip
    return {k: torch.full((1, N), float(v), dtype=torch.float64) for k, v in full.items()}


def _run(
    backend: LandBackend, static: LandStatic, start: str, days: int, warm_after: int = 10**9
) -> tuple[list[LandState], list[dict[str, torch.Tensor]], list[StepClock]]:
    clock = StepClock(0, np.datetime64(start), 86_400.0)
    state = backend.initial_state(static, clock)
    states, outputs, clocks = [], [], []
    for i in range(days):
        clocks.append(clock)
        forcing = _forcing(clock.day_of_year, 4.0 * (i >= warm_after))
        states.append(state)
        state, out = backend.step(state, static, forcing, clock)
        outputs.append(out)
        clock = clock.advance()
    states.append(state)
    return states, outputs, clocks


def test_vegetation_is_held_after_the_first_run_year() -> None:
    cover = torch.zeros(N, 8, dtype=torch.float64)
    cover[:, 1] = 0.7  # deciduous forest: a strong seasonal cycle
    cover[:, 2] = 0.3
    static = LandStatic.from_cover(
        torch.tensor([45.0, 50.0, 55.0]), torch.tensor([10.0, 20.0, 30.0]), cover
    )
    held = frozen.FrozenVegetation(ReferenceBackend(), 2015)
    assert held.name == "reference_frozen_2015"
    # 2014-12-27 .. 2016-02-09: 5 spin-up days, the record year 2015, then 40 warmer days
    warm = 5 + 365
    states, outs, clocks = _run(held, static, "2014-12-27", warm + 40, warm_after=warm)
    # before the freeze it is the inner model, step for step
    s_ref, o_ref, _ = _run(ReferenceBackend(), static, "2014-12-27", 20)
    for i in range(20):
        assert torch.equal(s_ref[i + 1].tensors["cleaf"], states[i + 1].tensors["cleaf"])
        assert torch.equal(o_ref[i]["hfls"], outs[i]["hfls"])
    # 2016 day d replays the end-of-day leaf carbon of 2015 day d
    for k in range(40):
        assert torch.equal(
            states[warm + k + 1].tensors["cleaf"], states[5 + k + 1].tensors["cleaf"]
        )
    # the inner model would have moved its vegetation in the warmer 2016 ...
    k = warm + 30
    inner_state = LandState({n: v for n, v in states[k].tensors.items() if n != frozen.RECORD})
    free, _ = held.inner.step(inner_state, static, _forcing(clocks[k].day_of_year, 4.0), clocks[k])
    assert not torch.equal(free.tensors["cleaf"], states[k + 1].tensors["cleaf"])
    # ... while the fluxes stay interactive: same vegetation, warmer air, other fluxes
    assert torch.equal(states[k].tensors["cleaf"], states[5 + 30].tensors["cleaf"])
    assert not torch.allclose(outs[k]["hfss"], outs[5 + 30]["hfss"])


def test_frozen_land_is_a_session_option_over_both_clients() -> None:
    """``freeze_vegetation_year`` travels in the spec (proto field 22); gRPC and in-process
    sessions step the same wrapped backend, and a bad year is refused naming the field."""
    from grpc import StatusCode

    from coupler.client import CouplerRpcError, local_client

    kw: dict[str, Any] = dict(
        lat=[45.0, 50.0, 55.0], lon=[10.0, 20.0, 30.0], start="2014-12-25T00:00:00",
        timestep=86_400, outputs=["lai", "hfls"], land_cover="dfw", freeze_vegetation_year=2015,
    )  # fmt: skip
    replies = {}
    for transport in ("grpc", "inprocess"):
        with local_client(transport) as client:
            with pytest.raises(CouplerRpcError) as err:
                client.open_session(**{**kw, "freeze_vegetation_year": -3})
            assert err.value.code() is StatusCode.INVALID_ARGUMENT
            assert (err.value.field, err.value.rule) == ("freeze_vegetation_year", "year")
            details = client.describe()["details"]
            assert "reference" in details["backends"]
            with client.open_session(**kw) as session:
                replies[transport] = [
                    session.step(i, {k: v[0].numpy() for k, v in _forcing(359 + i, 0.0).items()})
                    for i in range(12)
                ]
    for a, b in zip(replies["grpc"], replies["inprocess"], strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in ("lai", "hfls"))
