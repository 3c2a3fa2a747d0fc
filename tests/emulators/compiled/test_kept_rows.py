"""The recurrent rows a backend wrote last (``kept_rows.KeptRows``) stand in for the gather only
for the very state tensor they went into, unmodified, with the same rows: every bit the same as
gathering; an in-place change, a copy or another cover is gathered."""

from __future__ import annotations

import numpy as np
import torch

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.kept_rows import KeptRows
from emulators.protocol import LandState, LandStatic, StepClock
from tests.contracts.backend_contract import contract_forcing, contract_static


def _run(
    backend: EmulatorBackend, static: LandStatic, steps: int, copy: bool, poke: int | None = None
) -> tuple[list[torch.Tensor], LandState]:
    """(outputs and final state tensors, final state) of ``steps`` steps; ``copy``: hand the
    backend a copy of its last state each step (never its own tensor); ``poke``: before that
    step, change one active row of ``lstm_h`` in place in the state handed back."""
    clock = StepClock(0, np.datetime64("2001-07-01T21:00"), 3600.0)  # a day ends at step 3
    state = backend.initial_state(static, clock)
    out: list[torch.Tensor] = []
    for i in range(steps):
        if copy:
            state = state.clone()
        if i == poke:
            row = backend._rows(static).rows
            h = state.tensors["lstm_h"]
            h.view(-1, h.shape[-1])[row.flat[3]] += 0.25
        state, fields = backend.step(state, static, contract_forcing(static, clock, 3), clock)
        out += [fields[k] for k in sorted(fields)]
        clock = clock.advance()
    return out + [state.tensors[k] for k in sorted(state.tensors)], state


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    if len(a) != len(b):
        return False
    return all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_kept_rows_give_every_bit_of_gathering() -> None:
    static = contract_static(90, 2, seed=4)
    for row_block in (0, 128):
        cfg = EmulatorConfig(device="cpu", row_block=row_block)
        backend = EmulatorBackend(cfg)
        kept, last = _run(backend, static, 5, copy=False)
        gathered, _ = _run(EmulatorBackend(cfg), static, 5, copy=True)
        assert _same(kept, gathered), row_block
        rows = backend._rows(static).rows  # the rows were there to be taken
        assert backend._kept.rows("lstm_h", last.tensors["lstm_h"], rows) is not None


def test_a_state_changed_in_place_is_gathered() -> None:
    static = contract_static(60, 1, seed=6)
    cfg = EmulatorConfig(device="cpu")
    poked, _ = _run(EmulatorBackend(cfg), static, 4, copy=False, poke=2)
    poked_copies, _ = _run(EmulatorBackend(cfg), static, 4, copy=True, poke=2)
    plain, _ = _run(EmulatorBackend(cfg), static, 4, copy=False)
    assert _same(poked, poked_copies)  # the change is read, as from a copy
    assert not _same(poked, plain)  # and it matters


def test_rows_are_given_back_only_for_the_same_unmodified_tensor_and_rows() -> None:
    kept = KeptRows()
    dense = torch.zeros(6, 2)
    rows_key, other_key = object(), object()
    rows = torch.ones(2, 2)
    assert kept.rows("lstm_h", dense, rows_key) is None
    kept.keep("lstm_h", dense, rows_key, rows)
    assert kept.rows("lstm_h", dense, rows_key) is rows
    assert kept.rows("lstm_c", dense, rows_key) is None
    assert kept.rows("lstm_h", dense.clone(), rows_key) is None
    assert kept.rows("lstm_h", dense, other_key) is None
    dense[0, 0] = 1.0
    assert kept.rows("lstm_h", dense, rows_key) is None
    with torch.inference_mode():
        frozen = torch.zeros(6, 2)
    kept.keep("lstm_h", frozen, rows_key, rows)
    assert kept.rows("lstm_h", frozen, rows_key) is None


def test_a_state_object_reused_after_its_tensor_is_freed_is_not_mistaken() -> None:
    """The kept entry holds its tensor weakly: a new tensor at a freed one's address is not it."""
    kept = KeptRows()
    rows_key = object()
    kept.keep("lstm_h", torch.zeros(4, 3), rows_key, torch.ones(1, 3))  # freed at once
    state = LandState({"lstm_h": torch.zeros(4, 3)})
    assert kept.rows("lstm_h", state.tensors["lstm_h"], rows_key) is None
