"""Acceptance: energy and water close to round-off for 10 000 random cells x 1000 steps."""

from __future__ import annotations

import torch

from emulators.constraints import energy_residual, water_residual
from emulators.reference import ReferenceBackend
from emulators.variables import REGISTRY

from .conftest import clock_at, random_forcing, random_static

ENERGY_TOL = 1e-3  # W m-2
WATER_TOL = 1e-6  # kg m-2 per step


def test_energy_and_water_close_every_step_on_random_cells() -> None:
    n_cells, n_steps = 10_000, 1000
    static = random_static(n_cells, seed=1)
    backend = ReferenceBackend()
    clock = clock_at()
    state = backend.initial_state(static, clock)
    g = torch.Generator().manual_seed(2)
    worst_e = worst_w = 0.0
    for _ in range(n_steps):
        forcing = random_forcing(n_cells, g)
        storage_before = (state.tensors["w"] * static.cover).sum(-1)
        state, out = backend.step(state, static, forcing, clock)
        e = energy_residual(out["rns"], out["hfls"], out["hfss"], out["hfdsl"]).abs().max()
        w = (
            water_residual(
                storage_before, out["mrso"], forcing["pr"], out["evspsbl"], out["mrro"], clock.dt
            )
            .abs()
            .max()
        )
        worst_e, worst_w = max(worst_e, float(e)), max(worst_w, float(w))
        clock = clock.advance()
    print(
        f"\nclosure over {n_cells} cells x {n_steps} steps: max |Rn-LE-H-G| = {worst_e:.3e} "
        f"W m-2, max water residual = {worst_w:.3e} kg m-2"
    )
    assert worst_e <= ENERGY_TOL
    assert worst_w <= WATER_TOL
    for name, value in out.items():
        assert torch.isfinite(value).all(), name
    # the state stays physical after 1000 random steps
    assert (state.tensors["w"] >= 0).all()
    assert (out["mrro"] >= 0).all()
    ts = REGISTRY["ts"]
    assert ts.valid_min <= float(out["ts"].min()) and float(out["ts"].max()) <= ts.valid_max


def test_closure_holds_at_tile_level_with_daily_steps() -> None:
    static = random_static(500, seed=3)
    backend = ReferenceBackend()
    clock = clock_at(dt=86_400.0)
    state = backend.initial_state(static, clock)
    g = torch.Generator().manual_seed(4)
    for _ in range(60):
        forcing = random_forcing(500, g)
        new, tiles = backend.step_tiles(state, static, forcing, clock)
        e = energy_residual(tiles["rns"], tiles["hfls"], tiles["hfss"], tiles["hfdsl"])
        w = water_residual(
            tiles["mrso_old"],
            tiles["mrso"],
            tiles["pr_in"],
            tiles["evspsbl"],
            tiles["mrro"],
            clock.dt,
        )
        assert float(e.abs().max()) <= ENERGY_TOL
        assert float(w.abs().max()) <= WATER_TOL
        state, clock = new, clock.advance()
