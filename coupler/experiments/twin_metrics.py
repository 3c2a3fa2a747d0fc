"""Statistics and the result dictionary of the twin experiment (``twin.py``): running sums
of squared errors, bias and ensemble variance per variable and ensemble, daily LAI series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from coupler.assimilation.online import EnsembleAssimilator
from coupler.assimilation.operators import ObservationBuffer, ObservationSet
from coupler.assimilation.settings import ParameterPrior
from coupler.experiments.twin_config import TwinConfig
from emulators.protocol import LandStatic


class Stats:
    """Running sums of squared errors and ensemble variances per variable and ensemble."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, float]] = {}
        self.series: dict[str, list[np.ndarray]] = {}

    def add(self, var: str, name: str, truth: torch.Tensor, ens: torch.Tensor) -> None:
        """``truth`` (cell,), ``ens`` (member, cell)."""
        d = self.sums.setdefault(
            f"{var}:{name}", {"se": 0.0, "bias": 0.0, "var": 0.0, "n": 0, "truth": 0.0}
        )
        mean = ens.mean(0)
        d["se"] += float(((mean - truth) ** 2).sum())
        d["bias"] += float((mean - truth).sum())
        d["var"] += float(ens.var(0, unbiased=True).sum())
        d["truth"] += float(truth.sum())
        d["n"] += int(truth.numel())

    def rmse(self, key: str) -> float:
        d = self.sums[key]
        return math.sqrt(d["se"] / d["n"])

    def summary(self, key: str) -> dict[str, float]:
        d = self.sums[key]
        return {
            "rmse": self.rmse(key),
            "bias": d["bias"] / d["n"],
            "rbias": d["bias"] / d["truth"] if d["truth"] else math.nan,
            "spread": math.sqrt(d["var"] / d["n"]),
        }


class Identifiability:
    """How much of an observed quantity's ensemble variance each estimated parameter explains:
    per observation, the squared correlation r² across members between the observed ensemble
    hE and the parameter (as log for log priors) of the cell's main class, averaged per
    (ensemble, parameter, observed variable). ``free``: the prior ensemble, never updated (the
    identifiability of the parameter); ``da``: the assimilating ensemble before each analysis
    (what the filter's regression sees)."""

    def __init__(self, priors: Sequence[ParameterPrior], cover: torch.Tensor) -> None:
        self.priors = tuple(priors)
        self.main = cover.argmax(-1)  # (cell,)
        self.sums: dict[str, list[float]] = {}

    def add(
        self,
        obs: Sequence[ObservationSet],
        buffer: ObservationBuffer,
        params: torch.Tensor,
        ensemble: str,
    ) -> None:
        """``params`` (member, cell, class, n_params) of the ensemble whose history is
        ``buffer``."""
        cells = torch.arange(self.main.shape[0])
        for o in obs:
            h = buffer.observed(o)  # (member, P)
            h = h - h.mean(0)
            for prior in self.priors:
                x = params[:, cells, self.main, prior.index]  # (member, cell)
                x = torch.log(x) if prior.log else x
                x = x[:, torch.from_numpy(np.asarray(o.cell, dtype=np.int64))]
                x = x - x.mean(0)
                den = (x.pow(2).sum(0) * h.pow(2).sum(0)).sqrt()
                ok = den > 0
                r2 = ((x * h).sum(0)[ok] / den[ok]).pow(2)
                acc = self.sums.setdefault(f"{ensemble}:{prior.name}:{o.variable[0]}", [0.0, 0])
                acc[0] += float(r2.sum())
                acc[1] += int(ok.sum())

    def summary(self) -> dict[str, float]:
        """Mean r² per ``ensemble:parameter:variable``."""
        return {k: s / n for k, (s, n) in sorted(self.sums.items()) if n}


def collect(
    stats: Stats,
    truth: ObservationBuffer,
    free: ObservationBuffer,
    da: ObservationBuffer,
    day: int,
    t_over: np.ndarray,
) -> None:
    for var in ("lai", "hfls", "hfss"):
        t = truth.daily_mean(var, day)[0]
        stats.add(var, "free", t, free.daily_mean(var, day))
        stats.add(var, "da", t, da.daily_mean(var, day))
    cells = range(t_over.shape[0])
    for name, buf in (("free", free), ("da", da)):
        ens = torch.stack(
            [buf.instant("ts", int(t))[:, c] for c, t in zip(cells, t_over, strict=True)], 1
        )
        tru = torch.stack(
            [truth.instant("ts", int(t))[0, c] for c, t in zip(cells, t_over, strict=True)]
        )
        stats.add("ts", name, tru, ens)


