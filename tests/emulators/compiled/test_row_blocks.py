"""Row blocks: the emulator backend steps its tile rows block by block (``row_step``) with
every output bit the same as stepping all rows at once, and its phases can be timed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.phases import PHASES, PhaseTimes, no_phases
from emulators.compiled.row_step import ROW_BLOCK_MULTIPLE, row_blocks
from emulators.protocol import LandStatic, StepClock
from tests.contracts.backend_contract import contract_forcing, contract_static


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: torch splits a long elementwise loop between threads where the
    tensor's length says, so with several threads a block's rows and the whole domain's rows
    can fall on different split points (last-bit differences, measured in docs/emulators.md)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _steps(backend: EmulatorBackend, static: LandStatic, steps: int) -> list[torch.Tensor]:
    clock = StepClock(0, np.datetime64("2001-07-01T21:00"), 3600.0)  # a day ends at step 3
    state = backend.initial_state(static, clock)
    out: list[torch.Tensor] = []
    for _ in range(steps):
        state, fields = backend.step(state, static, contract_forcing(static, clock, 3), clock)
        out += [fields[k] for k in sorted(fields)]
        clock = clock.advance()
    return out + [state.tensors[k] for k in sorted(state.tensors)]


@pytest.mark.parametrize(("members", "phenology"), [(1, "emulator"), (2, "reference")])
def test_blocks_give_every_bit_of_the_whole_domain_step(
    one_thread: None, members: int, phenology: str
) -> None:
    static = contract_static(150, members, seed=5)  # ≈ 375 rows per member: several blocks
    whole = _steps(EmulatorBackend(EmulatorConfig(device="cpu", row_block=0, phenology=phenology)),
                   static, 5)  # fmt: skip
    for block in (ROW_BLOCK_MULTIPLE, 4 * ROW_BLOCK_MULTIPLE):
        cfg = EmulatorConfig(device="cpu", row_block=block, phenology=phenology)
        backend = EmulatorBackend(cfg)
        assert len(row_blocks(backend._rows(static).rows.n, block)) > 1
        blocked = _steps(backend, static, 5)
        assert len(blocked) == len(whole)
        for a, b in zip(blocked, whole, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b)


def test_row_block_must_be_a_multiple_of_the_simd_groups() -> None:
    for bad in (-64, 100):
        with pytest.raises(ValueError, match=r"row_block: must be 0 .* multiple of 64"):
            EmulatorConfig(row_block=bad)
    assert EmulatorConfig().row_block == 0  # off by default (not measurably faster here)
    assert row_blocks(0, 64) == [slice(0, 0)]
    assert row_blocks(130, 64) == [slice(0, 64), slice(64, 128), slice(128, 130)]


def test_phase_times_cover_every_phase_of_a_step() -> None:
    backend = EmulatorBackend(EmulatorConfig(device="cpu", row_block=64))
    assert backend.phases is no_phases
    static = contract_static(60, 1, seed=2)
    backend.phases = timer = PhaseTimes()
    _steps(backend, static, 4)  # crosses the end of a day: the LAI step runs in "phenology"
    assert set(timer.seconds) == set(PHASES)
    assert all(seconds > 0 for seconds in timer.seconds.values())
    timer.reset()
    assert timer.seconds == {}


@pytest.mark.parametrize(("members", "row_block"), [(1, 0), (2, 0), (1, 4 * ROW_BLOCK_MULTIPLE)])
def test_identity_rows_skip_the_scatter_with_every_bit_the_same(
    one_thread: None, members: int, row_block: int
) -> None:
    """Every tile a row (``all_tiles``): rows are slices of the state and the results become the
    new state (no gather, copy, scatter); every bit equals gathering and scattering, the inputs
    are not modified and the new state shares no memory with them."""
    static = contract_static(120, members, seed=9)
    cfg = EmulatorConfig(device="cpu", all_tiles=True, row_block=row_block)
    fast, slow = EmulatorBackend(cfg), EmulatorBackend(cfg)
    slow.identity_rows = False
    assert fast._rows(static).rows.n == members * 120 * 8
    a, b = _steps(fast, static, 5), _steps(slow, static, 5)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and torch.equal(x, y)
    clock = StepClock(0, np.datetime64("2001-07-01T10:00"), 3600.0)
    state = fast.initial_state(static, clock)
    before = {k: v.clone() for k, v in state.tensors.items()}
    new, tiles = fast.step_tiles(state, static, contract_forcing(static, clock, 3), clock)
    assert all(torch.equal(state.tensors[k], v) for k, v in before.items())
    inputs = {v.untyped_storage().data_ptr() for v in (*state.tensors.values(), static.params)}
    for v in (*new.tensors.values(), *tiles.values()):
        assert v.untyped_storage().data_ptr() not in inputs
