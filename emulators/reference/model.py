"""The reference land model: a SiB2/MATSIRO-style big-leaf model, vectorised over
(member, cell, tile), one tile per land-cover class. It is the teacher the emulators learn from.

One step (``ReferenceBackend.step``; the shared skeleton and phases are ``emulators.landstep``),
per tile:
1. radiation and roughness: LAI = SLA × leaf carbon; albedo from leaf optics and soil;
   roughness from vegetation height and cover (``landstep.surface``);
2. conductances: water stress from soil water potential and ``psicr``; canopy photosynthesis
   and stomatal conductance (``photosynthesis``); aerodynamic (stability-corrected),
   leaf boundary-layer and bare-soil resistances (``energy.conductances``);
3. energy balance solve for the skin temperature by Newton iteration
   (``energy.solve_energy_balance``), giving H, the evaporation demand and the transpiration
   share (``energy.turbulent_fluxes``);
4. water: water-limited ET, runoff, exact water update (``landstep.budgets.water``);
5. energy and soil heat: G = Rn − LE − H (exact energy closure); soil heat conduction with G;
6. phenology at the end of each day (``landstep.daily``); leaf nitrogen = leaf carbon / C:N of
   the class after every step (``landstep.nitrogen``, in ``TileBackend.step``).
Cell fields are cover-weighted tile sums (``landstep.aggregate``; linear, so closure carries
over to cells).

Left out (documented in docs/reference-model.md): snow and frozen soil, canopy interception
storage, separate canopy and ground temperatures, lateral flow, nitrogen limitation, crop
management.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from emulators import constants as C
from emulators import landstep, physics
from emulators import parameters as P
from emulators.landstep import Forcing, StepResult, TileSurface
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference import phenology, photosynthesis
from emulators.reference.energy import (
    EnergyBalance,
    Exchange,
    solve_energy_balance,
    turbulent_fluxes,
)
from emulators.reference.soil import SoilConfig, surface_coupling, surface_resistance

Tensor = torch.Tensor
DEFAULT_CO2_PPM = 390.0
#: cell blocks are multiples of this (2 × the 8 float64 lanes of AVX-512, with room to spare)
CELL_BLOCK_MULTIPLE = 64
STEM_AREA_INDEX = 1.0  # keeps leafless canopies exchanging heat through stems
#: the reference phenology's daily accumulators: GPP, air temperature, water stress, seconds
ACCUMULATORS = ("acc_gpp", "acc_t", "acc_fw", "acc_time")


class Surface(enum.Enum):
    """What the tiles represent."""

    LAND = "land"  # the eight land-cover tiles with their parameters
    FAO56_GRASS = "fao56-grass"  # FAO-56 hypothetical reference grass (Allen et al. 1998)


@dataclass(frozen=True)
class ReferenceConfig:
    surface: Surface = Surface.LAND
    soil: SoilConfig = field(default_factory=SoilConfig)
    height_wind: float = C.DEFAULT_HEIGHT_WIND  # m above the zero-plane displacement
    height_temperature: float = C.DEFAULT_HEIGHT_TEMPERATURE  # m
    newton_iterations: int = 8
    stability_updates: int = 3  # Newton iterations that re-evaluate the stability correction
    photosynthesis_iterations: int = 6
    validate_forcing: bool = True
    #: cells per block of a step (0: all at once); see ``TileBackend.cell_block``. 8192 cells
    #: make 512 KiB per (cell, tile) float64 temporary, well inside a 2 MiB L2 (measured in
    #: docs/benchmarks.md). Bitwise the same results as one block, because a block is a
    #: multiple of ``CELL_BLOCK_MULTIPLE`` cells: torch's vectorised loops compute the last
    #: ``n mod 2·lanes`` elements of a tensor with the scalar (not the SIMD) exp/log/pow, so
    #: blocks must end where the whole domain's SIMD groups end (an odd block changes the last
    #: bits of cells at block ends; tests/emulators/reference/test_cell_blocks.py).
    cell_block: int = 8192

    def __post_init__(self) -> None:
        if self.cell_block < 0 or self.cell_block % CELL_BLOCK_MULTIPLE:
            raise ValueError(
                f"cell_block must be 0 (no blocks) or a positive multiple of {CELL_BLOCK_MULTIPLE}"
            )
        for name in ("height_wind", "height_temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a finite height > 0 m, got {value!r}")
        if self.newton_iterations < 1 or self.photosynthesis_iterations < 1:
            raise ValueError("iteration counts must be >= 1")
        if not 0 <= self.stability_updates <= self.newton_iterations:
            raise ValueError("stability_updates must be in [0, newton_iterations]")
        if not isinstance(self.surface, Surface):
            raise ValueError(f"surface must be a Surface, got {self.surface!r}")


# FAO-56 reference surface: h = 0.12 m, r_s = 70 s m-1, albedo 0.23 (Allen et al. 1998, eq. 3-5)
FAO56_HEIGHT = 0.12
FAO56_ALBEDO = 0.23


def exchange(
    f: dict[str, Tensor],
    surf: TileSurface,
    z0m: Tensor,
    params: Tensor,
    g_stomata: Tensor,
    const: dict[str, Tensor],
    config: ReferenceConfig,
    fao: bool = False,
) -> Exchange:
    """What the tiles' conductances depend on apart from T_s (``energy.Exchange``): the neutral
    aerodynamic resistance at the config's measurement heights, leaf boundary-layer
    conductances, the canopy's stomatal conductance ``g_stomata`` [m s-1], the bare-soil
    resistance and the open-water flag. ``f``: forcing fields; ``params`` (…, 12); ``const``:
    class constants (per tile, or gathered per row)."""
    wind = f["sfcWind"]
    ra_neutral = physics.neutral_aerodynamic_resistance(
        wind, config.height_wind, config.height_temperature, z0m, 0.1 * z0m
    )
    sqrt_u = wind.clamp_min(0.1).sqrt()
    chl = params[..., P.PARAMETER_NAMES.index("chl")]
    cdl = params[..., P.PARAMETER_NAMES.index("cdl")]
    return Exchange(
        ra_neutral=ra_neutral,
        ta=f["tas"],
        wind=wind,
        height_wind=config.height_wind,
        g_bh=chl * (surf.lai + STEM_AREA_INDEX) * sqrt_u,
        g_bv=cdl * (surf.lai + STEM_AREA_INDEX) * sqrt_u,
        g_stomata=g_stomata,
        lai=surf.lai,
        vgcov=surf.vgcov,
        r_soil=surface_resistance(surf.theta, config.soil),
        water=const["water"],
        fao56=fao,
    )


def energy_terms(
    f: dict[str, Tensor],
    albedo: Tensor,
    w: Tensor,
    tsoil: Tensor,
    dt: float,
    const: dict[str, Tensor],
    soil: SoilConfig,
) -> EnergyBalance:
    """The terms of the surface energy balance that do not depend on T_s
    (``energy.EnergyBalance``): absorbed shortwave, longwave, emissivity, air properties and the
    soil column's implicit G(T_s) over ``dt`` s. ``const`` per tile or gathered per row."""
    ta, qa, ps = f["tas"], f["huss"], f["ps"]
    scale = const["heat_capacity_scale"]
    kappa = soil.conductivity * scale / (0.5 * soil.layer_thickness[0])
    g_slope, g_offset = surface_coupling(tsoil, kappa, scale, soil, dt)
    return EnergyBalance(
        s_abs=f["rsds"] * (1.0 - albedo),
        rlds=f["rlds"],
        emis=const["emissivity"].expand_as(w),
        rho=physics.air_density(ta, qa, ps),
        lam=physics.latent_heat_vaporisation(ta),
        ta=ta,
        qa=qa,
        ps=ps,
        g_slope=g_slope,
        g_offset=g_offset,
    )


