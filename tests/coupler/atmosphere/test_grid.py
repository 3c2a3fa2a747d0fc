"""Cell lists: areas, land fractions from global-land-mask, the diffusion operators, ranks."""

from __future__ import annotations

import numpy as np
import pytest

from coupler.atmosphere import grid as G

R = G.EARTH_RADIUS


def sphere() -> float:
    return 4.0 * np.pi * R**2


def test_regular_grid_areas_and_real_land_fraction() -> None:
    g = G.regular(10.0)
    assert g.shape == (18, 36) and g.n_cells == 648
    assert g.area.sum() == pytest.approx(sphere(), rel=1e-12)
    land = float(g.weights @ g.land_fraction)
    assert 0.26 < land < 0.34  # the Earth's land incl. Antarctica and lakes is ~0.29-0.33
    lat = g.lat.reshape(g.shape)[:, 0]
    frac = g.land_fraction.reshape(g.shape)
    assert frac[lat < -80].mean() > 0.85  # Antarctica (ice shelves count as ocean)
    assert frac[np.abs(lat) < 10].mean() < 0.35  # mostly ocean at the equator
    # every land cell is above the threshold, every other cell is pure ocean
    assert g.land_fraction[g.land_index].min() >= 0.05
    assert (g.land_fraction[np.setdiff1d(np.arange(g.n_cells), g.land_index)] == 0).all()


@pytest.mark.parametrize(("deg", "message"), [(7.0, "whole cells"), (0.1, "5 arc-minutes")])
def test_bad_resolution_is_named(deg: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"resolution: .*{message}"):
        G.regular_axes(deg)


def test_regular_laplacian_is_conservative_and_exact_for_l1() -> None:
    g = G.regular(5.0, land_fraction=np.zeros((36, 72)))
    lap = g.laplacian
    rng = np.random.default_rng(0)
    x = rng.normal(size=g.n_cells)
    assert abs(g.area @ (lap @ x)) < 1e-12 * np.abs(g.area @ x).max() + 1e-6
    np.testing.assert_allclose(lap @ np.ones(g.n_cells), 0.0, atol=1e-22)  # entries ~1e-11
    y = np.sin(np.deg2rad(g.lat))  # spherical harmonic l = 1: ∇²y = −2 y / R²
    np.testing.assert_allclose((lap @ y) * R**2 / y, -2.0, rtol=2e-3)


def test_graph_laplacian_on_a_quasi_uniform_mesh() -> None:
    n = 2000
    i = np.arange(n) + 0.5
    lat = np.rad2deg(np.arcsin(1 - 2 * i / n))
    lon = (np.rad2deg(np.pi * (1 + 5**0.5) * i)) % 360 - 180  # Fibonacci sphere
    g = G.CellGrid(lat, lon, np.full(n, sphere() / n), np.zeros(n))
    lap = g.laplacian
    x = np.random.default_rng(1).normal(size=n)
    assert abs(g.area @ (lap @ x)) < 1e-9
    y = np.sin(np.deg2rad(lat))
    eig = float(((lap @ y) * R**2) @ y / (y @ y))
    assert eig == pytest.approx(-2.0, rel=0.2)  # ~10-20 % on such meshes (docs/atmosphere.md)


def test_split_land_covers_every_land_cell_once() -> None:
    frac = np.zeros((18, 36))
    frac[3:9, 5:15] = 0.5
    g = G.regular(10.0, land_fraction=frac)
    parts = G.split_land(g, 3)
    assert len(parts) == 3 and all(p.size > 0 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), g.land_index)
    with pytest.raises(ValueError, match="ranks: 61 ranks but only 60 land cells"):
        G.split_land(g, 61)


def test_cell_grid_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="area: cell areas must be > 0"):
        G.CellGrid(np.zeros(2), np.zeros(2), np.array([1.0, 0.0]), np.zeros(2))
    with pytest.raises(ValueError, match="land_fraction: must lie in"):
        G.CellGrid(np.zeros(2), np.zeros(2), np.ones(2), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="lat: latitudes"):
        G.CellGrid(np.array([0.0, 95.0]), np.zeros(2), np.ones(2), np.zeros(2))
