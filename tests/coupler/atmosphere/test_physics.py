"""The column model's equations, one by one, against closed forms and published values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from coupler.atmosphere import physics as phys
from emulators import physics as land_physics

S0 = 1361.0


def daily_mean_insolation(lat_deg: float, dec: float) -> float:
    """Hartmann (2016) eq. 2.17: Q = S0/π (h0 sin φ sin δ + cos φ cos δ sin h0)."""
    phi = np.deg2rad(lat_deg)
    h0 = np.arccos(np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0))
    return S0 / np.pi * (h0 * np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.sin(h0))


@pytest.mark.parametrize("lat", [-89.0, -60.0, -23.0, 0.0, 30.0, 66.0, 80.0])
@pytest.mark.parametrize("dec_deg", [-23.44, -10.0, 0.0, 12.0, 23.44])
def test_daily_mean_cos_zenith_is_the_classical_daily_insolation(
    lat: float, dec_deg: float
) -> None:
    dec = np.deg2rad(dec_deg)
    for h1 in (-np.pi, -2.0, 0.3):  # any whole day, wherever it starts
        mu = phys.mean_cos_zenith(np.array([lat]), dec, np.array([h1]), np.array([h1 + 2 * np.pi]))
        assert S0 * mu[0] == pytest.approx(daily_mean_insolation(lat, dec), abs=1e-9)


def test_sub_daily_means_add_up_to_the_daily_mean_and_follow_the_sun() -> None:
    lat = np.array([45.0, -30.0, 75.0])
    dec = np.deg2rad(-15.0)
    day = phys.mean_cos_zenith(lat, dec, np.full(3, -np.pi), np.full(3, np.pi))
    edges = np.linspace(-np.pi, np.pi, 5)
    parts = [
        phys.mean_cos_zenith(lat, dec, np.full(3, a), np.full(3, b))
        for a, b in itertools.pairwise(edges)
    ]
    np.testing.assert_allclose(np.mean(parts, axis=0), day, rtol=1e-12)
    assert parts[0][0] == 0.0  # 45°N in winter: sunset before 18 h
    assert parts[1][0] > parts[0][0] and parts[2][0] == pytest.approx(parts[1][0])  # symmetric noon


def test_solar_geometry_values() -> None:
    assert np.rad2deg(phys.solar_declination(172.0)) == pytest.approx(23.44, abs=0.1)  # 21 June
    assert np.rad2deg(phys.solar_declination(355.0)) == pytest.approx(-23.44, abs=0.1)
    assert phys.earth_sun_distance_factor(3.0) == pytest.approx(1.034, abs=2e-3)  # perihelion
    assert phys.earth_sun_distance_factor(185.0) == pytest.approx(0.967, abs=2e-3)
    # solar noon at 90°E is 06 UTC
    assert phys.hour_angle(6.0, np.array([90.0]))[0] == pytest.approx(0.0)


def test_shortwave_pass_conserves_energy() -> None:
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 1300, 50)
    cloud = rng.uniform(0, 1, 50)
    mu = rng.uniform(0.05, 1, 50)
    ray = phys.rayleigh_reflectance(mu)
    absorb = phys.water_vapour_absorptance(rng.uniform(1, 60, 50), mu) + 0.025
    rsds, reflected, absorbed = phys.shortwave_down(s, ray, absorb, cloud, 0.66)
    np.testing.assert_allclose(rsds + reflected + absorbed, s, rtol=1e-13)
    assert (rsds >= 0).all()


def test_lacis_hansen_values() -> None:
    # overhead sun (μ=1): M = 35/sqrt(1225) = 1, so y = w[cm]
    a = phys.water_vapour_absorptance(np.array([20.0]), np.array([1.0]))[0]
    y = 2.0
    assert a == pytest.approx(2.9 * y / ((1 + 141.5 * y) ** 0.635 + 5.925 * y))
    assert 0.1 < a < 0.2
    assert phys.rayleigh_reflectance(np.array([1.0]))[0] == pytest.approx(0.28 / 7.43)


def test_longwave_emissivity() -> None:
    # Brutsaert at e = 10 hPa, T = 283 K: 1.24 (10/283)^(1/7) ≈ 0.771
    eps = phys.clear_sky_emissivity(np.array([1000.0]), np.array([283.0]))[0]
    assert eps == pytest.approx(1.24 * (10 / 283) ** (1 / 7))
    assert phys.all_sky_emissivity(np.array([eps]), np.array([1.0]))[0] == 1.0
    assert phys.all_sky_emissivity(np.array([eps]), np.array([0.0]))[0] == eps
    olr = phys.outgoing_longwave(np.array([288.15]), 223.0, 1.78, 3.93)[0]
    assert olr == pytest.approx(223.0 + 1.78 * 15.0 - 3.93)


def test_saturation_humidity_matches_the_land_models() -> None:
    t = np.linspace(230.0, 320.0, 19)
    qs_land, _ = land_physics.saturation_specific_humidity(torch.from_numpy(t), torch.tensor(1e5))
    np.testing.assert_allclose(
        phys.saturation_specific_humidity(t, 1e5), qs_land.numpy(), rtol=1e-12
    )
    rh = phys.relative_humidity(0.5 * phys.saturation_specific_humidity(t, 1e5), t, 1e5)
    assert rh == pytest.approx(np.full_like(t, 0.5), rel=3e-2)  # q ≈ ε e / p


def test_precipitation_relaxation_and_clouds() -> None:
    qs = np.array([0.02, 0.02, 0.02])
    q = np.array([0.010, 0.016, 0.019])
    p = phys.precipitation_relaxation(q, qs, 0.8, 2500.0, 21_600.0, 86_400.0)
    assert p[0] == 0.0 and p[1] == 0.0  # at or below the threshold (0.8 · 0.02 = 0.016)
    excess = (0.019 - 0.016) * 2500.0
    assert p[2] * 86_400.0 == pytest.approx(excess * (1 - np.exp(-4.0)))
    assert p[2] * 86_400.0 < excess  # never more than the excess
    c = phys.cloud_fraction(np.array([0.3, 0.45, 0.8, 1.0, 1.2]), 0.45)
    assert c[0] == c[1] == 0.0 and c[3] == c[4] == 1.0
    assert c[2] == pytest.approx(1 - np.sqrt(0.2 / 0.55))


def test_two_layer_ocean_tendencies() -> None:
    t = phys.mixed_layer_tendency(np.array([10.0]), np.array([-4.0]), 2.0, np.array([1.0]),
                                  np.array([0.5]), 3e8)[0]  # fmt: skip
    assert t == pytest.approx((10 - 4 - 2 * 0.5) / 3e8)
    d = phys.deep_ocean_tendency(2.0, np.array([1.0]), np.array([0.5]), 4e9)[0]
    assert d == pytest.approx(2 * 0.5 / 4e9)
