"""Anderson (2009) adaptive inflation."""

from __future__ import annotations

import math

import pytest
import torch

from coupler.assimilation import inflation as infl
from coupler.assimilation.config import (
    FilterConfig,
    InflationConfig,
    InflationKind,
    QualityControl,
)
from coupler.assimilation.filters import analyse, select_forward


def test_likelihood_slope_is_the_derivative_of_the_log_likelihood() -> None:
    lam = torch.tensor([0.8, 1.0, 1.7], dtype=torch.float64)
    gamma = torch.tensor([0.3, 1.0, 0.6], dtype=torch.float64)
    sp2, R, D2 = 0.7, 0.4, 2.3

    def loglik(x: torch.Tensor) -> torch.Tensor:
        theta2 = (1 + gamma * (x.sqrt() - 1)) ** 2 * sp2 + R
        return -0.5 * torch.log(theta2) - D2 / (2 * theta2)

    h = 1e-6
    numeric = (loglik(lam + h) - loglik(lam - h)) / (2 * h)
    torch.testing.assert_close(
        infl.likelihood_slope(lam, gamma, sp2, R, D2), numeric, rtol=1e-6, atol=1e-9
    )


def test_update_is_the_posterior_mode_with_the_linearised_likelihood() -> None:
    """Root of the DART/Anderson quadratic = argmax N(λ; λ̄, σ²)·(L̄ + L'(λ-λ̄))."""
    cfg = InflationConfig(kind=InflationKind.ADAPTIVE, sd=0.3, lower=0.1, upper=50.0)
    g = torch.Generator().manual_seed(0)
    E = torch.randn(50, 1, dtype=torch.float64, generator=g)
    HE = E.clone()
    y = torch.tensor([3.0], dtype=torch.float64)
    R = torch.tensor([0.5], dtype=torch.float64)
    lam0 = torch.tensor([1.2], dtype=torch.float64)
    new = infl.update(lam0, E, HE, y, R, torch.tensor([True]), cfg)
    var = float(HE.var())
    D2 = (3.0 - float(HE.mean())) ** 2
    slope = float(infl.likelihood_slope(lam0, torch.ones(1, dtype=torch.float64), var, 0.5, D2))
    grid = torch.linspace(0.2, 5.0, 200001, dtype=torch.float64)
    post = torch.exp(-((grid - 1.2) ** 2) / (2 * 0.09)) * (1 + slope * (grid - 1.2))
    assert float(new) == pytest.approx(float(grid[post.argmax()]), abs=1e-4)


def test_inflation_grows_with_large_innovations_and_shrinks_with_small_ones() -> None:
    cfg = InflationConfig(kind=InflationKind.ADAPTIVE, sd=0.2, lower=0.5)
    g = torch.Generator().manual_seed(1)
    E = torch.randn(40, 3, dtype=torch.float64, generator=g)
    used = torch.tensor([True])
    R = torch.tensor([0.1], dtype=torch.float64)
    lam = torch.ones(3, dtype=torch.float64)
    HE = E[:, :1]
    big = infl.update(lam, E, HE, HE.mean(0) + 3.0, R, used, cfg)
    small = infl.update(lam, E, HE, HE.mean(0), R, used, cfg)
    assert big[0] > 1.05 and small[0] < 1.0
    # one observation moves λ by less than its prior standard deviation (linearised update)
    assert (big - lam).abs().max() < cfg.sd and (small - lam).abs().max() < cfg.sd
    # columns uncorrelated with the observation move less than the observed one
    assert (big[1:] - 1).abs().max() < big[0] - 1


def test_adaptive_inflation_corrects_an_underdispersive_ensemble() -> None:
    """Truth x ~ N(0, 4) per cycle, but the ensemble claims spread 1: λ learns ≈ 4."""
    g = torch.Generator().manual_seed(2)
    cfg = FilterConfig(
        inflation=InflationConfig(kind=InflationKind.ADAPTIVE, sd=0.2, upper=20.0),
        qc=QualityControl(gross_error_k=math.inf),
    )
    lam = None
    m = 10
    for _ in range(200):
        E = torch.randn(30, m, dtype=torch.float64, generator=g)
        E = (E - E.mean(0)) / E.std(0)  # exact unit spread, zero mean
        truth = 2.0 * torch.randn(m, dtype=torch.float64, generator=g)
        y = truth + 0.5 * torch.randn(m, dtype=torch.float64, generator=g)
        out = analyse(
            E, select_forward(torch.arange(m)), y, torch.full((m,), 0.25), cfg, inflation=lam
        )
        lam = out.inflation
    assert lam is not None
    assert 2.5 < float(lam.mean()) < 6.0
