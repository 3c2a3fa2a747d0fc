"""Twin experiment: assimilating synthetic LAI, LE/H and LST into the land ensemble.

Truth: the reference land model with *hidden* parameters (per cell and class: Rubisco capacity
``vmax0`` low and critical leaf water potential ``psicr`` high, i.e. less productive, more
drought-sensitive vegetation than the ensemble's prior expects), driven by unperturbed synthetic
weather. Ensemble: ``members`` members with perturbed forcing (``perturb``) and parameters drawn
from a broad prior; a *free* ensemble and an *assimilating* ensemble share the same members
(same forcing noise, same initial parameters) and differ only by the analyses. The ensembles run
as one batch through the ensemble's backend (``TwinConfig.backend``: ``reference`` or an emulator
backend, ``torchscript``, ``aoti``, ``onnx``; free members first, then assimilating); the truth
runs through ``TwinConfig.truth_backend`` (default the reference model: with an emulator
ensemble the twin then also has the emulator's structural error, as real assimilation has).

Synthetic observations, from the truth with Gaussian errors (documented in docs/assimilation.md):
- LAI: 8-day composites (GLASS-like) at every cell, error sd ``0.1 + 0.1·LAI``;
- LE and H: daily means at ``towers`` cells, error sd ``5 W m-2 + 10 %`` of the flux magnitude;
- LST: skin temperature at 10:30 local solar time (a Terra-like overpass) at every cell, every
  day, error sd 1 K.
Analyses run once a day at 00:00 UTC with the observations completed that day.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from coupler.assimilation.online import EnsembleAssimilator
from coupler.assimilation.operators import ObservationBuffer, ObservationSet
from coupler.assimilation.perturb import perturb_leaf_carbon, perturb_parameters
from coupler.assimilation.settings import ParameterPerturbation, ParameterPrior
from coupler.experiments.twin_config import TwinConfig
from coupler.experiments.twin_metrics import Identifiability, Stats, collect, result, series_day
from emulators import parameters as P
from emulators.constants import SECONDS_PER_DAY
from emulators.protocol import LandBackend, LandState, LandStatic, StepClock

FORCING = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")
HIDDEN = (  # the truth's parameters are drawn from these sub-ranges
    ParameterPrior("vmax0", 1.5e-5, 3.0e-5, log=True),
    ParameterPrior("psicr", -130.0, -70.0),
)
VEG_CLASSES = (
    P.LandCover.DECIDUOUS_FOREST_WOODLAND,
    P.LandCover.GRASSLAND,
    P.LandCover.CROPLAND,
    P.LandCover.EVERGREEN_BROADLEAF_FOREST,
)


def domain(cfg: TwinConfig) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Cells (lat, lon in degrees) spread over Europe and their land-cover fractions: 80 % of
    one vegetated class, 20 % grass or crop."""
    rng = np.random.default_rng(cfg.seed)
    lat = rng.uniform(38.0, 54.0, cfg.cells)
    lon = rng.uniform(-5.0, 25.0, cfg.cells)
    cover = torch.zeros(cfg.cells, P.N_CLASSES, dtype=torch.float64)
    for i in range(cfg.cells):
        main = VEG_CLASSES[i % len(VEG_CLASSES)]
        other = P.LandCover.CROPLAND if main == P.LandCover.GRASSLAND else P.LandCover.GRASSLAND
        cover[i, int(main)] = 0.8
        cover[i, int(other)] += 0.2
    return lat, lon, cover


def _forcing(cfg: TwinConfig, lat: np.ndarray, lon: np.ndarray) -> dict[str, torch.Tensor]:
    from emulators import forcing as F

    ds = F.load(
        "synthetic",
        lat=lat,
        lon=lon,
        start=cfg.start,
        days=cfg.days,
        seed=cfg.seed,
        timestep=cfg.timestep,
    )
    return {k: torch.from_numpy(np.ascontiguousarray(ds[k].values)) for k in FORCING}


def _cat(*states: LandState) -> LandState:
    keys = states[0].tensors.keys()
    return LandState({k: torch.cat([s.tensors[k] for s in states]) for k in keys})


def _slice(state: LandState, sl: slice) -> LandState:
    return LandState({k: v[sl].clone() for k, v in state.tensors.items()})


def make_backend(name: str) -> LandBackend:
    """The land backend ``name`` (see ``BACKENDS``), built with its default settings."""
    if name == "reference":
        from emulators.reference import ReferenceBackend

        return ReferenceBackend()
    from emulators.compiled import emulator

    classes = {
        "torchscript": emulator.TorchScriptBackend,
        "aoti": emulator.AOTIBackend,
        "onnx": emulator.OnnxBackend,
    }
    backend: LandBackend = classes[name]()
    return backend


