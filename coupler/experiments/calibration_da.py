"""The ensemble filter's state-augmentation estimate on the MdPL calibration twin
(``emulators.calibration``, docs/calibration.md): the comparison issue 16 asks for beside g_z and
the per-site direct optimisation.

One assimilating session on the reference backend, opened and driven through the client API
(``InProcessClient`` by default; any ``coupler.client`` client works): one cell per twin site,
covered by the site's class, stepped daily with the site's own station forcing over the twin's
spin-up and year. The cells keep their sites' latitudes (the reference model uses latitude only
for the hemisphere's spring) and get longitudes 14° apart, so that no two cells are within the
localisation's reach (2 × ``half_width_km``) or ``match_km`` of each other: each site's
parameters are estimated from its own observations only, as the direct optimisation's are.

- Estimated parameters: ``FilterConfig.parameters`` (all 12 by default); ``landcoupler
  calibrate`` estimates those the daily fluxes are sensitive to (:func:`screen`: the
  emulator's RMS change of daily LE and H when the parameter moves by 10 % of its range from
  the class default is ≥ ``SENSITIVE_WM2`` = 1 W m-2; below that a parameter's signal is near
  the 5 W m-2 noise over a year, docs/calibration.md), the others staying at the class
  defaults: fewer estimated columns mean fewer spurious sampled correlations with the
  observations for a given ensemble size.
- Ensemble: ``members`` members whose estimated parameters are drawn uniformly over the
  published ranges (``emulators.landcover``; linear, as the calibration measures errors as a
  fraction of the range), the others at the class defaults (or ``base``). No forcing
  perturbation and no initial leaf-carbon spread: the twin's forcing is exact for every
  method, so the ensemble's spread is the parameters' alone.
- Observations: after every step of the year, the twin's noisy daily LE (``hfls``) and H
  (``hfss``) of that day at every cell, error sd the twin's noise, queued with
  ``Session.assimilate_batches`` and analysed at the start of the next step (serial EAKF;
  impact LE/H → soil water, temperatures and parameters).
- Inflation: none by default. The twin is a perfect-model problem for static parameters (exact
  forcing, the truth's model, no model error): without inflation the ensemble is the
  filter's posterior given the observations so far, whose spread shrinks as it learns.
  ``inflation="adaptive"`` gives the session default (Anderson 2009, sd 0.6, λ ≤ 3; the land
  twin's setting, which compensates forcing and model error): with nothing to compensate here
  it keeps the parameter spread at or above the prior's and the estimate wanders
  (docs/calibration.md, measured).
- Estimate: the session is checkpointed (``Session.checkpoint``) every ``sample_days`` days of
  the year and the member parameters read back (``coupler.client.checkpoints``): the
  trajectory of the ensemble mean and spread. The estimate is the last ensemble mean (the
  posterior mean given the whole year) or, with ``average_days`` > 0, the time mean of the
  ensemble mean over the samples of the last ``average_days`` days (the remedy when inflation
  keeps the estimate wandering).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from coupler.client import Client, ObservationBatch
from coupler.client.checkpoints import session_parameters
from emulators import io
from emulators import parameters as P
from emulators.calibration.experiment import parameter_map, sensitivity
from emulators.calibration.sites import TIMESTEP, Sites

#: longitude spacing of the sites' cells [degrees] (≥ 880 km at 55.3° N, the highest station)
LON_STEP = 14.0
#: the smallest observation error sd the filter is given [W m-2] (a twin without noise)
MIN_ERROR = 0.5
OBSERVED = ("hfls", "hfss")
#: the screening threshold of :func:`screen` [W m-2 per 10 % of the range]
SENSITIVE_WM2 = 1.0
#: inflation -> the session options it sets ("adaptive": the session defaults)
INFLATION: dict[str, dict[str, Any]] = {"none": {"inflation": "none"}, "adaptive": {}}


@dataclass(frozen=True)
class FilterConfig:
    """Settings of the filter's estimate (module docstring)."""

    members: int = 30
    parameters: tuple[str, ...] = P.PARAMETER_NAMES
    inflation: str = "none"
    sample_days: int = 5
    average_days: int = 0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.members <= 1000:
            raise ValueError(f"members: must be in 2..1000, got {self.members}")
        unknown = [p for p in self.parameters if p not in P.PARAMETER_NAMES]
        if not self.parameters or unknown:
            raise ValueError(f"parameters: {unknown or 'none'} (known: {P.PARAMETER_NAMES})")
        if self.inflation not in INFLATION:
            raise ValueError(f"inflation: {self.inflation!r} is not one of {', '.join(INFLATION)}")
        if self.sample_days < 1 or self.average_days < 0:
            raise ValueError("sample_days: must be >= 1; average_days: must be >= 0")


