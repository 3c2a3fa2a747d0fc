"""The leaf nitrogen pool: N = C / CN(class) in the initial state and after every step (so it
follows phenology), and a state with the pool gives every other state tensor and every output
bitwise as the same state without it, for the reference model (whole domain and cell blocks)
and the compiled emulators through the shared land step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.landstep import NITROGEN, TileBackend
from emulators.protocol import LandState, StepClock
from emulators.reference import ReferenceBackend, ReferenceConfig
from emulators.reference.classes import LEAF_CN, leaf_cn
from tests.contracts.backend_contract import contract_forcing, contract_static

START = np.datetime64("2001-07-01T20:00")


def _backends() -> list[tuple[str, TileBackend, int]]:
    return [
        ("reference", ReferenceBackend(), 12),
        ("reference-blocks", ReferenceBackend(ReferenceConfig(cell_block=64)), 130),
        ("torchscript", EmulatorBackend(EmulatorConfig(device="cpu")), 12),
    ]


@pytest.mark.parametrize(("label", "backend", "cells"), _backends(), ids=lambda x: str(x)[:16])
def test_nitrogen_follows_carbon_and_changes_nothing_else(
    label: str, backend: TileBackend, cells: int
) -> None:
    static = contract_static(cells, members=2, seed=3)
    clock = StepClock(0, START, 3600.0)
    with_n = backend.initial_state(static, clock)
    cn = leaf_cn()
    assert torch.equal(with_n.tensors[NITROGEN], with_n.tensors["cleaf"] / cn)
    without = LandState({k: v for k, v in with_n.tensors.items() if k != NITROGEN})
    n_start = with_n.tensors[NITROGEN]
    for _ in range(30):  # past two UTC midnights: phenology changes leaf carbon
        forcing = contract_forcing(static, clock, 2)
        with_n, out_n = backend.step(with_n, static, forcing, clock)
        without, out = backend.step(without, static, forcing, clock)
        assert out_n.keys() == out.keys()
        assert all(torch.equal(out_n[k], out[k]) for k in out), label
        assert set(with_n.tensors) == {*without.tensors, NITROGEN}
        assert all(torch.equal(with_n.tensors[k], v) for k, v in without.tensors.items())
        assert torch.equal(with_n.tensors[NITROGEN], with_n.tensors["cleaf"] / cn)
        clock = clock.advance()
    assert not torch.equal(with_n.tensors[NITROGEN], n_start)  # phenology moved C, and N


def test_leaf_cn_table_covers_every_class() -> None:
    table = leaf_cn()
    assert table.shape == (len(LEAF_CN),) and bool((table >= 20).all() & (table <= 60).all())
