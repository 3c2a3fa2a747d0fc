"""The constraint layer behind the emulators closes energy and water exactly whatever the network
says, and the exact per-tile diagnostics match the reference model's."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators import parameters as P
from emulators.compiled import closure, tiles
from emulators.constraints import energy_residual, water_residual
from emulators.protocol import StepClock
from emulators.reference import ReferenceBackend, SoilConfig
from tests.contracts.backend_contract import contract_forcing, contract_static

SOIL = SoilConfig()


def _rows(n: int, seed: int) -> tuple[dict[str, torch.Tensor], ...]:
    g = torch.Generator().manual_seed(seed)
    tile = torch.randint(0, P.N_CLASSES, (n,), generator=g)
    const = {k: v[tile] for k, v in tiles.class_constants(SOIL).items()}
    params = P.sample_parameters(n, g)
    floor = const["capacity"] * SOIL.theta_residual / SOIL.porosity * (1 - const["water"])
    w = floor + (const["capacity"] - floor) * torch.rand(n, generator=g, dtype=torch.float64)
    cleaf = 0.3 * torch.rand(n, generator=g, dtype=torch.float64)
    forcing = {
        "tas": 250 + 60 * torch.rand(n, generator=g, dtype=torch.float64),
        "pr": 1e-3 * torch.rand(n, generator=g, dtype=torch.float64) ** 4,
        "rsds": 1000 * torch.rand(n, generator=g, dtype=torch.float64),
        "rlds": 200 + 250 * torch.rand(n, generator=g, dtype=torch.float64),
    }
    tsoil = forcing["tas"][:, None] + 5 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    return forcing, const, {"w": w, "cleaf": cleaf, "tsoil": tsoil, "params": params}


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.0, 1e3),
    offset=st.floats(-500.0, 500.0),
)
def test_any_prediction_is_closed_exactly(seed: int, scale: float, offset: float) -> None:
    n = 257
    forcing, const, s = _rows(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    pred = offset + scale * torch.randn(n, len(closure.FLUX_OUTPUTS), generator=g)
    pred[:, 0] = pred[:, 0].clamp(-40, 40)  # skin temperature stays a temperature
    surf = tiles.surface(s["w"], s["cleaf"], s["params"], const, SOIL)
    out = closure.close(
        pred.float(),
        forcing=forcing,
        w=s["w"],
        tsoil=s["tsoil"],
        surf=surf,
        const=const,
        soil=SOIL,
        dt=3600.0,
    )
    f = out.fields
    e = energy_residual(f["rns"], f["hfls"], f["hfss"], f["hfdsl"])
    w = water_residual(s["w"], out.w, forcing["pr"], f["evspsbl"], f["mrro"], 3600.0)
    assert float(e.abs().max()) <= 1e-3
    assert float(w.abs().max()) <= 1e-6
    floor = const["capacity"] * SOIL.theta_residual / SOIL.porosity * (1 - const["water"])
    assert bool((out.w >= floor - 1e-9).all()) and bool((out.w <= const["capacity"] + 1e-9).all())
    assert bool((f["mrro"] >= 0).all()) and bool((f["gpp"] >= 0).all())
    assert bool((f["tran"].abs() <= f["evspsbl"].abs() + 1e-15).all())


def test_surface_diagnostics_match_the_reference_model() -> None:
    """albedo, z0 and LAI computed per row equal the reference's tile fields (guards against the
    two drifting apart when the reference model changes)."""
    static = contract_static(20, 2, seed=4)
    clock = StepClock(0, np.datetime64("2001-07-01T12:00:00"), 3600.0)
    ref = ReferenceBackend()
    state = ref.initial_state(static, clock)
    g = torch.Generator().manual_seed(0)
    state.tensors["w"] = state.tensors["w"] * (
        0.3 + 0.7 * torch.rand(state.tensors["w"].shape, generator=g)
    )
    _, t = ref.step_tiles(state, static, contract_forcing(static, clock, 1), clock)
    rows = tiles.Rows.active(static.cover, static.n_members, all_tiles=True)
    const = {k: v[rows.tile] for k, v in tiles.class_constants(SOIL).items()}
    surf = tiles.surface(
        rows.gather(state.tensors["w"]),
        rows.gather(state.tensors["cleaf"]),
        rows.gather(static.params),
        const,
        SOIL,
    )
    assert torch.allclose(surf.albedo, rows.gather(t["albedo"]), rtol=0, atol=1e-12)
    assert torch.allclose(surf.z0, rows.gather(t["z0"]), rtol=1e-12)
    assert torch.allclose(surf.lai * surf.vgcov, rows.gather(t["lai"]), rtol=0, atol=1e-12)


def test_rows_gather_and_scatter_only_active_tiles() -> None:
    cover = torch.tensor([[0.5, 0.5] + [0.0] * 6, [0.0] * 7 + [1.0]], dtype=torch.float64)
    rows = tiles.Rows.active(cover, members=2)
    assert rows.n == 6
    dense = torch.arange(2 * 2 * 8, dtype=torch.float64).reshape(2, 2, 8)
    got = rows.gather(dense)
    assert got.tolist() == [0.0, 1.0, 15.0, 16.0, 17.0, 31.0]
    back = rows.scatter(torch.zeros_like(dense), got)
    assert torch.equal(back[dense.ne(0) & (back != 0)], dense[dense.ne(0) & (back != 0)])
    assert float(back.sum()) == float(got.sum())
    assert tiles.Rows.active(cover, members=1, all_tiles=True).n == 16
