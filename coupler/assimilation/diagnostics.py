"""Diagnostics of one analysis: innovations, spread, observation counts, errors against a truth
when one is known."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from coupler.assimilation import ensemble as ens
from coupler.assimilation.qc import Reject, Screening


@dataclass(frozen=True)
class Diagnostics:
    """Statistics of one analysis. Innovations ``y - mean(hE)`` are taken over the used
    observations with the (inflated) prior, in the observations' units (NaN when none is used).
    Spreads are sqrt of the mean unbiased ensemble variance over state columns (state units).
    ``n_clipped`` counts analysis values moved onto a bound. ``rmse_*`` are over state columns
    against the truth, when given."""

    n_obs: int
    n_used: int
    n_rejected: int
    rejected: dict[str, int]
    innovation_mean: float
    innovation_rms: float
    obs_prior_spread: float
    prior_spread: float
    posterior_spread: float
    inflation_mean: float
    n_clipped: int = 0
    rmse_prior: float | None = None
    rmse_posterior: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    #: per observation type: n_obs, n_used, rejected_<reason>, innovation_mean/_rms,
    #: obs_prior_spread (NaN when none of that type is used)
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {k: clean(v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Diagnostics:
        """Inverse of :meth:`to_dict` (None becomes NaN again where a float is expected)."""
        nan = math.nan
        floats = ("innovation_mean", "innovation_rms", "obs_prior_spread", "prior_spread",
                  "posterior_spread", "inflation_mean")  # fmt: skip
        out = dict(d)
        for k in floats:
            out[k] = nan if out.get(k) is None else float(out[k])
        out["extra"] = {k: nan if v is None else v for k, v in out.get("extra", {}).items()}
        out["by_type"] = {
            t: {k: nan if v is None else v for k, v in s.items()}
            for t, s in out.get("by_type", {}).items()
        }
        return Diagnostics(**out)


def diagnose(
    prior: torch.Tensor,
    posterior: torch.Tensor,
    HE: torch.Tensor,
    y: torch.Tensor,
    screening: Screening,
    inflation: torch.Tensor,
    n_clipped: int = 0,
    truth: torch.Tensor | None = None,
) -> Diagnostics:
    """Diagnostics from the (inflated) prior (N, M), the posterior (N, M), the prior observed
    ensemble ``HE`` (N, P), observations ``y`` (P,), the screening and the inflation in use."""
    used = screening.used
    n_used = int(used.sum())
    if n_used:
        hu = HE[:, used]
        innov = y[used] - hu.mean(dim=0)
        i_mean, i_rms = float(innov.mean()), float(innov.pow(2).mean().sqrt())
        o_spread = float(hu.var(dim=0, unbiased=True).mean().sqrt())
    else:
        i_mean = i_rms = o_spread = math.nan
    counts = screening.counts()
    return Diagnostics(
        n_obs=int(y.shape[0]),
        n_used=n_used,
        n_rejected=int(y.shape[0]) - n_used,
        rejected=counts,
        innovation_mean=i_mean,
        innovation_rms=i_rms,
        obs_prior_spread=o_spread,
        prior_spread=ens.spread(prior),
        posterior_spread=ens.spread(posterior),
        inflation_mean=float(inflation.mean()),
        n_clipped=n_clipped,
        rmse_prior=None if truth is None else ens.rmse(ens.mean(prior), truth),
        rmse_posterior=None if truth is None else ens.rmse(ens.mean(posterior), truth),
    )


def by_type(
    variable: tuple[str, ...],
    HE: torch.Tensor,
    y: torch.Tensor,
    reason: torch.Tensor,
    lam: torch.Tensor,
    posterior: torch.Tensor | None = None,
) -> dict[str, dict[str, float]]:
    """Per observation type: counts (used, rejected by reason), innovation mean and RMS of the
    used observations (observation units) and the prior observed-ensemble spread (sqrt of the
    mean inflated variance over the used observations). ``variable`` (P,) names, ``HE`` (N, P)
    prior observed ensemble, ``y`` (P,), ``reason`` (P,) :class:`Reject` codes, ``lam`` (P,)
    variance inflation. With ``posterior`` (N, P), the analysed observed ensemble (the joint
    state–observation update's observed columns), also the posterior statistics in observation
    space, as DART's obs_seq.final: ``posterior_innovation_mean``/``_rms`` (y − mean of the
    analysed observed ensemble) and ``obs_posterior_spread``."""
    out: dict[str, dict[str, float]] = {}
    variables = np.asarray(variable)
    for var in dict.fromkeys(variable):
        sel = torch.from_numpy(variables == var)
        r = reason[sel]
        stats: dict[str, float] = {"n_obs": float(int(sel.sum()))}
        for code in Reject:
            key = "n_used" if code is Reject.USED else f"rejected_{code.name.lower()}"
            stats[key] = float(int((r == int(code)).sum()))
        used = sel & (reason == int(Reject.USED))
        if bool(used.any()):
            innov = y[used] - HE[:, used].mean(dim=0)
            stats["innovation_mean"] = float(innov.mean())
            stats["innovation_rms"] = float(innov.pow(2).mean().sqrt())
            var_hE = HE[:, used].var(dim=0, unbiased=True) * lam[used]
            stats["obs_prior_spread"] = float(var_hE.mean().sqrt())
        else:
            stats.update(innovation_mean=math.nan, innovation_rms=math.nan)
            stats["obs_prior_spread"] = math.nan
        if posterior is not None:
            if bool(used.any()):
                post = y[used] - posterior[:, used].mean(dim=0)
                stats["posterior_innovation_mean"] = float(post.mean())
                stats["posterior_innovation_rms"] = float(post.pow(2).mean().sqrt())
                var_post = posterior[:, used].var(dim=0, unbiased=True)
                stats["obs_posterior_spread"] = float(var_post.mean().sqrt())
            else:
                stats.update(
                    posterior_innovation_mean=math.nan,
                    posterior_innovation_rms=math.nan,
                    obs_posterior_spread=math.nan,
                )
        out[var] = stats
    return out
