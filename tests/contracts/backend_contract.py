"""The contract every land backend passes (``emulators.protocol.LandBackend``).

Subclass :class:`LandBackendContract` as ``TestSomething`` and implement ``make_backend`` (as
zarr-python's ``StoreTests``): shapes and units of the outputs, exact energy and water closure at
every step, inputs left untouched, explicit state round trip (state_dict → new LandState →
identical continuation), determinism, checkpoint/resume through ``torch.save``/``torch.load``,
precise errors for bad forcing, and the forcing heights it serves. The checks use only the
Protocol and the registry, never a backend's internals.
"""

from __future__ import annotations

import abc
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators import parameters as P
from emulators.constants import DEFAULT_HEIGHT_TEMPERATURE, DEFAULT_HEIGHT_WIND
from emulators.constraints import energy_residual, water_residual
from emulators.physics import saturation_specific_humidity
from emulators.protocol import HeightAwareBackend, LandBackend, LandState, LandStatic, StepClock
from emulators.variables import LAND_OUTPUTS, REGISTRY, VariableError, check

ENERGY_TOL = 1e-3  # W m-2, every step
WATER_TOL = 1e-6  # kg m-2, every step


def contract_static(n: int, members: int, seed: int) -> LandStatic:
    """Cells with 1-4 land-cover classes each (zero cover elsewhere) and parameters drawn around
    the class defaults, different per member."""
    g = torch.Generator().manual_seed(seed)
    lat = torch.rand(n, generator=g, dtype=torch.float64) * 120 - 60
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    cover = torch.zeros(n, P.N_CLASSES, dtype=torch.float64)
    for i in range(n):
        k = 1 + i % 4
        classes = torch.randperm(P.N_CLASSES, generator=g)[:k]
        cover[i, classes] = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    cover[0] = 0.0
    cover[0, :] = 1.0 / P.N_CLASSES  # one cell with every class
    cover /= cover.sum(-1, keepdim=True)
    base = P.default_table().expand(members * n, P.N_CLASSES, P.N_PARAMETERS).reshape(-1, 12)
    params = P.sample_parameters(base.shape[0], g, spread=0.3, base=base)
    return LandStatic(lat, lon, cover, params.reshape(members, n, P.N_CLASSES, P.N_PARAMETERS))


def contract_forcing(static: LandStatic, clock: StepClock, seed: int) -> dict[str, torch.Tensor]:
    """Smooth, physically valid hourly forcing: a diurnal cycle in local solar time with
    per-cell offsets and intermittent rain."""
    g = torch.Generator().manual_seed(seed * 7919 + clock.index)
    m, n = static.n_members, static.n_cells
    hour = (clock.seconds_of_day / 3600.0 + static.lon / 15.0) % 24.0
    sun = torch.clamp(torch.cos((hour - 12.0) / 24.0 * 2 * math.pi), min=0.0)
    base_t = 288.0 + 12.0 * torch.cos(torch.deg2rad(static.lat))
    tas = base_t + 6.0 * torch.cos((hour - 15.0) / 24.0 * 2 * math.pi)
    ps = torch.full((n,), 98_000.0, dtype=torch.float64)
    qs, _ = saturation_specific_humidity(tas, ps)

    def noise(scale: float) -> torch.Tensor:
        return 1.0 + scale * (torch.rand(m, n, generator=g, dtype=torch.float64) - 0.5)

    rain = (torch.rand(m, n, generator=g, dtype=torch.float64) < 0.2).double()
    return {
        "tas": tas * noise(0.002),
        "huss": 0.6 * qs * noise(0.1),
        "ps": ps * noise(0.01),
        "sfcWind": 3.0 * noise(0.8),
        "pr": rain * 2e-4 * noise(1.0),
        "rsds": 850.0 * sun * noise(0.2),
        "rlds": (320.0 + 40.0 * torch.cos(torch.deg2rad(static.lat))) * noise(0.05),
    }


def contract_daily_forcing(
    static: LandStatic, clock: StepClock, seed: int
) -> dict[str, torch.Tensor]:
    """Physically valid daily-mean forcing (for steps of a day): the day's mean of
    ``contract_forcing``'s diurnal cycle (shortwave 850/π W m-2 at most), a slow seasonal drift
    and intermittent rain."""
    g = torch.Generator().manual_seed(seed * 7919 + clock.index)
    m, n = static.n_members, static.n_cells
    season = math.cos(2 * math.pi * (clock.day_of_year - 200) / 365.0)
    tas = 288.0 + 12.0 * torch.cos(torch.deg2rad(static.lat)) + 4.0 * season
    ps = torch.full((n,), 98_000.0, dtype=torch.float64)
    qs, _ = saturation_specific_humidity(tas, ps)

    def noise(scale: float) -> torch.Tensor:
        return 1.0 + scale * (torch.rand(m, n, generator=g, dtype=torch.float64) - 0.5)

    rain = (torch.rand(m, n, generator=g, dtype=torch.float64) < 0.4).double()
    return {
        "tas": tas * noise(0.004),
        "huss": 0.6 * qs * noise(0.1),
        "ps": ps * noise(0.01),
        "sfcWind": 3.0 * noise(0.8),
        "pr": rain * 4e-5 * noise(1.0),
        "rsds": 850.0 / math.pi * (0.8 + 0.2 * season) * noise(0.4),
        "rlds": (320.0 + 40.0 * torch.cos(torch.deg2rad(static.lat))) * noise(0.05),
    }


