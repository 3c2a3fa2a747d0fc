"""Tiles without cover hold no recurrent memory: a step writes the new recurrent state into
zeros, so whatever an inactive tile held (a cover change can leave state on a tile that lost
all its cover) is gone after the step, and it never reached an output or an active tile."""

from __future__ import annotations

import numpy as np
import torch

from emulators.compiled.emulator import RECURRENT, EmulatorBackend, EmulatorConfig
from emulators.protocol import LandState, StepClock
from tests.contracts.backend_contract import contract_forcing, contract_static


def test_inactive_recurrent_state_is_zeroed_and_reaches_nothing() -> None:
    backend = EmulatorBackend(EmulatorConfig(device="cpu"))
    static = contract_static(30, members=2, seed=6)
    clock = StepClock(0, np.datetime64("2001-07-01T10:00"), 3600.0)
    clean = backend.initial_state(static, clock)
    off = (static.cover == 0).expand(2, -1, -1)  # (member, cell, tile) without cover
    assert bool(off.any())
    g = torch.Generator().manual_seed(1)
    stale = dict(clean.tensors)
    for key in RECURRENT:
        junk = torch.randn(clean.tensors[key].shape, generator=g)
        stale[key] = torch.where(off.unsqueeze(-1), junk, clean.tensors[key])
    forcing = contract_forcing(static, clock, seed=4)
    a_state, a = backend.step(clean, static, forcing, clock)
    b_state, b = backend.step(LandState(stale), static, forcing, clock)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for key, v in a_state.tensors.items():
        assert torch.equal(v, b_state.tensors[key]), key
    for key in RECURRENT:
        assert not bool(b_state.tensors[key][off].any()), key  # zero where there is no cover
        assert bool(b_state.tensors[key][~off].any()), key  # the active tiles' memory
    assert not bool(clean.tensors["lstm_h"].any())  # the inputs are untouched