@dataclass
class FilterResult:
    """Per site (site, 12) parameters: ``estimate`` (the last ensemble mean, or its time mean
    over the last ``average_days``), ``final`` (the last ensemble mean), ``prior_mean``;
    ``trajectory``
    (sample, site, 12) ensemble means and ``spread`` (sample, site, 12) ensemble standard
    deviations at the sampled days ``days`` (days of the year completed)."""

    estimate: np.ndarray
    final: np.ndarray
    prior_mean: np.ndarray
    trajectory: np.ndarray
    spread: np.ndarray
    days: np.ndarray
    observations: int
    session_id: str
    seconds: float


def options(cfg: FilterConfig) -> dict[str, Any]:
    """The session's ``assimilation`` options (module docstring)."""
    return {
        "parameters": [
            {"name": s.name, "low": s.low, "high": s.high, "log": False}
            for s in P.PARAMETERS
            if s.name in cfg.parameters
        ],
        "estimate_parameters": True,
        "perturbation": {"pr": 0.0, "rsds": 0.0, "tas": 0.0, "huss": 0.0},
        "initial_leaf_carbon_sd": 0.0,
        "seed": cfg.seed,
        **INFLATION[cfg.inflation],
    }


def screen(sites: Sites) -> tuple[tuple[str, ...], np.ndarray]:
    """The parameters to estimate (module docstring; at least the most sensitive one) and the
    (12,) sensitivities [W m-2] they were screened by (``experiment.sensitivity``: the frozen
    emulator from the class defaults; the hidden parameters play no part)."""
    sens = sensitivity(sites)
    names = tuple(n for n, v in zip(P.PARAMETER_NAMES, sens, strict=True) if v >= SENSITIVE_WM2)
    return names or (P.PARAMETER_NAMES[int(np.argmax(sens))],), sens


