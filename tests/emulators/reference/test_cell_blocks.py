"""The reference step over blocks of cells (``ReferenceConfig.cell_block``) is bitwise the step
over the whole domain: odd sizes, several members, a day boundary (phenology), and a bad value in
the last block is refused before anything is computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emulators import parameters as P
from emulators.protocol import LandStatic, StepClock
from emulators.reference import ReferenceBackend, ReferenceConfig
from emulators.variables import VariableError

FULL = {"tas": 293.0, "huss": 0.009, "ps": 98_000.0, "sfcWind": 3.0, "pr": 2e-5,
        "rsds": 450.0, "rlds": 340.0}  # fmt: skip


def _domain(n: int, members: int) -> tuple[LandStatic, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(n)
    lat = torch.rand(n, generator=g, dtype=torch.float64) * 120 - 60
    cover = torch.rand(n, P.N_CLASSES, generator=g, dtype=torch.float64)
    static = LandStatic.from_cover(lat, lat * 2, cover / cover.sum(-1, keepdim=True), members)
    forcing = {
        k: v * (1 + 0.05 * torch.rand(members, n, generator=g, dtype=torch.float64))
        for k, v in FULL.items()
    }
    return static, forcing


@pytest.mark.parametrize(("n", "members", "block"), [(203, 1, 64), (331, 3, 64), (517, 2, 128)])
def test_blocks_are_bitwise_the_whole_domain(n: int, members: int, block: int) -> None:
    static, forcing = _domain(n, members)
    runs = []
    for cell_block in (0, block):
        backend = ReferenceBackend(ReferenceConfig(cell_block=cell_block))
        clock = StepClock(0, np.datetime64("2001-06-01T21:00:00"), 3600.0)  # crosses midnight
        state = backend.initial_state(static, clock)
        outputs = []
        for _ in range(5):
            state, out = backend.step(state, static, forcing, clock)
            outputs.append(out)
            clock = clock.advance()
        runs.append((state, outputs))
    (s0, o0), (s1, o1) = runs
    assert s0.equal(s1)
    for a, b in zip(o0, o1, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].shape == (members, n) and torch.equal(a[k], b[k]), k


def test_a_bad_value_in_the_last_block_is_refused_before_any_block_runs() -> None:
    static, forcing = _domain(200, 1)
    forcing["tas"] = forcing["tas"].clone()
    forcing["tas"][0, 199] = float("nan")
    backend = ReferenceBackend(ReferenceConfig(cell_block=64))
    clock = StepClock(0, np.datetime64("2001-06-01T12:00:00"), 3600.0)
    state = backend.initial_state(static, clock)
    before = state.clone()
    with pytest.raises(VariableError) as err:
        backend.step(state, static, forcing, clock)
    assert err.value.rule == "finite"
    assert state.equal(before)


def test_a_static_slice_is_a_view_of_the_cells() -> None:
    static, _ = _domain(50, 2)
    part = static.cells(slice(10, 20))
    assert part.n_cells == 10 and part.n_members == 2
    assert torch.equal(part.cover, static.cover[10:20])
    assert part.params.data_ptr() == static.params[:, 10:20].data_ptr()


@pytest.mark.parametrize("block", [-64, 7, 100])
def test_a_block_off_the_simd_groups_is_refused(block: int) -> None:
    with pytest.raises(ValueError, match="cell_block"):
        ReferenceConfig(cell_block=block)
