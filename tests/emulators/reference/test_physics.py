"""Closed-form and published-value checks of the physics functions and the soil column."""

from __future__ import annotations

import math

import pytest
import torch

from emulators import constraints, physics
from emulators.reference import soil
from emulators.reference.photosynthesis import _colimit, water_stress

T = torch.tensor


def test_saturation_vapour_pressure_matches_fao56_table() -> None:
    # FAO-56 Annex 2, Table 2.3: e°(20 °C) = 2.338 kPa, e°(30 °C) = 4.243 kPa
    es = physics.saturation_vapour_pressure(T([293.15, 303.15], dtype=torch.float64))
    assert es.tolist() == pytest.approx([2338.0, 4243.0], abs=1.0)
    # Table 2.4: slope Δ(20 °C) = 0.145 kPa/°C
    slope = physics.saturation_vapour_pressure_slope(T([293.15], dtype=torch.float64))
    assert float(slope) == pytest.approx(145.0, abs=0.5)


def test_specific_humidity_round_trip_and_derivative() -> None:
    t = torch.linspace(250, 315, 50, dtype=torch.float64)
    p = torch.full_like(t, 95_000.0)
    e = physics.saturation_vapour_pressure(t)
    q = physics.specific_humidity_from_vapour_pressure(e, p)
    assert torch.allclose(physics.vapour_pressure_from_specific_humidity(q, p), e, rtol=1e-12)
    qs, dqs = physics.saturation_specific_humidity(t, p)
    h = 1e-4
    numeric = (
        physics.saturation_specific_humidity(t + h, p)[0]
        - physics.saturation_specific_humidity(t - h, p)[0]
    ) / (2 * h)
    assert torch.allclose(dqs, numeric, rtol=1e-6)
    assert torch.allclose(qs, q)


def test_fao56_aerodynamic_resistance_of_reference_grass() -> None:
    # FAO-56 eq. 4 with h = 0.12 m, z = 2 m: r_a = 208 / u2 (Box 4)
    z0m = T([0.123 * 0.12], dtype=torch.float64)
    d = 0.67 * 0.12
    ra = physics.neutral_aerodynamic_resistance(
        T([2.0], dtype=torch.float64), 2.0 - d, 2.0 - d, z0m, 0.1 * z0m
    )
    assert float(ra) == pytest.approx(208.0 / 2.0, rel=0.01)


def test_aerodynamic_resistance_below_the_roughness_is_floored() -> None:
    # 2-m station wind over a 20-m forest (z0m = 2.46 m): the log profile would give r_a < 0
    z0m = T([0.123 * 20.0, 0.123 * 0.5], dtype=torch.float64)
    u = T([2.0, 2.0], dtype=torch.float64)
    ra = physics.neutral_aerodynamic_resistance(u, 2.0, 2.0, z0m, 0.1 * z0m)
    assert bool((ra > 0).all())
    floor = physics.ROUGHNESS_HEIGHT_FLOOR
    expected = math.log(floor) * math.log(2.0 / 0.246) / (0.41**2 * 2.0)
    assert float(ra[0]) == pytest.approx(expected, rel=1e-3)
    # above the floor the formula is untouched, bitwise
    unfloored = torch.log(2.0 / z0m[1:]) * torch.log(2.0 / (0.1 * z0m[1:])) / (0.41**2 * 2.0)
    assert float(ra[1]) == float(unfloored[0])


def test_stability_factor_limits() -> None:
    f = physics.stability_factor(T([-1.0, 0.0, 0.1, 5.0], dtype=torch.float64))
    assert float(f[1]) == 1.0
    assert float(f[0]) == pytest.approx(17.0**0.75)
    assert float(f[2]) == pytest.approx(0.25)
    assert float(f[3]) > 0  # capped: never zero exchange


def test_canopy_reflectance_limits() -> None:
    omega, soil_alb = T([0.5], dtype=torch.float64), T([0.3], dtype=torch.float64)
    bare = physics.canopy_reflectance(omega, T([0.0], dtype=torch.float64), soil_alb)
    assert float(bare) == pytest.approx(0.3)
    dense = physics.canopy_reflectance(omega, T([50.0], dtype=torch.float64), soil_alb)
    s = math.sqrt(0.5)
    assert float(dense) == pytest.approx((1 - s) / (1 + s))


