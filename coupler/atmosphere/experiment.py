"""A coupled scenario experiment: the simplified atmosphere driving the landcoupler service.

``prepare_setup`` (once per run, no service): the grid; a standalone spin-up of the atmosphere
with the bucket land at the reference-year forcing and SST held at climatology, whose climate
gives the land-cover map (``landcover``); and the ocean's anomalies at the start year from the
global two-layer model (``ebm``) driven by the historical ERF since the reference year.

``run_experiment`` (per experiment, "dynamic" or "frozen", possibly in its own process):
starts the transport (a local gRPC server on 127.0.0.1:0 and a ``CouplerClient``, or an
``InProcessClient``), opens one session per rank through the client API, then
1. control: ``spinup_years`` coupled years before the start year at the reference forcing with
   SST held at climatology; the last one diagnoses the slab ocean's q-flux;
2. scenario: the run's years with the prognostic two-layer slab ocean (started on the EBM's
   historical anomalies), ERF(t) − ERF(reference year) at the top and CO2(t) to the land;
and writes its diagnostics (``diagnostics.zarr``) under ``out/<experiment>/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coupler.atmosphere import climatology, ebm, landcover
from coupler.atmosphere import grid as G
from coupler.atmosphere import scenario as S
from coupler.atmosphere.column import ColumnModel, ColumnState, Forcing, forcing_at
from coupler.atmosphere.diagnostics import Accumulator
from coupler.atmosphere.driver import OceanMode, StepHook, add_years, integrate, steps_between
from coupler.atmosphere.ocean import QFlux
from coupler.atmosphere.runconfig import LUC, RunConfig
from coupler.atmosphere.service_land import ServiceLand, SessionOptions
from coupler.atmosphere.surface import BucketLand, LandSurface
from coupler.client import Client, local_client
from coupler.client.local import Transport


@dataclass
class Setup:
    """What every experiment of a run shares (picklable)."""

    grid: G.CellGrid
    state: ColumnState  # atmosphere after the standalone spin-up, dated start − spinup years
    biome: np.ndarray  # (land cell,) index into landcover.BIOME_NAMES
    cover: np.ndarray  # (land cell, 8)
    ocean_anomaly: float  # K, mixed layer at the start year (EBM)
    deep_anomaly: float  # K
    reference_erf: float  # W m-2
    reference_co2: float  # ppm
    #: per rank, its observation file (``landcoupler run --assimilate``; empty: no DA)
    observations: tuple[str | None, ...] = ()
    #: per rank, the number of observations in its file
    observation_counts: tuple[int, ...] = ()


@dataclass
class ExperimentResult:
    name: str
    path: Path
    wall_seconds: float
    coupled_years: int
    land_steps: int
    record: str | None
    #: the "luc" experiment: one row per cover change and rank (``landuse_rows``)
    land_use: list[dict[str, Any]] = field(default_factory=list)


def jan1(year: int) -> np.datetime64:
    return np.datetime64(f"{year:04d}-01-01T00:00:00", "s")


def two_layer_for(config: RunConfig, grid: G.CellGrid) -> ebm.TwoLayer:
    """The global two-layer model equivalent to the column model on ``grid``: λ = F_2x / ECS,
    heat capacities and γ per ocean area times the grid's ocean fraction (plus the atmosphere)."""
    col = config.column
    f_ocean = float(grid.weights @ (1.0 - grid.land_fraction))
    return ebm.TwoLayer(
        lam=S.F2X_AR6 / config.ecs,
        gamma=col.gamma * f_ocean,
        heat_capacity=col.ocean_heat_capacity * f_ocean + col.heat_capacity,
        deep_heat_capacity=col.deep_heat_capacity * f_ocean,
    )


def prepare_setup(config: RunConfig, grid: G.CellGrid | None = None) -> Setup:
    """The shared setup (module docstring); ``grid`` overrides the regular grid of the config."""
    grid = grid or G.regular(config.resolution, config.min_land_fraction)
    scen = S.load(config.scenario)
    ref_erf = scen.annual("erf_total", config.reference_year)
    ref_co2 = scen.annual("co2", config.reference_year)
    control_start = jan1(config.years[0] - config.spinup_years)
    standalone_start = add_years(control_start, -config.standalone_years)
    model = ColumnModel(grid, config.column)
    bucket = BucketLand(grid.land_index.size, config.column.dt)
    state = model.initial_state(standalone_start)
    forcing = Forcing(0.0, ref_co2)
    acc = Accumulator(grid, config.years[0] - config.spinup_years - 1, 1)
    state = integrate(
        model, state, bucket, steps_between(standalone_start, control_start, config.column.dt),
        lambda t: forcing, OceanMode(), hook=acc.add,
    ).state  # fmt: skip
    lat, lon = grid.lat[grid.land_index], grid.lon[grid.land_index]
    tas = acc.cell["tas"][0, grid.land_index] / acc.steps[0]
    pr = acc.cell["pr"][0, grid.land_index] / acc.steps[0] * 86_400.0 * 365.0
    biome = landcover.classify(lat, lon, tas, pr)
    years = np.arange(config.reference_year, config.years[0])
    erf = scen.columns["erf_total"][years - scen.first_year] - ref_erf
    t_mix, t_deep = two_layer_for(config, grid).state_at_end(erf)
    urls: tuple[str | None, ...] = ()
    counts: tuple[int, ...] = ()
    if config.assimilate is not None:
        from coupler.atmosphere.observations import match_km, split_by_rank

        urls, counts = split_by_rank(
            config.assimilate, grid, G.split_land(grid, config.ranks),
            Path(config.out) / "observations", match_km(config.resolution),
        )  # fmt: skip
    return Setup(grid, state, biome, landcover.cover_fractions(biome), t_mix, t_deep, ref_erf,
                 ref_co2, urls, counts)  # fmt: skip


