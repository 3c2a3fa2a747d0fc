"""Ensemble statistics on (member, state) float64 tensors, in the notation of DAPPER/Hunt et al.
(2007): ``E`` (N, M) ensemble, ``x̄`` its mean, ``A = E - x̄`` the anomalies."""

from __future__ import annotations

import torch


def mean(E: torch.Tensor) -> torch.Tensor:
    """Ensemble mean x̄ (M,)."""
    return E.mean(dim=0)


def anomalies(E: torch.Tensor) -> torch.Tensor:
    """Anomalies A = E - x̄ (N, M)."""
    return E - E.mean(dim=0, keepdim=True)


def variance(E: torch.Tensor) -> torch.Tensor:
    """Unbiased ensemble variance per column (M,), in the squared unit of the column."""
    return E.var(dim=0, unbiased=True)


def spread(E: torch.Tensor) -> float:
    """Ensemble spread: sqrt of the mean over columns of the unbiased ensemble variance (same
    unit as E), as DAPPER's ``spread``."""
    return float(variance(E).mean().sqrt())


def rmse(x: torch.Tensor, truth: torch.Tensor) -> float:
    """Root-mean-square error over columns of a state ``x`` (M,) against ``truth`` (M,)."""
    return float(((x - truth) ** 2).mean().sqrt())


def inflate(E: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Multiplicative inflation with *variance* factor ``lam`` (scalar or (M,)): anomalies are
    multiplied by ``sqrt(lam)``, the mean is kept."""
    xbar = E.mean(dim=0, keepdim=True)
    factor = torch.as_tensor(lam, dtype=E.dtype, device=E.device).sqrt()
    return xbar + (E - xbar) * factor
