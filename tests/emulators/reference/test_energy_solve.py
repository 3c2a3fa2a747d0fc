"""The surface energy balance solve (``reference.energy.solve_energy_balance``): the loop with
its invariants formed once gives every bit of the residual and derivative written out in each
iteration, and the water tile's conductances (``compiled.open_water.water_conductances``) give
every bit of the general ones on water rows."""

from __future__ import annotations

import torch

from emulators import constants as C
from emulators import physics
from emulators.compiled.open_water import water_conductances
from emulators.reference.energy import (
    SKIN_ABOVE_AIR_MAX,
    SKIN_BELOW_AIR_MAX,
    EnergyBalance,
    Exchange,
    conductances,
    solve_energy_balance,
)

Tensor = torch.Tensor


def _written_out(
    t_start: Tensor, eb: EnergyBalance, ex: Exchange, iterations: int, stability_updates: int
) -> Tensor:
    """The Newton iteration with every term of f(T_s) and f'(T_s) evaluated in the loop."""
    t_s = t_start.clone()
    g = conductances(t_s, ex)
    for it in range(iterations):
        if it < stability_updates:
            g = conductances(t_s, ex)
        g_h, g_e, _ = g
        qs, dqs = physics.saturation_specific_humidity(t_s, eb.ps)
        resid = (
            eb.s_abs
            + eb.emis * eb.rlds
            - eb.emis * C.STEFAN_BOLTZMANN * t_s**4
            - eb.rho * C.CP_AIR * g_h * (t_s - eb.ta)
            - eb.rho * eb.lam * g_e * (qs - eb.qa)
            - (eb.g_slope * t_s - eb.g_offset)
        )
        deriv = (
            -4.0 * eb.emis * C.STEFAN_BOLTZMANN * t_s**3
            - eb.rho * C.CP_AIR * g_h
            - eb.rho * eb.lam * g_e * dqs
            - eb.g_slope
        )
        t_s = t_s - (resid / deriv).clamp(-15.0, 15.0)
        t_s = torch.minimum(
            torch.maximum(t_s, eb.ta - SKIN_BELOW_AIR_MAX), eb.ta + SKIN_ABOVE_AIR_MAX
        )
    return t_s


def _case(n: int, water: bool, seed: int = 0) -> tuple[Tensor, EnergyBalance, Exchange]:
    """``n`` rows of plausible day and night conditions; ``water``: rows of the water tile
    (no vegetation, LAI 0, open-water flag), else vegetated rows."""
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)

    ta = u(255.0, 310.0)
    ps = u(70_000.0, 102_000.0)
    qa = 0.8 * physics.saturation_specific_humidity(ta, ps)[0] * u(0.2, 1.0)
    eb = EnergyBalance(
        s_abs=u(0.0, 900.0),
        rlds=u(200.0, 450.0),
        emis=u(0.95, 0.99),
        rho=physics.air_density(ta, qa, ps),
        lam=physics.latent_heat_vaporisation(ta),
        ta=ta,
        qa=qa,
        ps=ps,
        g_slope=u(5.0, 40.0),
        g_offset=u(1_000.0, 12_000.0),
    )
    zero = torch.zeros(n, dtype=torch.float64)
    ex = Exchange(
        ra_neutral=u(10.0, 300.0),
        ta=ta,
        wind=u(0.0, 12.0),
        height_wind=10.0,
        g_bh=u(0.01, 0.1),
        g_bv=u(0.01, 0.1),
        g_stomata=zero if water else u(0.0, 0.02),
        lai=zero if water else u(0.0, 6.0),
        vgcov=zero if water else u(0.2, 1.0),
        r_soil=u(50.0, 3_000.0),
        water=(zero + 1.0) if water else zero,
    )
    return ta + u(-15.0, 25.0), eb, ex


def test_the_solve_is_every_bit_the_written_out_iteration() -> None:
    for water in (False, True):
        t0, eb, ex = _case(4096 + 37, water)
        for iterations, updates in ((8, 3), (3, 3), (1, 0)):
            got, _ = solve_energy_balance(t0, eb, ex, iterations, updates)
            want = _written_out(t0, eb, ex, iterations, updates)
            assert torch.equal(got, want), (water, iterations, updates)
            assert not torch.equal(got, t0)


def test_water_conductances_are_every_bit_the_general_ones_on_water_rows() -> None:
    t_s, _, ex = _case(4096 + 37, water=True)
    for a, b in zip(water_conductances(t_s, ex), conductances(t_s, ex), strict=True):
        assert torch.equal(a, b)
    # and the water solve through them is the general solve
    t0, eb, ex = _case(1000, water=True, seed=1)
    got, g_got = solve_energy_balance(t0, eb, ex, 8, 3, water_conductances)
    want, g_want = solve_energy_balance(t0, eb, ex, 8, 3)
    assert torch.equal(got, want)
    assert all(torch.equal(a, b) for a, b in zip(g_got, g_want, strict=True))


def test_water_conductances_are_not_the_general_ones_on_land_rows() -> None:
    """The shortcut holds for water rows only: on vegetated rows the canopy terms count."""
    t_s, _, ex = _case(256, water=False)
    g_h, g_e, g_t = water_conductances(t_s, ex)
    want = conductances(t_s, ex)
    assert not torch.equal(g_h, want[0])
    assert not torch.equal(g_e, want[1])
    assert bool((want[2] > 0).any()) and bool((g_t == 0).all())
