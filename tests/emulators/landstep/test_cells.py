"""Cell fields two ways: ``aggregate`` of dense tile fields and ``CellSums`` of tile rows (what
the emulator backends do). Equivalence between the methods: every bit the same for cells of one
or two tiles (adding exact zeros and a commutative sum of two), round-off for more; blocks of
rows give every bit of one call; and the emulator backend's ``step`` equals ``aggregate`` of its
own ``step_tiles``."""

from __future__ import annotations

import numpy as np
import torch

from emulators import parameters as P
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.tiles import Rows
from emulators.landstep import CELL_FIELDS, CellSums, aggregate, soil_cover, soil_tiles
from emulators.protocol import StepClock
from tests.contracts.backend_contract import contract_forcing, contract_static

K = P.N_CLASSES


def _domain(n: int, members: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cover (cell, tile) with 1-8 classes per cell (cell i: 1 + i % 8), and tile fields
    (member, cell, tile) as a backend leaves them: values on covered tiles, 0 elsewhere (z0 1)."""
    g = torch.Generator().manual_seed(seed)
    cover = torch.zeros(n, K, dtype=torch.float64)
    for i in range(n):
        k = 1 + i % K
        cover[i, torch.randperm(K, generator=g)[:k]] = torch.rand(k, generator=g).double() + 0.1
    cover /= cover.sum(-1, keepdim=True)
    on = (cover > 0).expand(members, n, K)
    tiles = {}
    for key in CELL_FIELDS:
        v = torch.rand(members, n, K, generator=g, dtype=torch.float64) * 300 - 50
        if key == "z0":
            v = v.abs() / 100 + 1e-3
        tiles[key] = torch.where(on, v, 1.0 if key == "z0" else 0.0)
    return cover, tiles


def _sums(cover: torch.Tensor, tiles: dict[str, torch.Tensor], block: int) -> dict:
    members = next(iter(tiles.values())).shape[0]
    rows = Rows.active(cover, members)
    sums = CellSums(soil_cover(cover), members)
    weight = cover[rows.cell, rows.tile]
    soil = soil_tiles()[rows.tile]
    index = torch.div(rows.flat, K, rounding_mode="floor")
    for s in range(0, rows.n, block):
        b = slice(s, s + block)
        sums.add({k: rows.gather(v)[b] for k, v in tiles.items()}, index[b], weight[b], soil[b])
    return sums.fields()


def test_row_sums_equal_the_dense_aggregate() -> None:
    cover, tiles = _domain(64, members=2, seed=4)
    dense = aggregate(tiles, cover)
    rows = _sums(cover, tiles, block=10**6)
    assert set(rows) == set(dense) == set(CELL_FIELDS)
    small = (cover > 0).sum(-1) <= 2  # one or two tiles: the same sum, every bit
    assert bool(small.any()) and bool((~small).any())
    lake_only = cover[:, int(P.LandCover.WATER_ICE)] == 1.0
    for key in CELL_FIELDS:
        a, b = rows[key], dense[key]
        assert a.shape == b.shape == (2, 64) and a.dtype == b.dtype == torch.float64, key
        assert torch.equal(a[:, small], b[:, small]), key
        assert torch.allclose(a, b, rtol=1e-14, atol=1e-12), key
    assert not bool(lake_only.any()) or bool((rows["mrsos"][:, lake_only] == 0).all())


def test_blocks_of_rows_give_every_bit_of_one_call() -> None:
    cover, tiles = _domain(50, members=3, seed=5)
    whole = _sums(cover, tiles, block=10**6)
    for block in (1, 7, 64):
        part = _sums(cover, tiles, block)
        assert all(torch.equal(part[k], whole[k]) for k in CELL_FIELDS), block


def test_a_lake_cell_has_no_soil_moisture_and_cover_weights_the_rest() -> None:
    """Closed form: a cell half lake, half grass; mrsos is the grass tile's alone, linear
    fields the cover-weighted mean, z0 the cover-weighted geometric mean."""
    cover = torch.zeros(1, K, dtype=torch.float64)
    lake, grass = int(P.LandCover.WATER_ICE), int(P.LandCover.GRASSLAND)
    cover[0, lake] = cover[0, grass] = 0.5
    tiles = {k: torch.zeros(1, 1, K, dtype=torch.float64) for k in CELL_FIELDS}
    tiles["z0"] = torch.ones(1, 1, K, dtype=torch.float64)
    tiles["hfss"][0, 0, lake], tiles["hfss"][0, 0, grass] = 10.0, 30.0
    tiles["mrsos"][0, 0, lake], tiles["mrsos"][0, 0, grass] = 99.0, 20.0
    tiles["z0"][0, 0, lake], tiles["z0"][0, 0, grass] = 1e-4, 1e-2
    out = _sums(cover, tiles, block=8)
    assert out["hfss"].item() == 20.0
    assert out["mrsos"].item() == 20.0
    assert abs(out["z0"].item() - 1e-3) < 1e-15


def test_the_emulator_step_sums_its_rows_into_the_cells_of_its_tiles() -> None:
    """``step`` (rows summed into cells) against ``aggregate`` of ``step_tiles`` (dense tile
    fields) of the same backend, state and forcing: the same state, every bit, and the same
    cell fields (every bit for cells of one or two tiles)."""
    backend = EmulatorBackend(EmulatorConfig(device="cpu"))
    static = contract_static(40, members=2, seed=8)
    clock = StepClock(0, np.datetime64("2001-07-01T10:00"), 3600.0)
    state = backend.initial_state(static, clock)
    small = (static.cover > 0).sum(-1) <= 2
    for _ in range(3):
        forcing = contract_forcing(static, clock, seed=2)
        new, cells = backend.step(state, static, forcing, clock)
        tiled, tiles = backend.step_tiles(state, static, forcing, clock)
        dense = aggregate(tiles, static.cover)
        assert set(cells) == set(dense)
        for key in dense:
            assert torch.equal(cells[key][:, small], dense[key][:, small]), key
            assert torch.allclose(cells[key], dense[key], rtol=1e-13, atol=1e-10), key
        assert all(torch.equal(new.tensors[k], tiled.tensors[k]) for k in new.tensors)
        state, clock = new, clock.advance()
