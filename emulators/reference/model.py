"""The reference land model: a SiB2/MATSIRO-style big-leaf model, vectorised over
(member, cell, tile), one tile per land-cover class. It is the teacher the emulators learn from.

One step (``ReferenceBackend.step``), per tile:
1. vegetation state: LAI = SLA × leaf carbon; albedo from leaf optics and soil (``physics``);
   roughness from vegetation height and cover;
2. water stress from soil water potential and ``psicr``; canopy photosynthesis and stomatal
   conductance (``photosynthesis``);
3. surface energy balance solved for the skin temperature by Newton iteration:
   f(T_s) = S_abs + ε rlds − ε σ T_s⁴ − ρ c_p g_H (T_s − T_a) − ρ λ g_E (q_s(T_s) − q_a)
            − κ (T_s − T_1) = 0,
   with bulk conductances g_H, g_E [m s-1] combining aerodynamic resistance (stability-corrected),
   leaf boundary layer (``chl``, ``cdl``), stomata and bare-soil resistance;
4. constraint layer (``emulators.constraints``): water-limited ET, runoff, exact water update;
   ground heat flux G = Rn − LE − H (exact energy closure); soil heat conduction with G;
5. daily phenology at the end of each day (``phenology``).
Cell fields are cover-weighted tile sums (linear, so closure carries over to cells).

Left out (documented in docs/reference-model.md): snow and frozen soil, canopy interception
storage, separate canopy and ground temperatures, lateral flow, nitrogen, crop management.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from emulators import constants as C
from emulators import constraints, physics
from emulators import parameters as P
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference import phenology, photosynthesis
from emulators.reference.classes import class_table
from emulators.reference.soil import (
    SoilConfig,
    conduct_heat,
    runoff_and_drainage,
    surface_coupling,
    surface_resistance,
    water_content_at,
)
from emulators.variables import REQUIRED_FORCING, check

Tensor = torch.Tensor
LAKE_CAPACITY = 2000.0  # kg m-2 (2 m of water) for the water/ice tile
DEFAULT_CO2_PPM = 390.0
STEM_AREA_INDEX = 1.0  # keeps leafless canopies exchanging heat through stems
SKIN_BELOW_AIR_MAX = 30.0  # K; strongest observed surface inversions are ~10-25 K
SKIN_ABOVE_AIR_MAX = 60.0  # K; hot dry surfaces reach ~30-40 K above air


class Surface(enum.Enum):
    """What the tiles represent."""

    LAND = "land"  # the eight land-cover tiles with their parameters
    FAO56_GRASS = "fao56-grass"  # FAO-56 hypothetical reference grass (Allen et al. 1998)


@dataclass(frozen=True)
class ReferenceConfig:
    surface: Surface = Surface.LAND
    soil: SoilConfig = field(default_factory=SoilConfig)
    height_wind: float = 10.0  # m above the zero-plane displacement
    height_temperature: float = 2.0  # m
    newton_iterations: int = 8
    stability_updates: int = 3  # Newton iterations that re-evaluate the stability correction
    photosynthesis_iterations: int = 6
    validate_forcing: bool = True

    def __post_init__(self) -> None:
        if self.height_wind <= 0 or self.height_temperature <= 0:
            raise ValueError("height_wind and height_temperature must be positive")
        if self.newton_iterations < 1 or self.photosynthesis_iterations < 1:
            raise ValueError("iteration counts must be >= 1")
        if not 0 <= self.stability_updates <= self.newton_iterations:
            raise ValueError("stability_updates must be in [0, newton_iterations]")
        if not isinstance(self.surface, Surface):
            raise ValueError(f"surface must be a Surface, got {self.surface!r}")


# FAO-56 reference surface: h = 0.12 m, r_s = 70 s m-1, albedo 0.23 (Allen et al. 1998, eq. 3-5)
FAO56_HEIGHT = 0.12
FAO56_SURFACE_RESISTANCE = 70.0
FAO56_ALBEDO = 0.23


class ReferenceBackend:
    """The reference process model behind the ``LandBackend`` Protocol."""

    name = "reference"

    def __init__(self, config: ReferenceConfig | None = None) -> None:
        self.config = config or ReferenceConfig()
        self._cls = class_table(torch.float64)

    # ------------------------------------------------------------------------------------------
    def _capacity(self) -> Tensor:
        soil = self.config.soil
        cap = self._cls["root_depth"] * soil.porosity * C.RHO_WATER
        cap[P.LandCover.WATER_ICE] = LAKE_CAPACITY
        return cap

    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        m, n, k = static.n_members, static.n_cells, P.N_CLASSES
        cap = self._capacity().expand(m, n, k)
        lat = torch.deg2rad(static.lat).expand(m, n).unsqueeze(-1)
        t0 = (302.0 - 45.0 * torch.sin(lat) ** 2).expand(m, n, k).clone()
        lai0 = 0.5 * self._cls["lai_max"] / self._cls["sla"]
        zeros = torch.zeros(m, n, k, dtype=torch.float64)
        return LandState(
            {
                "w": 0.75 * cap.clone(),
                "ts": t0,
                "tsoil": t0.unsqueeze(-1).expand(m, n, k, 3).clone(),
                "cleaf": lai0.expand(m, n, k).clone() * self._vegetated(),
                "acc_gpp": zeros.clone(),
                "acc_t": zeros.clone(),
                "acc_fw": zeros.clone(),
                "acc_time": zeros.clone(),
            }
        )

    def _vegetated(self) -> Tensor:
        v = torch.zeros(P.N_CLASSES, dtype=torch.float64)
        v[list(P.VEGETATED)] = 1.0
        return v

    # ------------------------------------------------------------------------------------------
    def step(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, Tensor]]:
        new_state, tiles = self.step_tiles(state, static, forcing, clock)
        return new_state, aggregate(tiles, static.cover)

    def step_tiles(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, Tensor]]:
        """The step at tile level: tile fields are (member, cell, tile)."""
        cfg, soil, cls = self.config, self.config.soil, self._cls
        if cfg.validate_forcing:
            for name in REQUIRED_FORCING:
                if name not in forcing:
                    raise ValueError(f"forcing field {name!r} is missing")
                check(name, forcing[name])
        dt = float(clock.dt)
        f = {k: v.to(torch.float64).unsqueeze(-1) for k, v in forcing.items()}
        ta, qa, ps, wind = f["tas"], f["huss"], f["ps"], f["sfcWind"]
        pr, rsds, rlds = f["pr"], f["rsds"], f["rlds"]
        co2 = f.get("co2", torch.full_like(ta, DEFAULT_CO2_PPM))
        prm = {spec.name: static.params[..., i] for i, spec in enumerate(P.PARAMETERS)}
        veg = self._vegetated()
        fao = cfg.surface is Surface.FAO56_GRASS

        w, ts, tsoil, cleaf = (state.tensors[k] for k in ("w", "ts", "tsoil", "cleaf"))
        capacity = self._capacity().expand_as(w)
        depth = cls["root_depth"]
        theta = (w / (depth * C.RHO_WATER)).clamp(0.0, soil.porosity)

        # 1. vegetation, albedo, roughness --------------------------------------------------
        lai = cls["sla"] * cleaf * veg
        vg = prm["vgcov"] * veg
        soil_alb = cls["soil_albedo"] * (1.0 - 0.4 * theta / soil.porosity)
        soil_alb = torch.where(veg + _is(P.LandCover.BARE) > 0, soil_alb, cls["soil_albedo"])
        alb_vis = physics.canopy_reflectance(
            prm["rlfv"] + photosynthesis.LEAF_TRANSMITTANCE_VIS, lai, 0.75 * soil_alb
        )
        alb_nir = physics.canopy_reflectance(prm["rlfn"] + prm["tlfn"], lai, 1.25 * soil_alb)
        albedo = vg * 0.5 * (alb_vis + alb_nir) + (1.0 - vg) * soil_alb
        h = prm["vegh"]
        z0_veg = 0.123 * h
        z0m = torch.exp(vg * torch.log(z0_veg) + (1.0 - vg) * torch.log(cls["z0_bare"]))
        emis = cls["emissivity"].expand_as(w)
        if fao:
            albedo = torch.full_like(w, FAO56_ALBEDO)
            z0m = torch.full_like(w, 0.123 * FAO56_HEIGHT)
        z0h = 0.1 * z0m
        ra_neutral = physics.neutral_aerodynamic_resistance(
            wind, cfg.height_wind, cfg.height_temperature, z0m, z0h
        )

        # 2. stress, photosynthesis, conductances -------------------------------------------
        theta_fc = water_content_at(photosynthesis.PSI_FIELD_CAPACITY_KPA, soil)
        theta_cr = water_content_at(prm["psicr"], soil)
        f_w = photosynthesis.water_stress(theta, theta_fc, theta_cr) * veg
        rh = physics.relative_humidity(qa, ta, ps)
        canopy = photosynthesis.canopy_photosynthesis(
            rsds=rsds,
            t_leaf=ts,
            ps=ps,
            rh=rh,
            co2_ppm=co2,
            lai=lai,
            vmax0=prm["vmax0"],
            effcon=prm["effcon"],
            gradm=prm["gradm"],
            binter=prm["binter"],
            rlfv=prm["rlfv"],
            f_w=f_w,
            iterations=cfg.photosynthesis_iterations,
        )
        sqrt_u = wind.clamp_min(0.1).sqrt()
        g_bh = prm["chl"] * (lai + STEM_AREA_INDEX) * sqrt_u
        g_bv = prm["cdl"] * (lai + STEM_AREA_INDEX) * sqrt_u
        r_soil = surface_resistance(theta, soil)
        water_tile = _is(P.LandCover.WATER_ICE)

        # 3. surface energy balance (Newton on T_s) -----------------------------------------
        rho = physics.air_density(ta, qa, ps)
        lam = physics.latent_heat_vaporisation(ta)
        s_abs = rsds * (1.0 - albedo)
        kappa = soil.conductivity * cls["heat_capacity_scale"] / (0.5 * soil.layer_thickness[0])
        g_slope, g_offset = surface_coupling(tsoil, kappa, cls["heat_capacity_scale"], soil, dt)

        def conductances(t_s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            stab = (
                torch.ones_like(t_s)
                if fao
                else physics.stability_factor(
                    physics.bulk_richardson(t_s, ta, wind, cfg.height_wind)
                )
            )
            ra = ra_neutral / stab
            if fao:
                g_tr = 1.0 / (ra + FAO56_SURFACE_RESISTANCE)
                return 1.0 / ra, g_tr, g_tr
            g_tr = 1.0 / (ra + 1.0 / g_bv + 1.0 / canopy.conductance.clamp_min(1e-9))
            g_tr = g_tr * (lai > 0).to(g_tr.dtype)
            soil_exposure = (1.0 - vg) + vg * torch.exp(-photosynthesis.K_EXTINCTION * lai)
            g_soil = soil_exposure / (ra + r_soil)
            g_soil = torch.where(water_tile > 0, 1.0 / ra, g_soil)
            g_h = vg / (ra + 1.0 / g_bh) + (1.0 - vg) / ra
            return g_h, vg * g_tr + g_soil, vg * g_tr

        # Stability follows T_s for the first iterations, then is frozen so that the remaining
        # iterations are a true Newton method on a smooth function (quadratic convergence).
        t_s = ts.clone()
        g_h, g_e, g_tr = conductances(t_s)
        for it in range(cfg.newton_iterations):
            if it < cfg.stability_updates:
                g_h, g_e, g_tr = conductances(t_s)
            qs, dqs = physics.saturation_specific_humidity(t_s, ps)
            resid = (
                s_abs
                + emis * rlds
                - emis * C.STEFAN_BOLTZMANN * t_s**4
                - rho * C.CP_AIR * g_h * (t_s - ta)
                - rho * lam * g_e * (qs - qa)
                - (g_slope * t_s - g_offset)
            )
            deriv = (
                -4.0 * emis * C.STEFAN_BOLTZMANN * t_s**3
                - rho * C.CP_AIR * g_h
                - rho * lam * g_e * dqs
                - g_slope
            )
            t_s = t_s - (resid / deriv).clamp(-15.0, 15.0)
            # physical guard: with the stable-stratification cap a weakly coupled tile (minimum
            # chl and binter) could otherwise cool without bound on clear nights (seen: 40 K)
            t_s = torch.minimum(
                torch.maximum(t_s, ta - SKIN_BELOW_AIR_MAX), ta + SKIN_ABOVE_AIR_MAX
            )
        qs, _ = physics.saturation_specific_humidity(t_s, ps)
        hfss = rho * C.CP_AIR * g_h * (t_s - ta)
        evap_demand = rho * g_e * (qs - qa)  # kg m-2 s-1
        tran_share = torch.where(g_e > 0, g_tr / g_e.clamp_min(1e-12), torch.zeros_like(g_e))

        # 4. constraint layer: water, then energy ---------------------------------------------
        precip = pr.expand_as(w)
        if fao:  # well-watered reference: irrigate back to capacity (counted as input water)
            precip = precip + ((capacity - w) / dt).clamp_min(0.0)
        runoff = runoff_and_drainage(w, capacity, precip, cls["impervious"], soil, dt)
        runoff = runoff * (1.0 - water_tile)
        floor = capacity * soil.theta_residual / soil.porosity * (1.0 - water_tile)
        upd = constraints.close_water(w, precip, evap_demand, runoff, capacity, dt, floor)
        hfls = lam * upd.evap
        rlus = physics.upwelling_longwave(t_s, rlds, emis)
        rns, rsus = constraints.net_radiation(rsds, rlds, albedo, rlus)
        hfdsl = constraints.close_energy(rns, hfls, hfss)
        tsoil_new = conduct_heat(tsoil, hfdsl, cls["heat_capacity_scale"], soil, dt)

        # 5. phenology --------------------------------------------------------------------------
        gpp_veg = canopy.gpp * C.MOLAR_MASS_C  # kg C m-2 (vegetated area) s-1
        acc = {
            "acc_gpp": state.tensors["acc_gpp"] + gpp_veg * dt,
            "acc_t": state.tensors["acc_t"] + ta * dt,
            "acc_fw": state.tensors["acc_fw"] + f_w * dt,
            "acc_time": state.tensors["acc_time"] + dt,
        }
        cleaf_new = cleaf
        if (clock.seconds_of_day + dt) % C.SECONDS_PER_DAY == 0 or dt >= C.SECONDS_PER_DAY:
            period = acc["acc_time"]
            cleaf_new = phenology.daily_leaf_carbon(
                cleaf,
                acc["acc_gpp"],
                acc["acc_t"] / period,
                acc["acc_fw"] / period,
                dt / C.SECONDS_PER_DAY if dt >= C.SECONDS_PER_DAY else 1.0,
                in_spring=phenology.spring(static.lat, clock.day_of_year)[:, None],
                sla=cls["sla"],
                lai_max=cls["lai_max"],
                longevity=cls["longevity"],
                alloc=cls["alloc"],
                deciduous=cls["deciduous"],
                t_onset=cls["t_onset"],
                vegetated=veg,
            )
            acc = {k: torch.zeros_like(v) for k, v in acc.items()}
        if fao:
            cleaf_new = cleaf

        new_state = LandState(
            {"w": upd.storage, "ts": t_s, "tsoil": tsoil_new, "cleaf": cleaf_new, **acc}
        )
        top = 0.1 / depth
        tiles = {
            "hfls": hfls,
            "hfss": hfss,
            "hfdsl": hfdsl,
            "ts": t_s,
            "albedo": albedo,
            "rsus": rsus,
            "rlus": rlus,
            "rns": rns,
            "evspsbl": upd.evap,
            "tran": upd.evap * tran_share,
            "mrro": upd.runoff,
            "mrso": upd.storage,
            "mrsos": upd.storage * top,
            "z0": z0m,
            "lai": lai * vg,
            "gpp": gpp_veg * vg,
            "pr_in": precip,
            "mrso_old": w,
        }
        return new_state, tiles


def _is(lc: P.LandCover) -> Tensor:
    v = torch.zeros(P.N_CLASSES, dtype=torch.float64)
    v[int(lc)] = 1.0
    return v


LINEAR_FIELDS = (
    "hfls",
    "hfss",
    "hfdsl",
    "ts",
    "albedo",
    "rsus",
    "rlus",
    "rns",
    "evspsbl",
    "tran",
    "mrro",
    "mrso",
    "lai",
    "gpp",
)


def aggregate(tiles: Mapping[str, Tensor], cover: Tensor) -> dict[str, Tensor]:
    """Cover-weighted cell fields (member, cell) from tile fields (member, cell, tile).
    Linear for fluxes and stores (closure carries over); log-mean for z0; mrsos is the mean over
    the soil tiles (the lake tile has no soil)."""
    out = {k: (tiles[k] * cover).sum(-1) for k in LINEAR_FIELDS}
    out["z0"] = torch.exp((torch.log(tiles["z0"]) * cover).sum(-1))
    soil_cover = cover * (1.0 - _is(P.LandCover.WATER_ICE))
    total = soil_cover.sum(-1)
    out["mrsos"] = torch.where(
        total > 0,
        (tiles["mrsos"] * soil_cover).sum(-1) / total.clamp_min(1e-12),
        torch.zeros_like(total),
    )
    return out
