"""Linear-Gaussian check: with a large ensemble the EAKF, EnKF, ETKF (and LETKF without
effective localisation) reproduce the exact Kalman filter."""

from __future__ import annotations

import math

import pytest
import torch

from coupler.assimilation.config import FilterConfig, FilterKind, QualityControl
from coupler.assimilation.filters import analyse, linear_forward
from coupler.assimilation.localization import Localization

M, P, N = 5, 3, 4000


def _problem(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    L = torch.randn(M, M, dtype=torch.float64, generator=g)
    P0 = L @ L.T + 0.5 * torch.eye(M, dtype=torch.float64)  # correlated prior
    x0 = torch.randn(M, dtype=torch.float64, generator=g)
    H = torch.randn(P, M, dtype=torch.float64, generator=g)
    R = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    y = H @ x0 + torch.tensor([1.0, -0.5, 0.8], dtype=torch.float64)
    E = x0 + torch.randn(N, M, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(P0).T
    return {"P0": P0, "x0": x0, "H": H, "R": R, "y": y, "E": E}


def _kalman(x: torch.Tensor, B: torch.Tensor, H: torch.Tensor, R: torch.Tensor, y: torch.Tensor):
    K = B @ H.T @ torch.linalg.inv(H @ B @ H.T + torch.diag(R))
    return x + K @ (y - H @ x), (torch.eye(M, dtype=torch.float64) - K @ H) @ B


def _moments(E: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return E.mean(0), torch.cov(E.T)


def _run(kind: FilterKind, pb: dict[str, torch.Tensor]) -> torch.Tensor:
    cfg = FilterConfig(kind=kind, qc=QualityControl(gross_error_k=math.inf), seed=3)
    loc = None
    if kind is FilterKind.LETKF:  # factor 1 everywhere: the local analyses are the global one
        loc = Localization.from_dense(
            torch.ones(P, M, dtype=torch.float64), torch.ones(P, P, dtype=torch.float64)
        )
    out = analyse(pb["E"], linear_forward(pb["H"]), pb["y"], pb["R"], cfg, localization=loc)
    assert out.diagnostics.n_used == P
    return out.ensemble


@pytest.mark.parametrize("kind", [FilterKind.EAKF, FilterKind.ETKF, FilterKind.LETKF])
def test_square_root_filters_are_the_kalman_filter_of_the_sample_moments(kind: FilterKind) -> None:
    pb = _problem()
    xb, B = _moments(pb["E"])
    xa, Pa = _kalman(xb, B, pb["H"], pb["R"], pb["y"])
    mean, cov = _moments(_run(kind, pb))
    torch.testing.assert_close(mean, xa, rtol=0, atol=1e-10)
    torch.testing.assert_close(cov, Pa, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "kind", [FilterKind.EAKF, FilterKind.ENKF, FilterKind.ETKF, FilterKind.LETKF]
)
def test_analysis_matches_the_exact_kalman_filter_within_sampling_error(kind: FilterKind) -> None:
    pb = _problem()
    xa, Pa = _kalman(pb["x0"], pb["P0"], pb["H"], pb["R"], pb["y"])
    mean, cov = _moments(_run(kind, pb))
    d = Pa.diagonal()
    # standard errors of a mean and of covariance entries from N samples (x2 margin for the
    # propagated prior sampling error and, for the EnKF, the observation perturbations)
    se_mean = (pb["P0"].diagonal() / N).sqrt()
    se_cov = ((d[:, None] * d[None, :] + Pa**2) * 2.0 / N).sqrt()
    assert ((mean - xa).abs() / se_mean).max() < 5.0
    assert ((cov - Pa).abs() / se_cov).max() < 5.0
    # and the analysis is a real update: far from the prior in units of its standard error
    assert ((pb["x0"] - xa).abs() / se_mean).max() > 10.0


def test_enkf_is_seeded_and_stochastic() -> None:
    pb = _problem()
    fwd = linear_forward(pb["H"])
    a = analyse(pb["E"], fwd, pb["y"], pb["R"], FilterConfig(kind=FilterKind.ENKF, seed=7))
    b = analyse(pb["E"], fwd, pb["y"], pb["R"], FilterConfig(kind=FilterKind.ENKF, seed=7))
    c = analyse(pb["E"], fwd, pb["y"], pb["R"], FilterConfig(kind=FilterKind.ENKF, seed=8))
    assert torch.equal(a.ensemble, b.ensemble)
    assert not torch.equal(a.ensemble, c.ensemble)
    # centred perturbations: the analysis mean is the Kalman mean of the sample moments exactly
    # only up to the perturbations' covariance, but members differ from a deterministic update
    d = analyse(pb["E"], fwd, pb["y"], pb["R"], FilterConfig(kind=FilterKind.ETKF))
    assert not torch.allclose(a.ensemble, d.ensemble)
