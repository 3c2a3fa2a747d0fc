"""Ensemble transform Kalman filter with the symmetric square root: Bishop, Etherton & Majumdar
(2001, MWR 129:420-436); Hunt, Kostelich & Szunyogh (2007, Physica D 230:112-126), and its local
version (LETKF) with R-localisation.

In ensemble space, with anomalies ``A = E - x̄`` (N, M), observed anomalies ``Y = hE - ȳ``
(N, P), ``C = Y R⁻¹`` (R diagonal)::

    P̃_a = [(N-1) I + C Yᵀ]⁻¹,   w̄ = P̃_a C (y - ȳ),   W_a = [(N-1) P̃_a]^{1/2} (symmetric),
    E_a = x̄ + (w̄ + W_a) A     (row i of W_a is member i's weights).

LETKF (Hunt et al. 2007, §2.3): every state column m has its own analysis with R⁻¹ multiplied by
the Gaspari–Cohn factor between the column and each observation (observations with factor 0
drop out), batched over columns.
"""

from __future__ import annotations

import torch

from coupler.assimilation.localization import Localization


def transform(
    Y: torch.Tensor, Rinv: torch.Tensor, innov: torch.Tensor, A: torch.Tensor
) -> torch.Tensor:
    """Analysis anomalies about the prior mean, ``(w̄ + W_a) A``, batched over leading dims:
    ``Y`` (..., N, P) observed anomalies, ``Rinv`` (..., P) inverse error variances (already
    localised, >= 0), ``innov`` (..., P) = y - ȳ, ``A`` (..., N, Q) state anomalies. Add x̄ to
    get the analysis ensemble.

    With many members and few observations (N > 2P) the low-rank form is used: with the thin
    SVD ``Y R^{-1/2} = U Σ Vᵀ``, ``W_a = I + U (diag(sqrt((N-1)/(N-1+σ²))) - I) Uᵀ`` and
    ``w̄ = U diag(σ/(N-1+σ²)) Vᵀ R^{-1/2} (y - ȳ)`` (O(N P²), no N x N matrix); otherwise the
    N x N eigendecomposition of ``(N-1) I + C Yᵀ``."""
    n, p = Y.shape[-2], Y.shape[-1]
    if n > 2 * p:
        rs = Rinv.sqrt()
        U, sig, Vh = torch.linalg.svd(Y * rs.unsqueeze(-2), full_matrices=False)
        denom = (n - 1) + sig * sig
        f = ((n - 1) / denom).sqrt() - 1.0
        coef = (sig / denom) * (Vh @ (rs * innov).unsqueeze(-1)).squeeze(-1)
        wbar = (U @ coef.unsqueeze(-1)).squeeze(-1)  # (..., N)
        UtA = U.transpose(-1, -2) @ A
        return A + U @ (f.unsqueeze(-1) * UtA) + (wbar.unsqueeze(-2) @ A)
    eye = torch.eye(n, dtype=Y.dtype, device=Y.device)
    C = Y * Rinv.unsqueeze(-2)
    S = (n - 1) * eye + C @ Y.transpose(-1, -2)
    s, V = torch.linalg.eigh(S)
    Pa = (V / s.unsqueeze(-2)) @ V.transpose(-1, -2)
    Wa = (V * ((n - 1) / s).sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)
    wbar = (Pa @ (C @ innov.unsqueeze(-1))).squeeze(-1)
    return (Wa + wbar.unsqueeze(-2)) @ A


def etkf(E: torch.Tensor, HE: torch.Tensor, y: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Global ETKF analysis (N, M) from ``E`` (N, M), observed ensemble ``HE`` (N, P) of the
    observations to use, ``y`` (P,), error variances ``R`` (P,)."""
    xbar = E.mean(dim=0, keepdim=True)
    ybar = HE.mean(dim=0)
    return xbar + transform(HE - ybar, 1.0 / R, y - ybar, E - xbar)


def weights(Y: torch.Tensor, Rinv: torch.Tensor, innov: torch.Tensor) -> torch.Tensor:
    """Ensemble-space weights W (..., N, N), batched: ``E_a = x̄ + W A`` (row i = w̄ + row i
    of W_a); arguments as :func:`transform`. Forms the N x N matrix: for small ensembles."""
    n = Y.shape[-2]
    eye = torch.eye(n, dtype=Y.dtype, device=Y.device).expand(*Y.shape[:-2], n, n)
    return transform(Y, Rinv, innov, eye)


def letkf(
    E: torch.Tensor,
    HE: torch.Tensor,
    y: torch.Tensor,
    R: torch.Tensor,
    used: torch.Tensor,
    localization: Localization,
    column_site: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """LETKF analysis (N, M): one ETKF per state column with R-localisation. ``HE`` (N, P),
    ``y``/``R``/``used`` (P,) cover all observations; unused ones get factor 0.

    ``column_site`` (M,) int: columns with the same value share one local analysis (they must
    have the same localisation factors, as the columns of one cell do with
    :meth:`Localization.sphere`); default: ``localization.column_site``, else every column its
    own. ``chunk`` local analyses are
    batched at once (memory ∝ chunk · N · max(N, K), K = most observations seen by a column).
    """
    n, m = E.shape
    xbar = E.mean(dim=0)
    A = E - xbar
    HEs = torch.where(used[None, :], HE, torch.zeros_like(HE))
    ybar = HEs.mean(dim=0)
    Yt = (HEs - ybar).T.contiguous()  # (P, N)
    innov = torch.where(used, y - ybar, torch.zeros_like(y))
    rinv = torch.where(used, 1.0 / R, torch.zeros_like(R))
    obs_idx, rho = localization.by_state()
    if column_site is None and localization.column_site is not None:
        column_site = torch.from_numpy(localization.column_site)
    out = torch.empty_like(E)
    if column_site is None or n > 2 * obs_idx.shape[1]:
        # one analysis per column (with many members the low-rank form, never N x N)
        for lo in range(0, m, chunk):
            hi = min(lo + chunk, m)
            idx, w = obs_idx[lo:hi], rho[lo:hi]  # (c, K)
            Yloc = Yt[idx].transpose(-1, -2)  # (c, N, K)
            Aloc = A[:, lo:hi].T.unsqueeze(-1)  # (c, N, 1)
            Xa = transform(Yloc, w * rinv[idx], innov[idx], Aloc)  # (c, N, 1)
            out[:, lo:hi] = xbar[lo:hi] + Xa.squeeze(-1).T
        return out
    _, inverse = torch.unique(column_site.long(), return_inverse=True)
    n_groups = int(inverse.max()) + 1
    rep = torch.empty(n_groups, dtype=torch.long)
    rep[inverse] = torch.arange(m)  # any column of each group represents it
    W = torch.empty(n_groups, n, n, dtype=E.dtype)
    for lo in range(0, n_groups, chunk):
        hi = min(lo + chunk, n_groups)
        idx, w = obs_idx[rep[lo:hi]], rho[rep[lo:hi]]
        W[lo:hi] = weights(Yt[idx].transpose(-1, -2), w * rinv[idx], innov[idx])
    for lo in range(0, m, chunk):
        hi = min(lo + chunk, m)
        out[:, lo:hi] = xbar[lo:hi] + torch.einsum("cij,jc->ic", W[inverse[lo:hi]], A[:, lo:hi])
    return out
