"""The column model's stepper, standalone (bucket land): energy and water closure, the forcing
it sends the land, the slab ocean's q-flux, the Hadley transport and config validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from coupler.atmosphere import climatology, transport
from coupler.atmosphere.column import ColumnConfig, ColumnModel, Forcing
from coupler.atmosphere.driver import OceanMode, integrate
from coupler.atmosphere.grid import CellGrid, regular
from coupler.atmosphere.ocean import QFlux
from coupler.atmosphere.report import ENERGY_RESIDUAL_BOUND
from coupler.atmosphere.surface import BucketLand
from emulators import variables as V

START = np.datetime64("2001-01-01T00:00:00")


@pytest.fixture(scope="module")
def grid() -> CellGrid:
    return regular(10.0)


def test_energy_budget_closes_every_step_and_the_land_gets_valid_forcing(grid: CellGrid) -> None:
    """6-hourly steps (diurnal sun), 40 days, SST held then prognostic with ERF."""
    cfg = ColumnConfig(dt=21_600.0)
    model = ColumnModel(grid, cfg)
    land = BucketLand(grid.land_index.size, cfg.dt)
    seen: list[dict[str, np.ndarray]] = []

    class Checking:
        def exchange(self, index: int, forcing: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            V.check_all(forcing, V.REQUIRED_FORCING)
            V.check("co2", forcing["co2"])
            seen.append(dict(forcing))
            return land.exchange(index, forcing)

    q = QFlux(grid.n_cells)
    res = integrate(
        model, model.initial_state(START), Checking(), 80, lambda t: Forcing(0.0, 285.0),
        OceanMode(diagnose=q),
    )  # fmt: skip
    res2 = integrate(model, res.state, Checking(), 80, lambda t: Forcing(4.0, 570.0),
                     OceanMode(qflux=q.table()), land_index0=80)  # fmt: skip
    residuals = [abs(b.residual) for b in res.budgets + res2.budgets]
    assert max(residuals) < ENERGY_RESIDUAL_BOUND
    # the sun moves: a land cell sees night (0) and day within a day
    rsds = np.array([f["rsds"] for f in seen[:4]])
    assert (rsds.min(axis=0) == 0).any() and rsds.max() > 300
    # the ocean stores what the budget says: ocean storage = surface into ocean + q-flux
    for b in res2.budgets:
        assert b.ocean == pytest.approx(b.surface - b.land + b.qflux, abs=1e-6)


def test_water_is_conserved(grid: CellGrid) -> None:
    cfg = ColumnConfig()
    model = ColumnModel(grid, cfg)
    land = BucketLand(grid.land_index.size, cfg.dt)
    state = model.initial_state(START)
    w = grid.weights
    for _ in range(20):
        prep = model.prepare(state, Forcing(0.0, 285.0), hold_sst=True)
        out = land.exchange(0, model.land_forcing(state, prep))
        new, _, fields = model.advance(state, prep, out)
        dq = cfg.water_mass * (w @ new.huss - w @ state.huss)
        assert dq == pytest.approx(
            cfg.dt * (w @ fields["evspsbl"] - w @ new.pr), rel=1e-9, abs=1e-9
        )
        assert (new.pr >= 0).all() and (new.huss > 0).all()
        state = new


def test_qflux_keeps_the_control_on_its_climatology(grid: CellGrid) -> None:
    cfg = ColumnConfig()
    model = ColumnModel(grid, cfg)
    land = BucketLand(grid.land_index.size, cfg.dt)
    ctl = Forcing(0.0, 285.0)
    state = integrate(
        model, model.initial_state(START), land, 365, lambda t: ctl, OceanMode()
    ).state
    q = QFlux(grid.n_cells)
    state = integrate(model, state, land, 365, lambda t: ctl, OceanMode(diagnose=q)).state
    end = integrate(model, state, land, 365, lambda t: ctl, OceanMode(qflux=q.table())).state
    ocean = grid.land_fraction < 1.0
    anomaly = end.sst - climatology.sst(grid.lat, 1.0)
    assert abs(float(grid.weights[ocean] @ anomaly[ocean])) < 0.1
    assert np.abs(anomaly[ocean]).max() < 1.0


def test_hadley_transport_conserves_moisture_and_moves_it_to_the_itcz(grid: CellGrid) -> None:
    geo = transport.HadleyGeometry.of(grid)
    assert geo is not None
    flux = transport.face_flux(geo, 0.0, 1.5, 30.0)
    q = np.full(grid.n_cells, 0.01)
    tend = transport.tendency(geo, flux, q)
    assert abs(grid.area @ tend) < 1e-12 * (grid.area @ np.abs(tend))  # round-off
    lat = grid.lat
    assert tend[np.abs(lat) < 10].mean() > 0  # convergence at the ITCZ
    assert tend[(np.abs(lat) > 15) & (np.abs(lat) < 30)].mean() < 0  # subtropics dry out
    assert (tend[np.abs(lat) > 40] == 0).all()
    assert transport.HadleyGeometry.of(replace(grid, shape=None)) is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"dt": 7000.0}, "dt: 7000.0 s must be > 0 and divide 86400 s"),
        ({"water_mass": 0.0}, "water_mass: must be > 0"),
        ({"rh_precip": 1.2}, "rh_precip: must lie in"),
        ({"gamma": -1.0}, "gamma: must be >= 0"),
        ({"hadley_edge": 0.0}, "hadley_edge: must lie in"),
    ],
)
def test_config_validation_names_the_field(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ColumnConfig(**kw)  # type: ignore[arg-type]
