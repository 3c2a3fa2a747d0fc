"""The column model's time stepper: per-cell boundary-layer temperature and humidity over a
slab ocean, coupled to a land surface, with horizontal transport on the sphere.

One step of ``dt`` seconds (``ColumnModel.prepare`` → land exchange → ``ColumnModel.advance``):

1. ``prepare`` (state at t_n): sun (step-mean insolation, Spencer 1971 geometry), humidity,
   cloud fraction (Sundqvist 1989), shortwave down (Lacis & Hansen 1974), longwave down
   (Brutsaert 1975, Crawford & Duchon 1999), wind and pressure climatology, the precipitation
   formed at the end of the previous step, and the scenario's ERF and CO2: the land's forcing.
2. The land surface returns its fluxes for the land cells (the service, or a stand-in).
3. ``advance``: ocean bulk fluxes; cell fluxes as land-fraction-weighted means; OLR (Budyko law
   with ERF); the atmosphere's energy and water update (explicit); the Hadley moisture
   transport (explicit upwind) and implicit diffusion of heat and moisture; condensation by
   relaxation above the saturation threshold (Betts–Miller-like) with its latent heating, whose
   rain falls on the surface during the next step; the ocean mixed layer and deep layer; the
   step's global energy budget.

Energy bookkeeping (per unit area, W m-2): the atmosphere stores E_a = C_a T + L_v M q. With N
the TOA net downward flux and F_s the net flux into the surface, the update is built so that
ΔE_a / dt = N − F_s exactly (the dry heating takes hfls − L_v·evspsbl, the difference between the
land's latent heat and the atmosphere's constant L_v, so that nothing is lost; condensation
moves L_v M Δq into C_a ΔT); transport and diffusion conserve the area-weighted sums. The
global residual N − F_s − ΔE_a/dt is thus float64 round-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from coupler.atmosphere import climatology as clim
from coupler.atmosphere import physics as phys
from coupler.atmosphere import transport
from coupler.atmosphere.grid import CellGrid
from coupler.atmosphere.ocean import QFlux
from coupler.atmosphere.scenario import as_seconds, decimal_year
from coupler.atmosphere.surface import OceanConfig, ocean_fluxes
from emulators import constants as C
from emulators.constants import SECONDS_PER_DAY

RHO_CP_SEAWATER = 1025.0 * 3985.0  # J m-3 K-1


@dataclass(frozen=True)
class ColumnConfig:
    """Parameters of the column model (SI units). See docs/atmosphere.md for sources.

    dt: step (s), divides a day. heat_capacity: C_a = c_p p₀/g, the whole column [J m-2 K-1].
    water_mass: M [kg m-2], air mass holding the column water (precipitable water = M q).
    olr_a [W m-2], olr_b [W m-2 K-1]: Budyko OLR = A + B (T − 273.15) − ERF (B calibrated for
    ECS ≈ 3 K, A for a balanced control climate). rh_precip, tau_precip [s]: precipitation
    threshold and relaxation time. rh_cloud: Sundqvist critical RH; cloud_albedo.
    ozone_absorptance: fraction of insolation absorbed by ozone. diffusivity_heat/moisture
    [m2 s-1]. mixed_layer_depth, deep_layer_depth [m]; gamma [W m-2 K-1] mixed ↔ deep exchange
    per ocean area (Geoffroy et al. 2013 multi-model means divided by the ocean fraction 0.71).
    """

    dt: float = 86_400.0
    solar_constant: float = C.SOLAR_CONSTANT
    heat_capacity: float = C.CP_AIR * clim.SURFACE_PRESSURE / C.GRAVITY
    water_mass: float = 2_500.0
    olr_a: float = 223.0
    olr_b: float = 1.78
    rh_precip: float = 0.80
    tau_precip: float = 21_600.0
    rh_cloud: float = 0.45
    cloud_albedo: float = 0.66
    ozone_absorptance: float = 0.025
    diffusivity_heat: float = 1.5e6
    diffusivity_moisture: float = 1.5e6
    hadley_speed: float = 1.5
    hadley_edge: float = 30.0
    mixed_layer_depth: float = 75.0
    deep_layer_depth: float = 1_100.0
    gamma: float = 2.2
    ocean: OceanConfig = field(default_factory=OceanConfig)

    def __post_init__(self) -> None:
        if not 0 < self.dt <= SECONDS_PER_DAY or SECONDS_PER_DAY % self.dt:
            raise ValueError(f"dt: {self.dt} s must be > 0 and divide 86400 s")
        positive = (
            "solar_constant", "heat_capacity", "water_mass", "olr_b", "tau_precip",
            "mixed_layer_depth", "deep_layer_depth",
        )  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in (
            "diffusivity_heat", "diffusivity_moisture", "gamma", "ozone_absorptance",
            "hadley_speed",
        ):  # fmt: skip
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.hadley_edge <= 90.0:
            raise ValueError(f"hadley_edge: must lie in (0, 90] degrees, got {self.hadley_edge}")
        for name in ("rh_precip", "rh_cloud", "cloud_albedo"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name}: must lie in (0, 1), got {getattr(self, name)}")

    @property
    def ocean_heat_capacity(self) -> float:
        return RHO_CP_SEAWATER * self.mixed_layer_depth

    @property
    def deep_heat_capacity(self) -> float:
        return RHO_CP_SEAWATER * self.deep_layer_depth


@dataclass
class ColumnState:
    """Prognostic state on all cells: tas [K], huss [kg kg-1], sst [K] (mixed layer; used where
    the cell has ocean), deep [K] (deep-ocean anomaly), pr [kg m-2 s-1] (the precipitation
    formed by the last step's adjustment, which falls during the next step), time (start of the
    next step, UTC), index (steps taken)."""

    tas: np.ndarray
    huss: np.ndarray
    sst: np.ndarray
    deep: np.ndarray
    pr: np.ndarray
    time: np.datetime64
    index: int = 0

    def copy(self) -> ColumnState:
        return ColumnState(
            self.tas.copy(), self.huss.copy(), self.sst.copy(), self.deep.copy(), self.pr.copy(),
            self.time, self.index,
        )  # fmt: skip


@dataclass(frozen=True)
class Forcing:
    """What drives a step besides the state: ERF [W m-2] (relative to the control) and CO2 [ppm]."""

    erf: float
    co2: float


@dataclass
class Prepared:
    """Everything ``prepare`` computed for one step (all (cell,) arrays unless noted)."""

    time: np.datetime64
    day_of_year: float
    s_toa: np.ndarray
    rsds: np.ndarray
    reflected_down: np.ndarray
    absorbed_down: np.ndarray
    t_up: np.ndarray
    rlds: np.ndarray
    precip: np.ndarray
    cloud: np.ndarray
    rh: np.ndarray
    wind: np.ndarray
    land_wind: np.ndarray
    ps: np.ndarray
    sst: np.ndarray
    forcing: Forcing


@dataclass
class StepBudget:
    """Global area-weighted means of one step [W m-2]: TOA net down, net into the surface,
    atmospheric storage change, ocean storage change (per cell area) and the q-flux source."""

    toa: float
    surface: float
    atmosphere: float
    ocean: float
    qflux: float
    land: float

    @property
    def residual(self) -> float:
        """TOA − surface − atmospheric storage change [W m-2] (round-off by construction)."""
        return self.toa - self.surface - self.atmosphere


def day_of_year(time: np.datetime64) -> float:
    """1-based fractional day of year (UTC)."""
    t = as_seconds(time)
    start = t.astype("datetime64[Y]").astype("datetime64[s]")
    return 1.0 + float((t - start).astype(np.int64)) / SECONDS_PER_DAY


class ColumnModel:
    """The stepper over a :class:`CellGrid` (see module docstring)."""

    def __init__(self, grid: CellGrid, config: ColumnConfig | None = None) -> None:
        self.grid = grid
        self.config = cfg = config or ColumnConfig()
        self.land = grid.land_index
        self.f_land = grid.land_fraction
        self.f_ocean = 1.0 - grid.land_fraction
        self.weights = grid.weights
        n = grid.n_cells
        eye = sp.identity(n, format="csc")
        lap = grid.laplacian.tocsc()
        self._solve_t = spla.factorized((eye - cfg.dt * cfg.diffusivity_heat * lap).tocsc())
        self._solve_q = spla.factorized((eye - cfg.dt * cfg.diffusivity_moisture * lap).tocsc())
        self._hadley_geometry = transport.HadleyGeometry.of(grid)
        self._hadley: tuple[int, np.ndarray, int] | None = None

    def _hadley_transport(self, huss: np.ndarray, day: int) -> np.ndarray:
        """Apply the Hadley moisture transport over one step (explicit upwind, substepped); the
        face fluxes follow the ITCZ and are recomputed once a day."""
        cfg, geo = self.config, self._hadley_geometry
        if cfg.hadley_speed == 0.0 or geo is None:
            return huss
        if self._hadley is None or self._hadley[0] != day:
            flux = transport.face_flux(
                geo, clim.seasonal_shift(day + 0.5), cfg.hadley_speed, cfg.hadley_edge
            )
            self._hadley = (day, flux, transport.substeps(geo, flux, cfg.dt))
        _, flux, nsub = self._hadley
        h = cfg.dt / nsub
        for _ in range(nsub):
            huss = huss + h * transport.tendency(geo, flux, huss)
        return huss

    # ---- state ---------------------------------------------------------------------------------
    def initial_state(self, time: np.datetime64) -> ColumnState:
        doy = day_of_year(time)
        tas, huss = clim.initial_state(self.grid.lat, doy)
        sst = clim.sst(self.grid.lat, doy)
        zeros = np.zeros_like(sst)
        return ColumnState(tas, huss, sst, zeros, zeros.copy(), as_seconds(time))

    def energy(self, state: ColumnState) -> tuple[float, float]:
        """Global means [J m-2]: atmosphere C_a T + L_v M q; ocean (C_o SST + C_d T'_d) × ocean
        fraction."""
        cfg = self.config
        atm = cfg.heat_capacity * state.tas + phys.L_V * cfg.water_mass * state.huss
        ocean = self.f_ocean * (
            cfg.ocean_heat_capacity * state.sst + cfg.deep_heat_capacity * state.deep
        )
        return float(self.weights @ atm), float(self.weights @ ocean)

    # ---- step, part 1 --------------------------------------------------------------------------
    def prepare(self, state: ColumnState, forcing: Forcing, hold_sst: bool) -> Prepared:
        cfg, g = self.config, self.grid
        doy = day_of_year(state.time)
        secs = (doy - np.floor(doy)) * SECONDS_PER_DAY
        dec = phys.solar_declination(doy + 0.5 * cfg.dt / SECONDS_PER_DAY)
        h1 = phys.hour_angle(secs / 3600.0, g.lon)
        h2 = h1 + 2.0 * np.pi * cfg.dt / SECONDS_PER_DAY
        mu_mean = phys.mean_cos_zenith(g.lat, dec, h1, h2)
        mu_eff = phys.daylight_cos_zenith(g.lat, dec, h1, h2)
        s_toa = phys.toa_insolation(
            mu_mean, phys.earth_sun_distance_factor(doy), cfg.solar_constant
        )
        ps = clim.surface_pressure(g.n_cells)
        qsat = phys.saturation_specific_humidity(state.tas, ps)
        rh = state.huss / qsat
        cloud = phys.cloud_fraction(rh, cfg.rh_cloud)
        pw = cfg.water_mass * state.huss
        absorptance = phys.water_vapour_absorptance(pw, mu_eff) + cfg.ozone_absorptance
        rsds, reflected, absorbed = phys.shortwave_down(
            s_toa, phys.rayleigh_reflectance(mu_eff), absorptance, cloud, cfg.cloud_albedo
        )
        t_up = phys.upward_transmission(
            cloud, cfg.cloud_albedo, phys.water_vapour_absorptance(pw, 0.6)
        )
        emissivity = phys.all_sky_emissivity(
            phys.clear_sky_emissivity(phys.vapour_pressure(state.huss, ps), state.tas), cloud
        )
        sst = clim.sst(g.lat, doy) if hold_sst else state.sst
        return Prepared(
            time=state.time, day_of_year=doy, s_toa=s_toa, rsds=rsds, reflected_down=reflected,
            absorbed_down=absorbed, t_up=t_up,
            rlds=phys.downwelling_longwave(emissivity, state.tas),
            precip=state.pr, cloud=cloud, rh=rh,
            wind=clim.wind_speed(g.lat, self.f_land, doy),
            land_wind=clim.land_wind_speed(g.lat, doy), ps=ps, sst=sst, forcing=forcing,
        )  # fmt: skip

    def land_forcing(self, state: ColumnState, prep: Prepared) -> dict[str, np.ndarray]:
        """The land's forcing fields (registry names and units) on the land cells."""
        i = self.land
        return {
            "tas": state.tas[i],
            "huss": state.huss[i],
            "ps": prep.ps[i],
            "sfcWind": prep.land_wind[i],
            "pr": prep.precip[i],
            "rsds": prep.rsds[i],
            "rlds": prep.rlds[i],
            "co2": np.full(i.size, prep.forcing.co2),
        }

    # ---- step, part 2 --------------------------------------------------------------------------
    def advance(
        self,
        state: ColumnState,
        prep: Prepared,
        land_out: dict[str, np.ndarray],
        *,
        qflux: np.ndarray | None = None,
        diagnose: QFlux | None = None,
    ) -> tuple[ColumnState, StepBudget, dict[str, np.ndarray]]:
        """Advance the state by one step with the land's fluxes ``land_out`` ((land cell,) arrays).

        Ocean: with ``qflux`` ((366, cell) table) the mixed layer is prognostic; without, SST is
        held at climatology and, if ``diagnose`` is given, the q-flux is diagnosed into it.
        Returns the new state, the step's global budget and the cell fields (for diagnostics).
        """
        cfg, dt = self.config, self.config.dt
        n = self.grid.n_cells
        fl, fo = self.f_land, self.f_ocean
        ocean = ocean_fluxes(
            cfg.ocean, prep.sst, state.tas, state.huss, prep.wind, prep.ps, prep.rsds, prep.rlds
        )
        land = {k: np.zeros(n) for k in ("rsus", "rlus", "hfss", "hfls", "evspsbl")}
        for k in land:
            land[k][self.land] = land_out[k]
        cell = {k: fl * land[k] + fo * ocean[k] for k in land}

        olr = phys.outgoing_longwave(state.tas, cfg.olr_a, cfg.olr_b, prep.forcing.erf)
        reflected_toa = prep.reflected_down + prep.t_up * cell["rsus"]
        toa = prep.s_toa - reflected_toa - olr
        sw_atm = prep.absorbed_down + (1.0 - prep.t_up) * cell["rsus"]
        surface = prep.rsds - cell["rsus"] + prep.rlds - cell["rlus"] - cell["hfss"] - cell["hfls"]
        heating = (
            sw_atm + cell["rlus"] - prep.rlds - olr + cell["hfss"]
            + (cell["hfls"] - phys.L_V * cell["evspsbl"])
        )  # fmt: skip
        tas = self._solve_t(state.tas + dt * heating / cfg.heat_capacity)
        huss = state.huss + dt * cell["evspsbl"] / cfg.water_mass
        huss = self._solve_q(self._hadley_transport(huss, int(np.floor(prep.day_of_year))))
        # condensation: relax the excess over the threshold, heat the column by L_v P; the
        # rain falls on the surface during the next step (state.pr)
        precip = phys.precipitation_relaxation(
            huss, phys.saturation_specific_humidity(tas, prep.ps), cfg.rh_precip,
            cfg.water_mass, cfg.tau_precip, dt,
        )  # fmt: skip
        huss = huss - dt * precip / cfg.water_mass
        tas = tas + dt * phys.L_V * precip / cfg.heat_capacity

        # ocean ---------------------------------------------------------------------------------
        f_ocean_net = (
            prep.rsds - ocean["rsus"] + prep.rlds - ocean["rlus"] - ocean["hfss"] - ocean["hfls"]
        )
        next_time = state.time + np.timedelta64(int(dt), "s")
        day_index = int(np.floor(prep.day_of_year)) - 1
        if qflux is None:
            sst_next = clim.sst(self.grid.lat, day_of_year(next_time))
            q_applied = cfg.ocean_heat_capacity * (sst_next - prep.sst) / dt - f_ocean_net
            if diagnose is not None:
                diagnose.add(day_index, q_applied)
            deep = state.deep.copy()
        else:
            q_applied = qflux[day_index]
            anomaly = prep.sst - clim.sst(self.grid.lat, prep.day_of_year)
            sst_next = prep.sst + dt * phys.mixed_layer_tendency(
                f_ocean_net, q_applied, cfg.gamma, anomaly, state.deep, cfg.ocean_heat_capacity
            )
            deep = state.deep + dt * phys.deep_ocean_tendency(
                cfg.gamma, anomaly, state.deep, cfg.deep_heat_capacity
            )
        new = ColumnState(tas, huss, sst_next, deep, precip, next_time, state.index + 1)

        e_atm0, e_oc0 = self.energy(replace(state, sst=prep.sst))
        e_atm1, e_oc1 = self.energy(new)
        w = self.weights
        land_net = np.zeros(n)
        land_net[self.land] = (
            prep.rsds[self.land] - land_out["rsus"] + prep.rlds[self.land] - land_out["rlus"]
            - land_out["hfss"] - land_out["hfls"]
        )  # fmt: skip
        budget = StepBudget(
            toa=float(w @ toa),
            surface=float(w @ surface),
            atmosphere=(e_atm1 - e_atm0) / dt,
            ocean=(e_oc1 - e_oc0) / dt,
            qflux=float(w @ (fo * q_applied)),
            land=float(w @ (fl * land_net)),
        )
        fields: dict[str, Any] = {
            "tas": state.tas, "huss": state.huss, "pr": prep.precip, "rsds": prep.rsds,
            "rlds": prep.rlds, "clt": prep.cloud, "rlut": olr, "rsut": reflected_toa,
            "rsdt": prep.s_toa, "tos": prep.sst, "hfls": cell["hfls"], "hfss": cell["hfss"],
            "evspsbl": cell["evspsbl"],
        }  # fmt: skip
        return new, budget, fields


def forcing_at(scenario: Any, time: np.datetime64, reference_erf: float) -> Forcing:
    """The scenario's forcing at ``time``: ERF relative to ``reference_erf`` (the control's) and
    CO2."""
    year = decimal_year(time)
    return Forcing(float(scenario.erf(year)) - reference_erf, float(scenario.co2(year)))
