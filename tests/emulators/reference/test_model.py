"""Reference model behaviour: bad input, determinism, purity, tiles, FAO-56 surface basics."""

from __future__ import annotations

import pytest
import torch

from emulators import parameters as P
from emulators.protocol import LandBackend, LandStatic
from emulators.reference import ReferenceBackend, ReferenceConfig, Surface
from emulators.variables import VariableError

from .conftest import clock_at, random_forcing, random_static


def test_reference_backend_satisfies_the_protocol() -> None:
    assert isinstance(ReferenceBackend(), LandBackend)


@pytest.mark.parametrize(
    ("index", "value", "name"),
    [
        (0, 60.0, "vegh"),
        (1, 0.01, "rlfv"),
        (7, 1e-3, "vmax0"),
        (11, -10.0, "psicr"),
        (4, float("nan"), "vgcov"),
    ],
)
def test_out_of_range_parameter_is_named(index: int, value: float, name: str) -> None:
    static = random_static(4, seed=0)
    params = static.params.clone()
    params[0, 2, 3, index] = value
    with pytest.raises(P.ParameterRangeError, match=name) as err:
        LandStatic(static.lat, static.lon, static.cover, params)
    assert err.value.parameter == name


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("tas", 400.0, "valid_range"),
        ("rsds", -5.0, "valid_range"),
        ("pr", float("nan"), "finite"),
        ("huss", float("inf"), "finite"),
    ],
)
def test_out_of_range_forcing_is_named_and_state_untouched(
    name: str, value: float, rule: str
) -> None:
    static = random_static(8, seed=0)
    backend = ReferenceBackend()
    state = backend.initial_state(static, clock_at())
    before = state.clone()
    forcing = random_forcing(8, torch.Generator().manual_seed(0))
    forcing[name] = forcing[name].clone()
    forcing[name][0, 5] = value
    with pytest.raises(VariableError, match=name) as err:
        backend.step(state, static, forcing, clock_at())
    assert err.value.variable == name and err.value.rule == rule
    assert state.equal(before)


def test_missing_forcing_is_named() -> None:
    static = random_static(3, seed=0)
    backend = ReferenceBackend()
    forcing = random_forcing(3, torch.Generator().manual_seed(0))
    del forcing["rlds"]
    with pytest.raises(ValueError, match="rlds"):
        backend.step(backend.initial_state(static, clock_at()), static, forcing, clock_at())


def test_step_is_deterministic_and_pure() -> None:
    static = random_static(50, seed=5)
    backend = ReferenceBackend()
    state = backend.initial_state(static, clock_at())
    snapshot = state.clone()
    forcing = random_forcing(50, torch.Generator().manual_seed(6))
    s1, o1 = backend.step(state, static, forcing, clock_at())
    s2, o2 = backend.step(state, static, forcing, clock_at())
    assert state.equal(snapshot)  # the input state is not modified
    assert s1.equal(s2)
    assert all(torch.equal(o1[k], o2[k]) for k in o1)


def test_cell_of_one_class_equals_that_tile() -> None:
    static = random_static(6, seed=7)
    cover = torch.zeros_like(static.cover)
    cover[:, int(P.LandCover.CROPLAND)] = 1.0
    pure = LandStatic(static.lat, static.lon, cover, static.params)
    backend = ReferenceBackend()
    state = backend.initial_state(pure, clock_at())
    forcing = random_forcing(6, torch.Generator().manual_seed(8))
    _, tiles = backend.step_tiles(state, pure, forcing, clock_at())
    _, cells = backend.step(state, pure, forcing, clock_at())
    crop = int(P.LandCover.CROPLAND)
    for name in ("hfls", "hfss", "ts", "albedo", "mrro"):
        assert torch.allclose(cells[name], tiles[name][..., crop], rtol=1e-12), name


def test_newton_converges_to_the_surface_energy_balance() -> None:
    """The exact-closure G differs from the conductive flux only by the Newton residual."""
    static = random_static(200, seed=9)
    backend = ReferenceBackend(ReferenceConfig(newton_iterations=8))
    more = ReferenceBackend(ReferenceConfig(newton_iterations=30))  # same 3 stability updates
    state = backend.initial_state(static, clock_at())
    forcing = random_forcing(200, torch.Generator().manual_seed(10))
    forcing["sfcWind"] = forcing["sfcWind"].clamp_min(1.0)
    _, a = backend.step(state, static, forcing, clock_at())
    _, b = more.step(state, static, forcing, clock_at())
    # more iterations change the skin temperature by well under a millikelvin
    assert float((a["ts"] - b["ts"]).abs().max()) < 1e-3


def test_fao56_surface_has_reference_albedo_and_no_phenology() -> None:
    static = random_static(5, seed=11)
    backend = ReferenceBackend(ReferenceConfig(surface=Surface.FAO56_GRASS))
    state = backend.initial_state(static, clock_at())
    forcing = random_forcing(5, torch.Generator().manual_seed(12))
    new, out = backend.step(state, static, forcing, clock_at(dt=86_400.0))
    assert torch.allclose(out["albedo"], torch.full_like(out["albedo"], 0.23))
    assert torch.equal(new.tensors["cleaf"], state.tensors["cleaf"])


def test_weakly_coupled_tile_does_not_run_away_on_clear_cold_nights() -> None:
    """Regression: evergreen forest with chl and binter at their minimum once cooled to ~40 K."""
    n = 4
    cover = torch.zeros(n, P.N_CLASSES, dtype=torch.float64)
    cover[:, int(P.LandCover.EVERGREEN_BROADLEAF_FOREST)] = 1.0
    static = LandStatic.from_cover(torch.full((n,), 52.0), torch.full((n,), 5.7), cover)
    params = static.params.clone()
    chl, binter = P.PARAMETER_NAMES.index("chl"), P.PARAMETER_NAMES.index("binter")
    params[..., chl], params[..., binter] = 0.01, 0.001
    static = LandStatic(static.lat, static.lon, static.cover, params)
    backend = ReferenceBackend()
    clock = clock_at()
    state = backend.initial_state(static, clock)
    night = {
        k: torch.full((1, n), v, dtype=torch.float64)
        for k, v in dict(
            tas=285.0, huss=0.001, ps=101_000.0, sfcWind=0.0, pr=0.0, rsds=0.0, rlds=100.0
        ).items()
    }
    for _ in range(72):  # calm, dry, clear: without the guard T_s falls to 236 K
        state, out = backend.step(state, static, night, clock)
        clock = clock.advance()
    assert torch.isfinite(out["ts"]).all()
    assert float(out["ts"].min()) >= 285.0 - 30.0
