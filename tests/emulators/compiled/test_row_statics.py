"""What the emulator backend keeps between steps (``row_step.RowStatics``: the rows' parameters
and static features) gives every bit of computing them each step, and follows the parameters
when they change (a new tensor, or the same tensor changed in place, as state-augmentation DA
may do)."""

from __future__ import annotations

import torch

from emulators import parameters as P
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.features import flux_features, static_flux_features
from emulators.protocol import LandStatic
from tests.contracts.backend_contract import contract_static
from tests.emulators.compiled.test_row_blocks import _steps


def _feature_inputs(rows: int, seed: int) -> dict[str, object]:
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (rows,)), generator=g, dtype=torch.float64)

    forcing = {
        "tas": u(260.0, 310.0),
        "huss": u(1e-3, 2e-2),
        "ps": u(8e4, 1.05e5),
        "sfcWind": u(0.0, 12.0),
        "pr": u(0.0, 1e-3),
        "rsds": u(0.0, 1000.0),
        "rlds": u(200.0, 450.0),
    }
    base = P.default_table()[torch.randint(0, P.N_CLASSES, (rows,), generator=g)]
    return {
        "forcing": forcing,
        "albedo": u(0.05, 0.4),
        "theta_rel": u(0.0, 1.0),
        "lai": u(0.0, 6.0),
        "f_w": u(0.0, 1.0),
        "ts_prev": u(260.0, 320.0),
        "tsoil": u(260.0, 310.0, rows, 3),
        "params": P.sample_parameters(rows, g, spread=0.3, base=base),
        "tile": torch.randint(0, P.N_CLASSES, (rows,), generator=g),
        "doy": torch.full((rows,), 183.0, dtype=torch.float64),
        "local_hour": u(0.0, 24.0),
    }


def test_features_written_in_the_network_dtype_are_every_bit_the_cast_features() -> None:
    for rows in (1, 37, 1000):  # lengths off and on the vector width
        kw = _feature_inputs(rows, seed=rows)
        expected = flux_features(**kw).to(torch.float32)
        direct = flux_features(**kw, dtype=torch.float32)
        static = static_flux_features(kw["params"], kw["tile"], torch.float32)
        kept = flux_features(**kw, static=static, dtype=torch.float32)
        for x in (direct, kept):
            assert x.dtype == torch.float32 and x.is_contiguous()
            assert torch.equal(x, expected)
    daily = _feature_inputs(64, seed=3) | {"local_hour": None}
    assert torch.equal(
        flux_features(**daily, dtype=torch.float32),
        flux_features(**daily).to(torch.float32),
    )


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_kept_row_statics_follow_the_parameters() -> None:
    static = contract_static(40, 2, seed=4)
    # other parameters: every vmax0 (column 0) at its range's other end
    low, high = P.bounds()
    changed = static.params.clone()
    changed[..., 0] = torch.where(changed[..., 0] > (low[0] + high[0]) / 2, low[0], high[0])
    other = LandStatic(static.lat, static.lon, static.cover, changed)
    fresh_other = _steps(EmulatorBackend(EmulatorConfig(device="cpu")), other, 3)

    backend = EmulatorBackend(EmulatorConfig(device="cpu"))
    first = _steps(backend, static, 3)
    assert not _same(first, fresh_other)  # the parameter change shows in the fields
    # a new parameter tensor, same cover: the kept statics are rebuilt
    assert _same(_steps(backend, other, 3), fresh_other)
    # the same tensor changed in place: its version counter moves, the statics are rebuilt
    params = static.params.clone()
    inplace = LandStatic(static.lat, static.lon, static.cover, params)
    assert _same(_steps(backend, inplace, 3), first)
    params.copy_(changed)
    assert _same(_steps(backend, inplace, 3), fresh_other)


def test_parameters_made_in_inference_mode_are_not_kept() -> None:
    """Inference tensors carry no version counter: the statics are rebuilt every step."""
    static = contract_static(30, 1, seed=6)
    expected = _steps(EmulatorBackend(EmulatorConfig(device="cpu")), static, 3)
    with torch.inference_mode():
        params = static.params.clone()
        inference = LandStatic(static.lat, static.lon, static.cover, params)
        got = _steps(EmulatorBackend(EmulatorConfig(device="cpu")), inference, 3)
    assert _same(got, expected)


def test_dense_rows_puts_each_row_at_its_entry_and_zeros_elsewhere() -> None:
    """``row_step.dense_rows`` with ``Rows.slots``: the rows of two blocks, in row order, at
    their (member, cell, tile) entries, zero at the entries without a row; every bit of filling
    zeros and copying the rows in."""
    from emulators.compiled import row_step
    from emulators.compiled.tiles import Rows

    cover = torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    rows = Rows.active(cover, members=2)
    assert rows.flat.tolist() == [0, 2, 7, 9, 11, 16]
    assert rows.slots().tolist() == [1, 0, 2, 0, 0, 0, 0, 3, 0, 4, 0, 5, 0, 0, 0, 0, 6, 0]
    values = torch.arange(1.0, 1.0 + 6 * 4).reshape(6, 4)
    got, joined = row_step.dense_rows([values[:4], values[4:]], rows.slots())
    want = torch.zeros(18, 4).index_copy_(0, rows.flat, values)
    assert torch.equal(got, want) and torch.equal(joined, values)
    empty = Rows.active(torch.zeros(2, 3), members=1)
    got, joined = row_step.dense_rows([values[:0]], empty.slots())
    assert torch.equal(got, torch.zeros(6, 4)) and joined.shape == (0, 4)


def test_rows_after_a_zero_row_in_memory_are_their_own_table() -> None:
    """``dense_rows`` takes one block that follows a zero row in memory (as ``run_flux`` joins
    the network's calls) as the table itself, with every bit of joining; a block after a row
    that is not +0.0 everywhere (a -0.0 included) is joined."""
    from emulators.compiled import row_step
    from emulators.compiled.tiles import Rows

    rows = Rows.active(torch.tensor([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]), members=1)
    values = torch.arange(1.0, 1.0 + 3 * 2).reshape(3, 2)
    want = torch.zeros(6, 2).index_copy_(0, rows.flat, values)
    for head, shared in ((0.0, True), (-0.0, False), (1.0, False)):
        table = torch.cat([torch.full((1, 2), head), values])
        got, joined = row_step.dense_rows([table[1:]], rows.slots())
        assert torch.equal(got, want) and not torch.signbit(got).any()
        assert (joined.data_ptr() == table[1:].data_ptr()) is shared, head
    # and the network's joined outputs are such a table
    h = torch.rand(10, 3)
    c = torch.rand(10, 2)

    def net(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x[:, :5], h + 1.0, c * 2.0

    y, h1, c1 = row_step.run_flux(net, torch.rand(10, 6), h, c, 4, torch.device("cpu"))
    assert torch.equal(h1, h + 1.0) and torch.equal(c1, c * 2.0) and y.shape == (10, 5)
    assert row_step._after_zero_row(h1) is not None and row_step._after_zero_row(c1) is not None