def parameters(
    cfg: TwinConfig,
    lat: torch.Tensor,
    lon: torch.Tensor,
    cover: torch.Tensor,
    ens_gen: torch.Generator,
    truth_gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's (member, cell, class, 12) and the truth's (1, cell, class, 12) parameters:
    every prior of ``cfg.assimilation`` is drawn from ``ens_gen`` (the same numbers whatever is
    estimated), the hidden truth from ``truth_gen``; the parameters not in ``cfg.estimate`` are
    then set to the truth's values in every member."""
    base = LandStatic.from_cover(lat, lon, cover, members=cfg.members)
    ens = perturb_parameters(base.params, cfg.assimilation.parameters, ens_gen)
    truth = LandStatic.from_cover(lat, lon, cover, members=1).params.clone()
    for prior in HIDDEN:
        u = torch.rand(truth.shape[:-1], dtype=torch.float64, generator=truth_gen)
        lo, hi = (
            (math.log(prior.low), math.log(prior.high)) if prior.log else (prior.low, prior.high)
        )
        v = lo + (hi - lo) * u
        truth[..., prior.index] = torch.exp(v) if prior.log else v
        if prior.name not in cfg.estimate:
            ens[..., prior.index] = truth[..., prior.index]
    return ens, truth


def run_twin(cfg: TwinConfig, progress: bool = False) -> dict[str, Any]:
    """Run the experiment; returns metrics, settings and daily series for the report."""
    t_start = time.perf_counter()
    n = cfg.members
    free, assim = slice(0, n), slice(n, 2 * n)
    lat, lon, cover = domain(cfg)
    forcing = _forcing(cfg, lat, lon)
    backend = make_backend(cfg.backend)
    truth_backend = backend if cfg.truth_backend == cfg.backend else make_backend(cfg.truth_backend)
    # the filter estimates ``cfg.estimate`` only; every prior is still drawn (the same random
    # numbers whatever is estimated), then the held parameters are set to the truth's values
    acfg = replace(cfg.assimilation, parameters=ParameterPerturbation(cfg.priors))
    da = EnsembleAssimilator(acfg, cover, lat, lon)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    lat_t, lon_t = torch.from_numpy(lat), torch.from_numpy(lon)
    ens_params, truth_params = parameters(cfg, lat_t, lon_t, cover, da.generator, gen)
    ident = Identifiability(cfg.priors, cover)
    clock = StepClock(0, np.datetime64(cfg.start, "s"), float(cfg.timestep))
    truth_static = LandStatic(lat_t, lon_t, cover, truth_params)
    static = LandStatic(lat_t, lon_t, cover, torch.cat([ens_params, ens_params]))
    truth_state = truth_backend.initial_state(truth_static, clock)
    state = backend.initial_state(static, clock)
    # initial LAI uncertainty: members' leaf carbon scaled by a lognormal factor (sd 20 %)
    scale = torch.exp(0.2 * torch.randn(n, cover.shape[0], 1, dtype=torch.float64, generator=gen))
    cleaf = state.tensors["cleaf"].clone()
    cleaf[free] = cleaf[free] * scale
    cleaf[assim] = cleaf[assim] * scale
    state = LandState({**state.tensors, "cleaf": cleaf})

    truth_buf, free_buf = ObservationBuffer(), ObservationBuffer()
    towers = np.arange(cfg.cells)[:: max(1, cfg.cells // max(cfg.towers, 1))][: cfg.towers]
    overpass = ((cfg.overpass_hour - lon / 15.0) * 3600.0).astype(np.int64)  # s after 00 UTC
    obs_rng = torch.Generator().manual_seed(cfg.seed + 11)
    stats = Stats()
    series: dict[str, list[np.ndarray]] = {
        k: [] for k in ("lai_truth", "lai_free", "lai_free_sd", "lai_da", "lai_da_sd")
    }
    lai_obs: list[tuple[int, int, float, float]] = []  # (day index, cell, value, sd)
    ranks: list[int] = []
    steps_per_day = SECONDS_PER_DAY // cfg.timestep
    day0 = int(clock.time.astype("datetime64[D]").astype(np.int64))
    n_analyses = 0
    for k in range(cfg.days * steps_per_day):
        f = {name: v[k] for name, v in forcing.items()}
        pert = da.perturb({name: v.expand(n, -1) for name, v in f.items()}, clock, n)
        batch = {name: torch.cat([pert[name], pert[name]]) for name in FORCING}
        truth_state, truth_out = truth_backend.step(
            truth_state, truth_static, {name: f[name][None, :] for name in FORCING}, clock
        )
        state, out = backend.step(state, static, batch, clock)
        truth_buf.record(truth_out, clock.time, clock.dt)
        free_buf.record({v: x[free] for v, x in out.items()}, clock.time, clock.dt)
        da.record({v: x[assim] for v, x in out.items()}, clock)
        clock = clock.advance()
        if (k + 1) % steps_per_day:
            continue
        d = (k + 1) // steps_per_day - 1  # the day that just ended
        day = day0 + d
        t_over = day * SECONDS_PER_DAY + overpass
        obs = _observations(cfg, truth_buf, day, d, t_over, towers, obs_rng)
        if d >= cfg.spinup_days:
            collect(stats, truth_buf, free_buf, da.buffer, day, t_over)
        series_day(series, truth_buf, free_buf, da.buffer, day)
        lai_sets = [o for o in obs if o.variable and o.variable[0] == "lai"]
        for o in lai_sets:
            hE = da.buffer.observed(o)
            noisy = hE + torch.from_numpy(o.error_sd) * torch.randn(
                hE.shape, dtype=torch.float64, generator=obs_rng
            )
            ranks += (noisy < torch.from_numpy(o.value)).sum(0).tolist()
            lai_obs += [
                (d, int(c), float(v), float(s))
                for c, v, s in zip(o.cell, o.value, o.error_sd, strict=True)
            ]
        ident.add(obs, free_buf, static.params[free], "free")
        ident.add(obs, da.buffer, static.params[assim], "da")
        assimilated = [o for o in obs if _type(o) in cfg.observe]
        if assimilated:
            da.submit(assimilated)
        sd = cfg.assimilation.leaf_carbon_sd
        if sd > 0:  # the same model-error draw for a free member and its assimilating twin
            factor = perturb_leaf_carbon(torch.ones(n, cfg.cells, 1), sd, da.generator)
            cleaf = state.tensors["cleaf"].clone()
            cleaf[free] *= factor
            cleaf[assim] *= factor
            state = LandState({**state.tensors, "cleaf": cleaf})
        sub = _slice(state, assim)
        sub_static = LandStatic(lat_t, lon_t, cover, static.params[assim])
        sub, sub_static, diag = da.analyse(sub, sub_static)
        n_analyses += diag is not None
        state = _cat(_slice(state, free), sub)
        static = LandStatic(
            lat_t, lon_t, cover, torch.cat([static.params[free], sub_static.params])
        )
        if progress and d % 30 == 29:
            print(f"day {d + 1}/{cfg.days}: {time.perf_counter() - t_start:.0f} s", flush=True)
    return result(
        cfg.priors,
        cfg,
        stats,
        series,
        lai_obs,
        ranks,
        da,
        LandStatic(lat_t, lon_t, cover, torch.cat([truth_params, static.params])),
        towers,
        n_analyses,
        time.perf_counter() - t_start,
        ident,
    )


def _type(obs: ObservationSet) -> str:
    """The observation type (``OBSERVATION_TYPES``) of a twin observation set."""
    return {"lai": "lai", "hfls": "flux", "hfss": "flux", "ts": "lst"}[obs.variable[0]]


def _noisy(value: torch.Tensor, sd: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return value + sd * torch.randn(value.shape, dtype=torch.float64, generator=gen)


def _observations(
    cfg: TwinConfig,
    truth: ObservationBuffer,
    day: int,
    d: int,
    t_over: np.ndarray,
    towers: np.ndarray,
    gen: torch.Generator,
) -> list[ObservationSet]:
    """The synthetic observations completed on UTC day ``day`` (day ``d`` of the run)."""
    from coupler.assimilation.operators import WINDOWS

    out: list[ObservationSet] = []
    cells = np.arange(t_over.shape[0])
    ts = torch.stack(
        [truth.instant("ts", int(t))[0, c] for c, t in zip(cells, t_over, strict=True)]
    )
    sd = torch.full_like(ts, cfg.lst_error)
    out.append(
        ObservationSet(
            ("ts",) * cells.size,
            cells,
            t_over.astype("datetime64[s]"),
            _noisy(ts, sd, gen).numpy(),
            sd.numpy(),
        )
    )
    if towers.size:
        for var in ("hfls", "hfss"):
            true = truth.daily_mean(var, day)[0, towers]
            sd = cfg.flux_error[0] + cfg.flux_error[1] * true.abs()
            times = np.full(towers.size, day * SECONDS_PER_DAY).astype("datetime64[s]")
            out.append(
                ObservationSet(
                    (var,) * towers.size, towers, times, _noisy(true, sd, gen).numpy(), sd.numpy()
                )
            )
    n_days = WINDOWS["lai"] // SECONDS_PER_DAY
    start = day - n_days + 1
    if (d + 1) % n_days == 0:
        true = torch.stack([truth.daily_mean("lai", x)[0] for x in range(start, day + 1)]).mean(0)
        sd = cfg.lai_error[0] + cfg.lai_error[1] * true
        value = _noisy(true, sd, gen).clamp_min(0.0)
        times = np.full(cells.size, start * SECONDS_PER_DAY).astype("datetime64[s]")
        out.append(ObservationSet(("lai",) * cells.size, cells, times, value.numpy(), sd.numpy()))
    return out
