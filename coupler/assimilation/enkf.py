"""Stochastic (perturbed-observation) ensemble Kalman filter: Burgers, van Leeuwen & Evensen
(1998, MWR 126:1719-1724); Evensen (2003).

Each member is updated with its own perturbed observation ``D_i = y + ε_i``, ``ε_i ~ N(0, R)``::

    K = P Hᵀ (H P Hᵀ + R)⁻¹,   P Hᵀ = Aᵀ Y / (N-1),   H P Hᵀ = Yᵀ Y / (N-1),
    E_a = E + (K (D - hE)ᵀ)ᵀ,

with ``A = E - x̄`` and ``Y = hE - ȳ``. Covariance localisation (Houtekamer & Mitchell 2001)
multiplies P Hᵀ and H P Hᵀ elementwise by the Gaspari–Cohn factors.
"""

from __future__ import annotations

import torch

from coupler.assimilation.localization import Localization


def perturbations(
    n: int, R: torch.Tensor, generator: torch.Generator, center: bool = True
) -> torch.Tensor:
    """Observation perturbations ε (N, P) with variance R, from ``generator``; with ``center``
    their ensemble mean is removed (as DAPPER's ``PertObs``)."""
    eps = torch.randn(n, R.shape[0], dtype=torch.float64, generator=generator) * R.sqrt()
    return eps - eps.mean(dim=0, keepdim=True) if center else eps


def perturbed_obs_enkf(
    E: torch.Tensor,
    HE: torch.Tensor,
    y: torch.Tensor,
    R: torch.Tensor,
    generator: torch.Generator,
    localization: Localization | None = None,
    center: bool = True,
) -> torch.Tensor:
    """Analysis ensemble (N, M) from ``E`` (N, M), the observed ensemble ``HE`` (N, P) of the
    observations to use, ``y`` (P,), error variances ``R`` (P,)."""
    n = E.shape[0]
    A = E - E.mean(dim=0, keepdim=True)
    Y = HE - HE.mean(dim=0, keepdim=True)
    PHt = A.T @ Y / (n - 1)
    HPHt = Y.T @ Y / (n - 1)
    if localization is not None:
        rho_state, rho_obs = localization.dense()
        PHt = PHt * rho_state.T
        HPHt = HPHt * rho_obs
    D = y[None, :] + perturbations(n, R, generator, center)
    X = torch.linalg.solve(HPHt + torch.diag(R), (D - HE).T)  # (P, N)
    return E + (PHt @ X).T
