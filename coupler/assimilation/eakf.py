"""Serial ensemble adjustment Kalman filter, as in DART (Anderson 2001, MWR 129:2884-2903;
Anderson 2003, MWR 131:634-642).

Observations are assimilated one scalar at a time. For observation j with observed ensemble
``d = hE[:, j]`` (prior mean ȳ, variance σ_p²) and error variance R, the observed ensemble is
adjusted deterministically in observation space::

    σ_a² = (1/σ_p² + 1/R)⁻¹,   ȳ_a = σ_a² (ȳ/σ_p² + y/R),
    d_a = ȳ_a + sqrt(σ_a²/σ_p²) (d - ȳ),          Δd = d_a - d,

and the increments are regressed onto every state column x_m (and onto the observed ensembles
of the observations still to come, as DART does with the joint state–observation vector)::

    Δx_m = ρ_jm · cov(x_m, d) / σ_p² · Δd,

where ρ_jm is the localisation factor. With a linear forward operator and no localisation this
reproduces the Kalman filter update of the ensemble mean and sample covariance exactly.
"""

from __future__ import annotations

import torch

from coupler.assimilation.localization import Localization


def obs_increments(d: torch.Tensor, y: float, R: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """EAKF observation-space increments for one observation. Returns (Δd (N,), anomalies of
    ``d`` (N,), prior variance σ_p²), in the observation's unit (σ_p² squared)."""
    n = d.shape[0]
    dbar = float(d.mean())
    a = d - dbar
    var = float(a.dot(a)) / (n - 1)
    post_var = 1.0 / (1.0 / var + 1.0 / R)
    post_mean = post_var * (dbar / var + y / R)
    return a * ((post_var / var) ** 0.5 - 1.0) + (post_mean - dbar), a, var


def serial_eakf(
    E: torch.Tensor,
    HE: torch.Tensor,
    y: torch.Tensor,
    R: torch.Tensor,
    used: torch.Tensor,
    localization: Localization | None = None,
) -> torch.Tensor:
    """Analysis ensemble (N, M) from the prior ensemble ``E`` (N, M), its observed ensemble
    ``HE`` (N, P), observations ``y`` (P,), error variances ``R`` (P,) and the mask ``used``
    (P,) of the observations to assimilate (others are ignored, whatever ``HE`` holds)."""
    n, m = E.shape
    # Joint state-observation ensemble; unused observations' columns are zeroed, never read.
    Z = torch.cat([E, torch.where(used[None, :], HE, torch.zeros_like(HE))], dim=1)
    scale = 1.0 / (n - 1)
    for j in used.nonzero().flatten().tolist():
        dy, a, var = obs_increments(Z[:, m + j], float(y[j]), float(R[j]))
        if localization is None:
            b = torch.mv(Z.T, a)  # a sums to zero, so this is (N-1) cov(Z, d)
            b *= scale / var
            Z.addr_(dy, b)
        else:
            idx, w = localization.row(j)
            b = torch.mv(Z[:, idx].T, a)
            b *= w * (scale / var)
            Z.index_add_(1, idx, torch.outer(dy, b))
    return Z[:, :m].contiguous()