def test_colimitation_is_a_smooth_minimum() -> None:
    a, b = T([1.0, 5.0, 2.0], dtype=torch.float64), T([5.0, 1.0, 2.0], dtype=torch.float64)
    x = _colimit(a, b, 0.98)
    assert (x <= torch.minimum(a, b) + 1e-12).all()
    assert x[0] == pytest.approx(x[1])
    assert float(_colimit(a, b, 1.0)[0]) == pytest.approx(1.0)


def test_water_stress_follows_fao56_eq84() -> None:
    cfg = soil.SoilConfig()
    theta_fc = soil.water_content_at(-33.0, cfg)
    theta_cr = soil.water_content_at(torch.tensor(-200.0, dtype=torch.float64), cfg)
    # the inverse of the retention curve
    assert float(soil.matric_potential_kpa(theta_fc, cfg)) == pytest.approx(-33.0)
    mid = theta_cr + 0.5 * (theta_fc - theta_cr)  # half the available water used: Ks = 1
    quarter = theta_cr + 0.25 * (theta_fc - theta_cr)  # three quarters used: Ks = 0.5
    theta = torch.stack([theta_fc, mid, quarter, theta_cr, theta_cr - 0.05])
    fw = water_stress(theta, theta_fc, theta_cr)
    assert fw.tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])


def test_soil_heat_conduction_conserves_energy_and_relaxes() -> None:
    cfg = soil.SoilConfig()
    t = T([[280.0, 285.0, 290.0]], dtype=torch.float64)
    scale = T([1.0], dtype=torch.float64)
    g = T([50.0], dtype=torch.float64)
    for dt in (600.0, 3600.0, 86400.0 * 10):
        new = soil.conduct_heat(t, g, scale, cfg, dt)
        gained = soil.column_heat_content(new, scale, cfg) - soil.column_heat_content(t, scale, cfg)
        assert float(gained) == pytest.approx(50.0 * dt, rel=1e-10)
    # with no flux the column relaxes to its heat-content-weighted mean
    new = soil.conduct_heat(t, T([0.0], dtype=torch.float64), scale, cfg, 1e14)
    dz = torch.tensor(cfg.layer_thickness, dtype=torch.float64)
    mean = float((t * dz).sum() / dz.sum())
    assert new.tolist()[0] == pytest.approx([mean] * 3, abs=1e-6)


def test_surface_coupling_is_the_linear_response_of_the_column() -> None:
    cfg = soil.SoilConfig()
    t = T([[280.0, 285.0, 290.0]], dtype=torch.float64)
    scale, kappa = T([1.0], dtype=torch.float64), T([24.0], dtype=torch.float64)
    slope, offset = soil.surface_coupling(t, kappa, scale, cfg, 3600.0)
    ts = T([300.0], dtype=torch.float64)
    g = slope * ts - offset
    new = soil.conduct_heat(t, g, scale, cfg, 3600.0)  # Neumann with that G ...
    # ... gives the same top layer as the Dirichlet coupling: G = κ (T_s − T_1')
    assert float(g) == pytest.approx(float(kappa * (ts - new[..., 0])), rel=1e-10)


def test_close_water_limits_evaporation_and_spills_overflow() -> None:
    w = T([10.0, 95.0, 50.0], dtype=torch.float64)
    cap = T([100.0, 100.0, 100.0], dtype=torch.float64)
    p = T([0.0, 0.01, 0.0], dtype=torch.float64)
    e = T([0.01, 0.0, -1e-5], dtype=torch.float64)  # demand; last is dew
    r = T([0.0, 0.0, 0.0], dtype=torch.float64)
    upd = constraints.close_water(w, p, e, r, cap, 3600.0, floor=2.0)
    assert upd.storage.tolist() == pytest.approx([2.0, 100.0, 50.036])
    assert upd.limited.tolist() == [True, False, False]
    assert float(upd.runoff[1]) == pytest.approx((95 + 36 - 100) / 3600)
    res = constraints.water_residual(w, upd.storage, p, upd.evap, upd.runoff, 3600.0)
    assert float(res.abs().max()) < 1e-12