def assimilation_options(config: RunConfig) -> dict[str, Any] | None:
    """The sessions' assimilation options of a run with ``assimilate`` (None without): the
    session defaults (serial EAKF, adaptive inflation, 20 members unless ``members`` says
    otherwise), observations matched to cells anywhere inside a grid cell, an initial LAI
    spread of 20 % and a daily 5 % leaf-carbon model error (without spread, LAI observations
    would be refused as ``zero_spread``)."""
    if config.assimilate is None:
        return None
    from coupler.atmosphere.observations import match_km

    return {
        "match_km": match_km(config.resolution), "seed": 0,
        "initial_leaf_carbon_sd": 0.2, "leaf_carbon_sd": 0.05,
    }  # fmt: skip


def open_client(transport: str) -> AbstractContextManager[Client]:
    """A client of a fresh local service: gRPC on 127.0.0.1:0 (``shm``: the step arrays through
    shared memory, the co-located fast path), or in-process."""
    chosen: Transport = (
        "shm" if transport == "shm" else "inprocess" if transport == "inprocess" else "grpc"
    )
    return local_client(chosen, name="landcoupler-run")


def run_experiment(
    config: RunConfig,
    setup: Setup,
    name: str,
    *,
    progress: Callable[[int], None] | None = None,
    land_hook: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> ExperimentResult:
    """Run experiment ``name`` ("dynamic" or "frozen"); see the module docstring.
    ``land_hook(index, land_fields)`` sees every land reply (tests compare transports)."""
    t0 = time.perf_counter()
    grid, col = setup.grid, config.column
    backend = config.backend
    freeze = config.years[0] if name == "frozen" else None
    luc = name == LUC
    control_start = jan1(config.years[0] - config.spinup_years)
    out_dir = Path(config.out) / name
    out_dir.mkdir(parents=True, exist_ok=True)
    record = f"{config.record.rstrip('/')}/{name}" if config.record else None
    options = SessionOptions(
        start=control_start, timestep=config.timestep, backend=backend,
        members=config.members, run_id=f"landcoupler-run-{config.scenario}-{name}",
        record_url=record, freeze_vegetation_year=freeze, record_options=config.record_options,
        assimilation=assimilation_options(config), observations=setup.observations,
        forcing_dtype=config.forcing_dtype,
    )  # fmt: skip
    model = ColumnModel(grid, col)
    acc = Accumulator(grid, config.years[0], config.n_years)
    parts = G.split_land(grid, config.ranks)
    n_steps = steps_between(control_start, jan1(config.years[1] + 1), col.dt)

    counter = [0]

    def hook(prep: Any, state: Any, budget: Any, fields: Any, land: Any) -> None:
        acc.add(prep, state, budget, fields, land)
        if land_hook is not None:
            land_hook(counter[0], land)
        counter[0] += 1

    rows: list[dict[str, Any]] = []
    with open_client(config.transport) as client:
        land = ServiceLand(client, grid, parts, setup.cover, options)
        try:
            new_year = landuse_hook(config, setup, land, rows) if luc else None
            run_phases(config, setup, model, land, hook=hook, progress=progress,
                       new_year=new_year)  # fmt: skip
        finally:
            land.close()
    ds = acc.dataset().assign_coords(biome=("land_cell", setup.biome))
    if luc and rows:
        ds["land_cover_final"] = (("land_cell", "land_cover_class"), rows[-1].pop("cover"))
        for r in rows:
            r.pop("cover", None)
    ds["biome"].attrs["names"] = ", ".join(landcover.BIOME_NAMES)
    ds.attrs.update(_attrs(config, setup, name, backend, freeze))
    path = out_dir / "diagnostics.zarr"
    ds.to_zarr(path, mode="w", consolidated=False)
    return ExperimentResult(
        name, path, time.perf_counter() - t0, config.spinup_years + config.n_years,
        n_steps, record, rows,
    )  # fmt: skip


def landuse_hook(
    config: RunConfig, setup: Setup, land: ServiceLand, rows: list[dict[str, Any]]
) -> Callable[[int, int], None]:
    """What the "luc" experiment does on 1 January of every scenario year after the first:
    the year's cover (``landuse.LandUse``) to every session; one row per rank and change
    (``landuse_rows``) appended to ``rows``, the last one with the cover."""
    from coupler.atmosphere.landuse import LandUse

    grid = setup.grid
    lu = LandUse(config.scenario, grid, setup.cover, setup.biome, config.years[0],
                 seed=config.land_use_seed)  # fmt: skip
    weights = (grid.area * grid.land_fraction)[grid.land_index]

    def new_year(year: int, index: int) -> None:
        if year <= config.years[0]:
            return
        t0 = time.perf_counter()
        cover, d = lu.cover(year)
        t1 = time.perf_counter()
        answers = land.update_cover(index, cover)
        for rank, (up, pos) in enumerate(zip(answers, land.positions, strict=True)):
            w = weights[pos] / weights[pos].sum()
            rows.append({
                "year": year, "rank": rank, "step": index, "cells_changed": up.cells_changed,
                "water_residual_kg_m-2": up.water_residual,
                "energy_residual_J_m-2": up.energy_residual,
                "carbon_residual_kgC_m-2": up.carbon_residual,
                **{f"{k}_mean": float(w @ v) for k, v in up.released.items()},
                "unet_minus_blocks": d.unet_minus_blocks, "downscale_s": t1 - t0,
            })  # fmt: skip
        rows[-1]["cover"] = cover

    return new_year


def run_phases(
    config: RunConfig,
    setup: Setup,
    model: ColumnModel,
    land: LandSurface,
    *,
    hook: StepHook | None = None,
    progress: Callable[[int], None] | None = None,
    new_year: Callable[[int, int], None] | None = None,
) -> ColumnState:
    """The control years (SST held, q-flux diagnosed in the last) then the scenario years with
    the prognostic ocean; the land sees consecutive step indices from 0. ``new_year(year,
    index)`` is called before the first step of every scenario year (land-use change).
    Returns the end state."""
    col, grid = model.config, model.grid
    scen = S.load(config.scenario)
    control_start = jan1(config.years[0] - config.spinup_years)
    start, end = jan1(config.years[0]), jan1(config.years[1] + 1)
    ref = Forcing(0.0, setup.reference_co2)
    last_control = add_years(start, -1)
    n_free = steps_between(control_start, last_control, col.dt)
    n_control = steps_between(control_start, start, col.dt)
    q = QFlux(grid.n_cells)
    state = integrate(
        model, setup.state.copy(), land, n_free, lambda t: ref, OceanMode(), hook=hook,
        progress=progress,
    ).state  # fmt: skip
    state = integrate(
        model, state, land, n_control - n_free, lambda t: ref, OceanMode(diagnose=q),
        land_index0=n_free, hook=hook, progress=progress,
    ).state  # fmt: skip
    state.sst = climatology.sst(grid.lat, 1.0) + setup.ocean_anomaly
    state.deep = np.full(grid.n_cells, setup.deep_anomaly)
    ocean = OceanMode(qflux=q.table())

    def scenario(t: np.datetime64) -> Forcing:
        return forcing_at(scen, t, setup.reference_erf)

    if new_year is None:
        return integrate(
            model, state, land, steps_between(start, end, col.dt), scenario, ocean,
            land_index0=n_control, hook=hook, progress=progress,
        ).state  # fmt: skip
    index = n_control
    for year in range(config.years[0], config.years[1] + 1):
        new_year(year, index)
        n = steps_between(jan1(year), jan1(year + 1), col.dt)
        state = integrate(model, state, land, n, scenario, ocean, land_index0=index, hook=hook,
                          progress=progress).state  # fmt: skip
        index += n
    return state


def _attrs(
    config: RunConfig, setup: Setup, name: str, backend: str, freeze: int | None
) -> dict[str, Any]:
    return {
        "experiment": name,
        "scenario": config.scenario,
        "backend": backend,
        "freeze_vegetation_year": freeze if freeze is not None else "none",
        "transport": config.transport,
        "resolution_deg": config.resolution,
        "timestep_s": config.timestep,
        "ranks": config.ranks,
        "members": config.members,
        "spinup_years": config.spinup_years,
        "reference_year": config.reference_year,
        "reference_erf_W_m-2": setup.reference_erf,
        "initial_ocean_anomaly_K": setup.ocean_anomaly,
        "initial_deep_anomaly_K": setup.deep_anomaly,
        "ecs_K": config.ecs,
        "scenario_provenance": "RCMIP v5.1.0 via fair 1.6.4 (coupler/atmosphere/data)",
    }