def series_day(
    series: dict[str, list[np.ndarray]],
    truth: ObservationBuffer,
    free: ObservationBuffer,
    da: ObservationBuffer,
    day: int,
) -> None:
    series["lai_truth"].append(truth.daily_mean("lai", day)[0].numpy())
    for name, buf in (("free", free), ("da", da)):
        x = buf.daily_mean("lai", day)
        series[f"lai_{name}"].append(x.mean(0).numpy())
        series[f"lai_{name}_sd"].append(x.std(0).numpy())


def result(
    priors: Sequence[ParameterPrior],
    cfg: TwinConfig,
    stats: Stats,
    series: dict[str, list[np.ndarray]],
    lai_obs: list[tuple[int, int, float, float]],
    ranks: list[int],
    da: EnsembleAssimilator,
    static: LandStatic,
    towers: np.ndarray,
    n_analyses: int,
    seconds: float,
    ident: Identifiability | None = None,
) -> dict[str, Any]:
    n = cfg.members
    table = {
        f"{v}_{e}": stats.summary(f"{v}:{e}")
        for v in ("lai", "hfls", "hfss", "ts")
        for e in ("free", "da")
    }
    params = {}
    for prior in priors:
        i = prior.index
        veg = static.cover > 0
        true = static.params[0, ..., i][veg]
        for name, sl in (("free", slice(1, 1 + n)), ("da", slice(1 + n, 1 + 2 * n))):
            est = static.params[sl, ..., i].mean(0)[veg]
            err = (torch.log(est / true) if prior.log else est - true).pow(2).mean().sqrt()
            params[f"{prior.name}_{name}"] = float(err)
            x = static.params[sl, ..., i]
            x = torch.log(x) if prior.log else x
            params[f"{prior.name}_{name}_spread"] = float(x.var(0)[veg].mean().sqrt())
    diag = da.history
    used = sum(x.n_used for x in diag)
    rejected = sum(x.n_rejected for x in diag)
    return {
        "experiment": "twin",
        "settings": {
            "members": n,
            "cells": cfg.cells,
            "days": cfg.days,
            "spinup_days": cfg.spinup_days,
            "start": cfg.start,
            "timestep_s": cfg.timestep,
            "towers": towers.tolist(),
            "filter": cfg.assimilation.filter.kind.value,
            "inflation": cfg.assimilation.filter.inflation.kind.value,
            "half_width_km": cfg.assimilation.half_width_km,
            "estimated_parameters": [p.name for p in priors]
            if cfg.assimilation.estimate_parameters
            else [],
            "observed": list(cfg.observe),
            "errors": {
                "lai_sd": f"{cfg.lai_error[0]} + {cfg.lai_error[1]}*LAI",
                "flux_sd_W_m-2": f"{cfg.flux_error[0]} + {cfg.flux_error[1]}*|flux|",
                "lst_sd_K": cfg.lst_error,
            },
            "seed": cfg.seed,
            "backend": cfg.backend,
            "truth_backend": cfg.truth_backend,
        },
        "lai_rmsd_free": table["lai_free"]["rmse"],
        "lai_rmsd_analysis": table["lai_da"]["rmse"],
        "lai_rmsd_ratio": table["lai_da"]["rmse"] / table["lai_free"]["rmse"],
        "spread_rmse_ratio": table["lai_da"]["spread"] / table["lai_da"]["rmse"],
        "hfls_rmse_free": table["hfls_free"]["rmse"],
        "hfls_rmse_analysis": table["hfls_da"]["rmse"],
        "hfss_rmse_free": table["hfss_free"]["rmse"],
        "hfss_rmse_analysis": table["hfss_da"]["rmse"],
        "ts_rmse_free": table["ts_free"]["rmse"],
        "ts_rmse_analysis": table["ts_da"]["rmse"],
        "table": table,
        "parameter_rmse": params,
        "identifiability_r2": ident.summary() if ident is not None else {},
        "analyses": n_analyses,
        "observations_used": used,
        "observations_rejected": rejected,
        "lai_rank_histogram": np.bincount(
            np.asarray(ranks, dtype=np.int64), minlength=n + 1
        ).tolist(),
        "mean_inflation": float(np.mean([x.inflation_mean for x in diag])) if diag else 1.0,
        "seconds": seconds,
        "series": {k: np.stack(v).tolist() for k, v in series.items()},
        "lai_obs": lai_obs,
    }