class LandBackendContract(abc.ABC):
    """Base class of the backend contract tests (not collected itself: no ``Test`` prefix);
    every backend's test class subclasses it and says how to build the backend."""

    n_cells = 12
    members = 2
    dt = 3600.0
    start = "2001-06-30T18:00:00"  # crosses a day boundary within the first steps
    steps = 10
    #: tile backends change land cover (``change_cover``); a record replays fixed cover
    changes_cover = True

    @abc.abstractmethod
    def make_backend(self) -> LandBackend:
        """A fresh backend under test."""

    def forcing(self, static: LandStatic, clock: StepClock, seed: int) -> dict[str, torch.Tensor]:
        """Forcing of a step: hourly-shaped below a day, daily means for steps of a day."""
        if self.dt >= 86_400.0:
            return contract_daily_forcing(static, clock, seed)
        return contract_forcing(static, clock, seed)

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> LandBackend:
        return cls().make_backend()

    # ---- helpers -------------------------------------------------------------------------------
    def static(self, seed: int = 0) -> LandStatic:
        return contract_static(self.n_cells, self.members, seed)

    def clock(self) -> StepClock:
        return StepClock(0, np.datetime64(self.start), self.dt)

    def run(
        self, backend: LandBackend, state: LandState, static: LandStatic, clock: StepClock, n: int
    ) -> tuple[LandState, StepClock, list[dict[str, torch.Tensor]]]:
        outs = []
        for _ in range(n):
            state, out = backend.step(state, static, self.forcing(static, clock, 1), clock)
            outs.append(out)
            clock = clock.advance()
        return state, clock, outs

    # ---- the contract ------------------------------------------------------------------------
    def test_implements_the_protocol(self, backend: LandBackend) -> None:
        assert isinstance(backend, LandBackend)
        assert isinstance(backend.name, str) and backend.name

    def test_forcing_heights(self, backend: LandBackend) -> None:
        """``HeightAwareBackend``: at the default heights (10 m / 2 m) the backend itself; at
        others either a backend whose fluxes differ and still close energy every step, or a
        ValueError naming the height it does not serve (a session is then refused with rule
        ``backend_heights``)."""
        assert isinstance(backend, HeightAwareBackend)
        assert backend.at_heights(DEFAULT_HEIGHT_WIND, DEFAULT_HEIGHT_TEMPERATURE) is backend
        static, clock = self.static(seed=7), self.clock()
        try:  # refused when asked, or when a session at this step length starts
            other = backend.at_heights(2.0, 2.0)
            start = other.initial_state(static, clock)
        except ValueError as exc:
            assert str(exc).startswith("height_wind:"), str(exc)
            return
        assert isinstance(other, LandBackend) and other is not backend
        _, _, base = self.run(backend, backend.initial_state(static, clock), static, clock, 3)
        _, _, outs = self.run(other, start, static, clock, 3)
        assert not torch.equal(base[-1]["hfss"], outs[-1]["hfss"])
        for out in outs:
            residual = energy_residual(out["rns"], out["hfls"], out["hfss"], out["hfdsl"])
            assert float(residual.abs().max()) <= ENERGY_TOL

    def test_outputs_have_shapes_units_and_valid_values(self, backend: LandBackend) -> None:
        static, clock = self.static(), self.clock()
        state = backend.initial_state(static, clock)
        _, _, outs = self.run(backend, state, static, clock, self.steps)
        for out in outs:
            missing = set(LAND_OUTPUTS) - set(out)
            assert not missing, f"missing outputs {sorted(missing)}"
            for name in LAND_OUTPUTS:
                value = out[name]
                assert value.shape == (self.members, self.n_cells), name
                assert value.dtype == torch.float64, name
                check(name, value, units=REGISTRY[name].units)

    def test_energy_and_water_close_every_step(self, backend: LandBackend) -> None:
        static, clock = self.static(seed=3), self.clock()
        state = backend.initial_state(static, clock)
        state, clock, outs = self.run(backend, state, static, clock, 1)
        storage = outs[0]["mrso"]
        worst_e = worst_w = 0.0
        for _ in range(self.steps):
            forcing = self.forcing(static, clock, 1)
            state, out = backend.step(state, static, forcing, clock)
            e = energy_residual(out["rns"], out["hfls"], out["hfss"], out["hfdsl"]).abs().max()
            w = (
                water_residual(
                    storage, out["mrso"], forcing["pr"], out["evspsbl"], out["mrro"], clock.dt
                )
                .abs()
                .max()
            )
            worst_e, worst_w = max(worst_e, float(e)), max(worst_w, float(w))
            storage, clock = out["mrso"], clock.advance()
        assert worst_e <= ENERGY_TOL
        assert worst_w <= WATER_TOL

    def test_cover_change_conserves_and_keeps_closure(self, backend: LandBackend) -> None:
        """``change_cover`` (every tile backend): cell water, soil heat and leaf carbon
        conserved to round-off with what was released, inputs untouched, and the steps after
        the change close energy and water again (water against the storage after the change).
        A backend that cannot change cover has no ``change_cover`` (the session then refuses
        the update with ``land_cover``/``cover_change_supported``)."""
        if not self.changes_cover:
            assert not hasattr(backend, "change_cover")
            return
        static, clock = self.static(seed=5), self.clock()
        state = backend.initial_state(static, clock)
        state, clock, outs = self.run(backend, state, static, clock, 2)
        g = torch.Generator().manual_seed(11)
        cover = static.cover + 0.5 * torch.rand(
            static.cover.shape, generator=g, dtype=torch.float64
        )
        cover /= cover.sum(-1, keepdim=True)
        before = state.clone()
        new_state, new_static, out = backend.change_cover(state, static, cover)  # type: ignore[attr-defined]
        assert state.equal(before) and torch.equal(new_static.cover, cover)
        assert float(out.residual["water"].max()) <= 1e-11
        assert float(out.residual["heat"].max()) <= 1e-5
        assert float(out.residual["carbon"].max()) <= 1e-14
        storage = outs[-1]["mrso"] - out.released["water"]
        for _ in range(3):
            forcing = self.forcing(new_static, clock, 1)
            new_state, o = backend.step(new_state, new_static, forcing, clock)
            e = energy_residual(o["rns"], o["hfls"], o["hfss"], o["hfdsl"]).abs().max()
            w = water_residual(storage, o["mrso"], forcing["pr"], o["evspsbl"], o["mrro"], clock.dt)
            assert float(e) <= ENERGY_TOL and float(w.abs().max()) <= WATER_TOL
            storage, clock = o["mrso"], clock.advance()

    def test_inputs_are_not_modified(self, backend: LandBackend) -> None:
        static, clock = self.static(), self.clock()
        state = backend.initial_state(static, clock)
        before = state.clone()
        forcing = self.forcing(static, clock, 1)
        forcing_before = {k: v.clone() for k, v in forcing.items()}
        backend.step(state, static, forcing, clock)
        assert state.equal(before)
        assert all(torch.equal(forcing[k], v) for k, v in forcing_before.items())

    def test_explicit_state_round_trip(self, backend: LandBackend) -> None:
        static, clock = self.static(), self.clock()
        state = backend.initial_state(static, clock)
        state, clock, _ = self.run(backend, state, static, clock, 3)
        copy = LandState({k: v.clone() for k, v in state.state_dict().items()})
        a_state, _, a = self.run(backend, state, static, clock, 4)
        b_state, _, b = self.run(backend, copy, static, clock, 4)
        assert a_state.equal(b_state)
        for x, y in zip(a, b, strict=True):
            assert all(torch.equal(x[k], y[k]) for k in LAND_OUTPUTS)

    def test_deterministic(self, backend: LandBackend) -> None:
        static, clock = self.static(seed=5), self.clock()
        runs = []
        for _ in range(2):
            state = backend.initial_state(static, clock)
            runs.append(self.run(backend, state, static, clock, 4))
        assert runs[0][0].equal(runs[1][0])
        for x, y in zip(runs[0][2], runs[1][2], strict=True):
            assert all(torch.equal(x[k], y[k]) for k in LAND_OUTPUTS)

    def test_checkpoint_and_resume(self, backend: LandBackend, tmp_path: Path) -> None:
        static, clock = self.static(seed=7), self.clock()
        state = backend.initial_state(static, clock)
        state, clock, _ = self.run(backend, state, static, clock, 3)
        path = tmp_path / "state.pt"
        torch.save(state.state_dict(), path)
        cont_state, _, cont = self.run(backend, state, static, clock, 4)
        resumed = LandState(torch.load(path, weights_only=True))
        res_state, _, res = self.run(backend, resumed, static, clock, 4)
        assert cont_state.equal(res_state)
        for x, y in zip(cont, res, strict=True):
            assert all(torch.equal(x[k], y[k]) for k in LAND_OUTPUTS)

    def test_missing_forcing_is_named(self, backend: LandBackend) -> None:
        static, clock = self.static(), self.clock()
        state = backend.initial_state(static, clock)
        forcing = self.forcing(static, clock, 1)
        del forcing["rlds"]
        with pytest.raises(ValueError, match="rlds"):
            backend.step(state, static, forcing, clock)

    def test_out_of_range_forcing_names_the_variable_and_rule(self, backend: LandBackend) -> None:
        static, clock = self.static(), self.clock()
        state = backend.initial_state(static, clock)
        before = state.clone()
        forcing = self.forcing(static, clock, 1)
        forcing["tas"] = forcing["tas"].clone()
        forcing["tas"][0, 1] = 400.0
        with pytest.raises(VariableError) as err:
            backend.step(state, static, forcing, clock)
        assert err.value.variable == "tas" and err.value.rule == "valid_range"
        assert state.equal(before)