class ReferenceBackend(landstep.TileBackend[ReferenceConfig]):
    """The reference process model behind the ``LandBackend`` Protocol."""

    name = "reference"

    def __init__(self, config: ReferenceConfig | None = None) -> None:
        self.config = config or ReferenceConfig()
        self.cell_block = self.config.cell_block
        self._const = landstep.class_constants(self.config.soil)

    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        return landstep.initial_state(static, self._const, accumulators=ACCUMULATORS)

    def at_heights(self, wind: float, temperature: float) -> ReferenceBackend:
        """``HeightAwareBackend``: the model at these forcing heights [m] (any positive ones;
        the log profile's heights below the roughness are handled by ``exchange``)."""
        if (wind, temperature) == (self.config.height_wind, self.config.height_temperature):
            return self
        return self._with_config(
            replace(self.config, height_wind=float(wind), height_temperature=float(temperature))
        )

    def _with_config(self, config: ReferenceConfig) -> ReferenceBackend:
        """A backend of this class with ``config`` (subclasses add what they share)."""
        return type(self)(config)

    #: ``BatchableBackend``: a joined domain is bitwise its parts when every part is a multiple
    #: of ``CELL_BLOCK_MULTIPLE`` cells (the argument of ``ReferenceConfig.cell_block``: every
    #: part starts and ends on the SIMD groups of the joined tensors, and the step is
    #: elementwise per (member, cell, tile) with fixed iteration counts and no branch on data)
    batch_cells = CELL_BLOCK_MULTIPLE

    def batch_key(self, clock: StepClock) -> Hashable:
        """``BatchableBackend.batch_key``: the step reads its clock only through ``dt`` (every
        phase), whether the step ends a day (phenology) and, only then, the day of the year
        (the spring half of the phenological year); not the index nor the hour."""
        ends = landstep.day_ends(clock)
        return (float(clock.dt), ends, clock.day_of_year if ends else None)

    def advance(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """The phases of the reference step (module docstring); tile fields are
        (member, cell, tile)."""
        cfg, soil, const = self.config, self.config.soil, self._const
        fao = cfg.surface is Surface.FAO56_GRASS
        dt = float(clock.dt)
        f = {k: v.to(torch.float64).unsqueeze(-1) for k, v in forcing.items()}
        w, ts, tsoil, cleaf = (state.tensors[k] for k in ("w", "ts", "tsoil", "cleaf"))
        capacity = const["capacity"].expand_as(w)

        # radiation and roughness
        surf = landstep.surface(w, cleaf, static.params, const, soil)
        albedo, z0m = surf.albedo, surf.z0
        if fao:
            albedo = torch.full_like(w, FAO56_ALBEDO)
            z0m = torch.full_like(w, 0.123 * FAO56_HEIGHT)
        # conductances and photosynthesis
        ex, gpp_veg = self._exchange(f, ts, surf, z0m, static.params, fao)
        # energy balance solve
        eb = energy_terms(f, albedo, w, tsoil, dt, const, soil)
        t_s, g = solve_energy_balance(ts, eb, ex, cfg.newton_iterations, cfg.stability_updates)
        fluxes = turbulent_fluxes(t_s, g, eb, gpp_veg * surf.vgcov)
        # water, energy, soil heat
        precip = f["pr"].expand_as(w)
        if fao:  # well-watered reference: irrigate back to capacity (counted as input water)
            precip = precip + ((capacity - w) / dt).clamp_min(0.0)
        closed = landstep.close(
            fluxes,
            w=w,
            tsoil=tsoil,
            precip=precip,
            rsds=f["rsds"],
            rlds=f["rlds"],
            lam=eb.lam,
            albedo=albedo,
            emissivity=eb.emis,
            z0=z0m,
            lai=surf.lai * surf.vgcov,
            capacity=capacity,
            const=const,
            soil=soil,
            dt=dt,
        )
        # phenology
        cleaf_new, acc = self._phenology(state, static, f["tas"], surf, gpp_veg, clock)
        if fao:
            cleaf_new = cleaf
        new_state = LandState(
            {"w": closed.w, "ts": t_s, "tsoil": closed.tsoil, "cleaf": cleaf_new, **acc}
        )
        return new_state, closed.fields

    # ---- phases ------------------------------------------------------------------------------
    def _exchange(
        self,
        f: dict[str, Tensor],
        ts: Tensor,
        surf: TileSurface,
        z0m: Tensor,
        params: Tensor,
        fao: bool,
    ) -> tuple[Exchange, Tensor]:
        """Conductances phase inputs: resistances and the canopy's stomatal conductance, and the
        GPP of the vegetated part [kg C m-2 s-1] (photosynthesis at the previous skin
        temperature ``ts``)."""
        ta, qa, ps = f["tas"], f["huss"], f["ps"]
        prm = {spec.name: params[..., i] for i, spec in enumerate(P.PARAMETERS)}
        canopy = self._canopy(
            rsds=f["rsds"],
            t_leaf=ts,
            ps=ps,
            rh=physics.relative_humidity(qa, ta, ps),
            co2_ppm=f.get("co2", torch.full_like(ta, DEFAULT_CO2_PPM)),
            lai=surf.lai,
            vmax0=prm["vmax0"],
            effcon=prm["effcon"],
            gradm=prm["gradm"],
            binter=prm["binter"],
            rlfv=prm["rlfv"],
            f_w=surf.f_w,
            iterations=self.config.photosynthesis_iterations,
        )
        ex = exchange(f, surf, z0m, params, canopy.conductance, self._const, self.config, fao)
        return ex, canopy.gpp * C.MOLAR_MASS_C

    def _canopy(self, **inputs: Any) -> photosynthesis.CanopyExchange:
        """Canopy photosynthesis and stomatal conductance (``photosynthesis``); the ``hybrid``
        backend replaces this phase, and only this one, by a network."""
        return photosynthesis.canopy_photosynthesis(**inputs)

    def _phenology(
        self,
        state: LandState,
        static: LandStatic,
        ta: Tensor,
        surf: TileSurface,
        gpp_veg: Tensor,
        clock: StepClock,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Phenology phase: (leaf carbon after the step, daily accumulators)."""
        dt = float(clock.dt)
        t = state.tensors
        acc = {
            "acc_gpp": t["acc_gpp"] + gpp_veg * dt,
            "acc_t": t["acc_t"] + ta * dt,
            "acc_fw": t["acc_fw"] + surf.f_w * dt,
            "acc_time": t["acc_time"] + dt,
        }
        if not landstep.day_ends(clock):
            return t["cleaf"], acc
        period = acc["acc_time"]
        day = landstep.Day(
            gpp=acc["acc_gpp"],
            t_mean=acc["acc_t"] / period,
            fw_mean=acc["acc_fw"] / period,
            days=dt / C.SECONDS_PER_DAY if dt >= C.SECONDS_PER_DAY else 1.0,
            in_spring=phenology.spring(static.lat, clock.day_of_year)[:, None],
        )
        cleaf = landstep.leaf_carbon(t["cleaf"], day, self._const)
        return cleaf, landstep.reset(acc)
