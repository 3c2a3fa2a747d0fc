"""Adaptive multiplicative prior inflation: Anderson (2009), "Spatially and temporally varying
adaptive covariance inflation for ensemble filters", Tellus A 61:72-83.

Each state column m carries a variance inflation λ_m with a Gaussian prior N(λ̄_m, σ_λ²). An
observation with prior ensemble mean ȳ, prior variance σ_p² and error variance R gives the
squared innovation D² = (y - ȳ)². If column m is inflated by λ, the observed prior is inflated
by λ_o = (1 + γ (√λ - 1))², with γ = ρ |r| (ρ: localisation factor, r: prior correlation of the
column with the observed ensemble), so D ~ N(0, θ²) with θ² = λ_o σ_p² + R. The posterior mode
of λ uses the likelihood linearised about λ̄ (Anderson 2009, appendix; DART's
``adaptive_inflate_mod``), which leads to a quadratic whose root closest to λ̄ is

    λ = λ̄ + 2 σ_λ² g / (1 + sqrt(1 + 4 σ_λ² g²)),   g = d ln p(D | λ) / dλ at λ̄,

written in this form so it neither overflows nor divides by a vanishing likelihood. σ_λ is kept
fixed (Anderson 2009's fixed-variance option). Observations are taken one at a time, each
updating λ for the columns it localises to, using the prior (uninflated) ensemble.
"""

from __future__ import annotations

import torch

from coupler.assimilation.config import InflationConfig
from coupler.assimilation.localization import Localization


def likelihood_slope(
    lam: torch.Tensor, gamma: torch.Tensor, sigma_p2: float, R: float, D2: float
) -> torch.Tensor:
    """g = d ln p(D | λ) / dλ at ``lam`` (per column), for ``gamma`` = ρ |r| per column,
    observed prior variance ``sigma_p2``, error variance ``R`` and squared innovation ``D2``
    (all in the squared unit of the observation; the result is per unit of λ)."""
    s = lam.sqrt()
    f = 1.0 + gamma * (s - 1.0)
    theta2 = f * f * sigma_p2 + R
    dtheta2 = f * gamma * sigma_p2 / s  # d θ² / d λ
    return 0.5 * dtheta2 * (D2 / theta2 - 1.0) / theta2


def damp(lam: torch.Tensor, cfg: InflationConfig) -> torch.Tensor:
    """Relax λ towards 1 between cycles: ``1 + damping (λ - 1)``."""
    return 1.0 + cfg.damping * (lam - 1.0)


def update(
    lam: torch.Tensor,
    E: torch.Tensor,
    HE: torch.Tensor,
    y: torch.Tensor,
    R: torch.Tensor,
    used: torch.Tensor,
    cfg: InflationConfig,
    localization: Localization | None = None,
) -> torch.Tensor:
    """Anderson (2009) update of the variance inflation ``lam`` (M,) from the prior ensemble
    ``E`` (N, M), its observed ensemble ``HE`` (N, P), observations ``y`` (P,) with error
    variances ``R`` (P,), for the observations flagged in ``used`` (P,). Returns a new tensor
    clipped to [cfg.lower, cfg.upper]."""
    n, m = E.shape
    lam = lam.clone()
    A = E - E.mean(dim=0, keepdim=True)
    sd_x = (A * A).sum(dim=0).div(n - 1).sqrt()
    sigma2 = cfg.sd**2
    for j in used.nonzero().flatten().tolist():
        d = HE[:, j]
        a = d - d.mean()
        var = float(a.dot(a)) / (n - 1)
        D2 = (float(y[j]) - float(d.mean())) ** 2
        if localization is None:
            cols = None
            Ac, sdc, rho = A, sd_x, torch.ones(m, dtype=E.dtype)
        else:
            idx, w = localization.row(j)
            keep = idx < m
            cols, rho = idx[keep], w[keep]
            Ac, sdc = A[:, cols], sd_x[cols]
        cov = (Ac.T @ a) / (n - 1)
        denom = sdc * var**0.5
        r = torch.where(denom > 0, cov / torch.where(denom > 0, denom, 1.0), 0.0)
        gamma = rho * r.abs().clamp(max=1.0)
        lbar = lam if cols is None else lam[cols]
        g = likelihood_slope(lbar, gamma, var, float(R[j]), D2)
        new = lbar + 2.0 * sigma2 * g / (1.0 + (1.0 + 4.0 * sigma2 * g * g).sqrt())
        new = new.clamp(cfg.lower, cfg.upper)
        if cols is None:
            lam = new
        else:
            lam[cols] = new
    return lam