def cell_lonlat(sites: Sites) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) of the sites' cells: the sites' latitudes, longitudes ``LON_STEP`` apart."""
    lon = -180.0 + LON_STEP * (0.5 + np.arange(sites.n))
    if sites.n * LON_STEP > 360.0:
        raise ValueError(f"sites: at most {int(360 // LON_STEP)} sites, got {sites.n}")
    return sites.lat.astype(np.float64), lon


def run_filter(
    sites: Sites,
    cfg: FilterConfig,
    noise_wm2: float,
    client: Client | None = None,
    workdir: Path | None = None,
    base: np.ndarray | None = None,
) -> FilterResult:
    """Run the assimilating session (module docstring) and return its parameter estimate.
    ``workdir``: where the checkpoints (and the ``base`` map) go (a temporary directory by
    default). ``base``: (site, 12) values of the parameters that are not estimated, given to
    the session as a parameter map (``parameters_url``; default: the class defaults) — e.g.
    the hidden ones, to ask whether a parameter is identifiable when the rest are right."""
    from coupler.client import InProcessClient

    t0 = time.perf_counter()
    lat, lon = cell_lonlat(sites)
    err = np.full(sites.n, max(float(noise_wm2), MIN_ERROR))
    rows, cols = np.arange(sites.n), sites.tile
    steps, year0 = len(sites.time), sites.spinup
    # days of the year analysed when sampled: the observations of day d are analysed at the
    # start of step year0 + d + 1, so the last day's observations are never analysed
    last = steps - year0 - 1
    if last < 1:
        raise ValueError("sites: the year needs at least 2 days")
    days = sorted({*range(cfg.sample_days, last + 1, cfg.sample_days), last})
    means, spreads = [], []
    sent = 0
    ctx: Any = nullcontext(client) if client is not None else InProcessClient()
    tmp: Any = nullcontext(workdir) if workdir is not None else tempfile.TemporaryDirectory()
    with ctx as c, tmp as wd:
        url = None
        if base is not None:
            url = str(Path(wd) / "base.zarr")
            cells = dataclasses.replace(sites, lat=lat, lon=lon)
            io.write_zarr(parameter_map(cells, base, "filter base"), url)
        session = c.open_session(
            lat=lat, lon=lon, start=str(sites.time[0]), timestep=int(TIMESTEP),
            outputs=list(OBSERVED), land_cover=np.eye(P.N_CLASSES)[sites.tile],
            backend="reference", members=cfg.members, assimilation=options(cfg),
            parameters_url=url,
        )  # fmt: skip
        session_id = session.id

        def sample(tag: str) -> np.ndarray:
            url = session.checkpoint(str(Path(wd) / f"{session_id}-{tag}.ckpt"))
            p = session_parameters(url)[:, rows, cols]  # (member, site, 12)
            Path(url).unlink()
            return p

        prior = sample("prior").mean(0)
        for k in tqdm(range(steps), desc="filter", unit="day", disable=not cfg.progress):
            session.step(k, {name: v[k] for name, v in sites.forcing.items()})
            if k - year0 in days:
                p = sample(str(k - year0))
                means.append(p.mean(0))
                spreads.append(p.std(0))
            if k >= year0 and k < steps - 1:
                t = f"{sites.time[k]}Z"
                batches = [
                    ObservationBatch(v, sites.obs[v][k - year0], err, lat, lon, [t] * sites.n)
                    for v in OBSERVED
                ]
                sent += session.assimilate_batches(batches)
        session.close()
    trajectory, spread, at = np.stack(means), np.stack(spreads), np.array(days)
    window = at > at[-1] - cfg.average_days
    return FilterResult(
        estimate=trajectory[window].mean(0) if cfg.average_days else trajectory[-1],
        final=trajectory[-1],
        prior_mean=prior,
        trajectory=trajectory,
        spread=spread,
        days=at,
        observations=sent,
        session_id=session_id,
        seconds=time.perf_counter() - t0,
    )


def summary(sites: Sites, result: FilterResult, cfg: FilterConfig) -> dict[str, Any]:
    """What the calibration report keeps of the filter's run (``report["filter"]``): settings,
    counts, time, and per parameter the mean |error| (fraction of the range) of the prior
    mean, the final ensemble mean and the estimate, the end spread and the error trajectory."""
    low, high = (t.numpy() for t in P.bounds())
    width = high - low

    def error(p: np.ndarray) -> np.ndarray:
        return np.abs((p - sites.hidden) / width).mean(-2)  # mean over sites

    traj = error(result.trajectory)  # (sample, 12)
    return {
        "method": "ensemble filter, state augmentation (one reference-backend session through "
        "the client API, serial EAKF)",
        "members": cfg.members,
        "estimated": list(cfg.parameters),
        "inflation": cfg.inflation,
        "seed": cfg.seed,
        "sample_days": cfg.sample_days,
        "average_days": cfg.average_days,
        "observations": result.observations,
        "session_id": result.session_id,
        "seconds": result.seconds,
        "days": result.days.tolist(),
        "parameters": [
            {
                "parameter": name,
                "estimated": name in cfg.parameters,
                "error_prior_mean": float(error(result.prior_mean)[i]),
                "error_final": float(error(result.final)[i]),
                "error_estimate": float(error(result.estimate)[i]),
                "spread_end": float((result.spread[-1, :, i] / width[i]).mean()),
                "error_trajectory": traj[:, i].round(5).tolist(),
            }
            for i, name in enumerate(P.PARAMETER_NAMES)
        ],
    }
