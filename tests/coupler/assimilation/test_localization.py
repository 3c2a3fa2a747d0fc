"""Gaspari–Cohn taper, distances and sparse localisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coupler.assimilation.localization import (
    EARTH_RADIUS_KM,
    Localization,
    gaspari_cohn,
    great_circle_km,
    half_width_from_radius,
    periodic_distance,
)
from coupler.errors import InvalidArgument


def test_gaspari_cohn_shape() -> None:
    d = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    w = gaspari_cohn(d, half_width=2.0)
    assert w[0] == 1.0
    # eq. 4.10 at z = 1: -1/4 + 1/2 + 5/8 - 5/3 + 1 = 5/24
    assert w[2].item() == pytest.approx(5.0 / 24.0, abs=1e-14)
    assert (w[4:] == 0).all()
    assert (w[:-1] >= w[1:]).all()  # non-increasing
    # continuous at z = 1 and z = 2
    eps = torch.tensor([2.0 - 1e-9, 2.0 + 1e-9, 4.0 - 1e-9], dtype=torch.float64)
    v = gaspari_cohn(eps, 2.0)
    assert v[0].item() == pytest.approx(v[1].item(), abs=1e-8)
    assert v[2].item() == pytest.approx(0.0, abs=1e-8)


def test_dapper_radius_convention_has_the_curvature_of_a_gaussian() -> None:
    r = 4.0
    d = torch.tensor([0.05 * r, 0.1 * r], dtype=torch.float64)
    w = gaspari_cohn(d, half_width_from_radius(r))
    torch.testing.assert_close(w, torch.exp(-0.5 * (d / r) ** 2), rtol=0, atol=2e-4)
    with pytest.raises(InvalidArgument) as err:
        half_width_from_radius(0.0)
    assert err.value.field == "localization" and err.value.rule == "positive"
    with pytest.raises(InvalidArgument):
        gaspari_cohn(torch.zeros(1), -1.0)


def test_great_circle_km_known_distances() -> None:
    assert great_circle_km(0.0, 0.0, 90.0, 0.0).item() == pytest.approx(
        math.pi / 2 * EARTH_RADIUS_KM
    )
    assert great_circle_km(0.0, 0.0, 0.0, 1.0).item() == pytest.approx(111.195, abs=1e-3)
    assert great_circle_km(10.0, 179.5, 10.0, -179.5).item() == pytest.approx(
        great_circle_km(10.0, 0.0, 10.0, 1.0).item()
    )
    a = great_circle_km(torch.tensor([45.0, -30.0]), torch.tensor([8.0, 150.0]), 51.5, -0.1)
    b = great_circle_km(51.5, -0.1, torch.tensor([45.0, -30.0]), torch.tensor([8.0, 150.0]))
    torch.testing.assert_close(a, b)
    assert great_circle_km(0.0, 0.0, 0.0, 180.0).item() == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_periodic_distance() -> None:
    d = periodic_distance(torch.tensor([0.0, 1.0, 39.0]), torch.tensor(38.0), 40.0)
    assert d.tolist() == [2.0, 3.0, 1.0]


def test_sphere_localization_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    s_lat, s_lon = rng.uniform(30, 60, 300), rng.uniform(-10, 30, 300)
    o_lat, o_lon = rng.uniform(30, 60, 25), rng.uniform(-10, 30, 25)
    # two state columns per site (e.g. LAI and soil water) and one global parameter
    sites = np.concatenate([np.arange(300), np.arange(300), [-1]])
    half = 250.0
    loc = Localization.sphere(s_lat, s_lon, sites, o_lat, o_lon, half)
    rho_s, rho_o = loc.dense()
    d_s = great_circle_km(
        torch.tensor(o_lat)[:, None],
        torch.tensor(o_lon)[:, None],
        torch.tensor(s_lat)[None, :],
        torch.tensor(s_lon)[None, :],
    )
    want = gaspari_cohn(d_s, half)
    torch.testing.assert_close(rho_s[:, :300], want)
    torch.testing.assert_close(rho_s[:, 300:600], want)
    assert (rho_s[:, 600] == 1.0).all()
    d_o = great_circle_km(
        torch.tensor(o_lat)[:, None],
        torch.tensor(o_lon)[:, None],
        torch.tensor(o_lat)[None, :],
        torch.tensor(o_lon)[None, :],
    )
    torch.testing.assert_close(rho_o, gaspari_cohn(d_o, half))
    assert 0 < (want > 0).sum() < want.numel()  # genuinely sparse


def test_by_state_lists_every_observation_of_a_column() -> None:
    pos = torch.arange(10, dtype=torch.float64)
    loc = Localization.periodic(pos, pos[::2], 10.0, 1.5)
    idx, w = loc.by_state()
    rho_s, _ = loc.dense()
    dense_again = torch.zeros(10, 5, dtype=torch.float64)
    dense_again.scatter_add_(1, idx, w)
    torch.testing.assert_close(dense_again, rho_s.T)
