"""One ensemble analysis, whatever the scheme: inflate → observe → screen → update → bound →
diagnose. Pure: inputs are never modified.

Notation (DAPPER; Hunt et al. 2007): ``E`` (N members, M state columns) float64, ``forward`` the
observation operator mapping an ensemble (N, M) to its observed ensemble ``hE`` (N, P), ``y``
(P,) observations, ``R`` (P,) their error variances (diagonal R).

Order of operations: with ADAPTIVE inflation the variance inflation λ (M,) is first damped and
updated from the *uninflated* prior (Anderson 2009), then the prior is inflated with λ; with
FIXED inflation anomalies are multiplied by ``factor``. The forward operator is applied to the
inflated prior, observations are screened (:mod:`coupler.assimilation.qc`), the chosen filter
updates the ensemble with the used observations only, and the analysis is clipped to bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from coupler.assimilation import ensemble as ens
from coupler.assimilation import inflation as infl
from coupler.assimilation.config import FilterConfig, FilterKind, InflationKind
from coupler.assimilation.diagnostics import Diagnostics, diagnose
from coupler.assimilation.eakf import serial_eakf
from coupler.assimilation.enkf import perturbed_obs_enkf
from coupler.assimilation.etkf import etkf, letkf
from coupler.assimilation.localization import Localization
from coupler.assimilation.qc import check_observations, screen
from coupler.assimilation.state import Bounds
from coupler.errors import InvalidArgument

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Analysis:
    """Result of :func:`analyse`: the analysis ensemble (N, M), the variance inflation (M,) to
    carry to the next cycle, the per-observation rejection codes (P,) and diagnostics."""

    ensemble: torch.Tensor
    inflation: torch.Tensor
    reason: torch.Tensor
    diagnostics: Diagnostics


def linear_forward(H: torch.Tensor) -> Forward:
    """Forward operator of a linear map ``H`` (P, M): hE = E Hᵀ."""
    return lambda E: E @ H.T


def select_forward(index: torch.Tensor) -> Forward:
    """Forward operator observing state columns ``index`` (P,) directly."""
    return lambda E: E[:, index]


def _check_ensemble(E: torch.Tensor) -> None:
    if E.dim() != 2 or E.shape[0] < 2 or E.dtype != torch.float64:
        raise InvalidArgument(
            f"ensemble: shape {tuple(E.shape)} dtype {E.dtype}, expected float64 (N>=2, M)",
            field="ensemble",
            rule="shape",
        )
    if not torch.isfinite(E).all():
        raise InvalidArgument(
            "ensemble: the prior ensemble holds non-finite values", field="ensemble", rule="finite"
        )


def _observe(forward: Forward, E: torch.Tensor, p: int) -> torch.Tensor:
    HE = forward(E)
    if HE.shape != (E.shape[0], p):
        raise InvalidArgument(
            f"forward: returned shape {tuple(HE.shape)}, expected ({E.shape[0]}, {p})",
            field="forward",
            rule="shape",
        )
    return HE.double()


def prior_inflation(config: FilterConfig, m: int, current: torch.Tensor | None) -> torch.Tensor:
    """Variance inflation (M,) in force before this analysis's adaptive update."""
    cfg = config.inflation
    if cfg.kind is InflationKind.ADAPTIVE:
        if current is None:
            return torch.full((m,), cfg.initial, dtype=torch.float64)
        if current.shape != (m,):
            raise InvalidArgument(
                f"inflation: shape {tuple(current.shape)}, expected ({m},)",
                field="inflation",
                rule="shape",
            )
        return current.double()
    factor = cfg.factor**2 if cfg.kind is InflationKind.FIXED else 1.0
    return torch.full((m,), factor, dtype=torch.float64)


def analyse(
    E: torch.Tensor,
    forward: Forward,
    y: torch.Tensor,
    R: torch.Tensor,
    config: FilterConfig,
    *,
    localization: Localization | None = None,
    bounds: Bounds | None = None,
    inflation: torch.Tensor | None = None,
    truth: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Analysis:
    """One analysis of the prior ensemble ``E`` (N, M) with observations ``y`` (P,) of error
    variances ``R`` (P,). ``localization`` (required for LETKF) holds Gaspari–Cohn factors,
    ``bounds`` clip the analysis, ``inflation`` is the adaptive λ (M,) from the previous cycle,
    ``truth`` (M,) enables RMSE diagnostics, ``generator`` seeds the EnKF perturbations
    (default: ``config.seed``)."""
    _check_ensemble(E)
    y, R = y.double(), R.double()
    check_observations(y, R)
    m = E.shape[1]
    p = y.shape[0]
    if localization is not None and (localization.n_state, localization.n_obs) != (m, p):
        raise InvalidArgument(
            f"localization: built for ({localization.n_state}, {localization.n_obs}) "
            f"state columns/observations, got ({m}, {p})",
            field="localization",
            rule="shape",
        )
    if bounds is not None and bounds.lo.shape != (m,):
        raise InvalidArgument(
            f"bounds: shape {tuple(bounds.lo.shape)}, expected ({m},)", field="bounds", rule="shape"
        )
    lam = prior_inflation(config, m, inflation)
    if config.inflation.kind is InflationKind.ADAPTIVE:
        HE0 = _observe(forward, E, p)
        lam = infl.damp(lam, config.inflation)
        used0 = screen(HE0, y, R, config.qc).used
        lam = infl.update(lam, E, HE0, y, R, used0, config.inflation, localization)
    prior = ens.inflate(E, lam) if bool((lam != 1.0).any()) else E.clone()
    HE = _observe(forward, prior, p)
    screening = screen(HE, y, R, config.qc)
    used = screening.used
    match config.kind:
        case _ if screening.n_used == 0:
            post = prior.clone()
        case FilterKind.EAKF:
            post = serial_eakf(prior, HE, y, R, used, localization)
        case FilterKind.ENKF:
            gen = generator
            if gen is None:
                gen = torch.Generator().manual_seed(config.seed)
            local = None if localization is None else _subset(localization, used)
            post = perturbed_obs_enkf(
                prior, HE[:, used], y[used], R[used], gen, local, config.center_perturbations
            )
        case FilterKind.ETKF:
            post = etkf(prior, HE[:, used], y[used], R[used])
        case FilterKind.LETKF:
            if localization is None:
                raise InvalidArgument(
                    "localization: LETKF needs a localization",
                    field="localization",
                    rule="required",
                )
            post = letkf(prior, HE, y, R, used, localization)
    n_clipped = 0
    if bounds is not None:
        post, n_clipped = bounds.clip(post)
    diag = diagnose(prior, post, HE, y, screening, lam, n_clipped, truth)
    return Analysis(post, lam, screening.reason, diag)


def _subset(loc: Localization, used: torch.Tensor) -> Localization:
    """The localisation restricted to the used observations (dense; for the batch EnKF)."""
    rho_state, rho_obs = loc.dense()
    return Localization.from_dense(rho_state[used], rho_obs[used][:, used])
