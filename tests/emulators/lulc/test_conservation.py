"""The conservation layer: exact aggregation to the coarse fractions, rows summing to 1, bounds."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.lulc.conservation import aggregation_error, block_sum, conserve, upsample

TOL = 1e-6


def _coarse(rng: np.random.Generator, b: int, k: int, h: int, w: int, alpha: float) -> np.ndarray:
    c = rng.dirichlet(np.full(k, alpha), size=(b, h, w)).transpose(0, 3, 1, 2)
    c[c < 1e-3] = 0.0  # exact zeros: classes absent from a coarse cell
    return c / c.sum(axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    b=st.integers(1, 3),
    k=st.integers(2, 9),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
    factor=st.sampled_from([1, 2, 4, 8]),
    iterations=st.integers(0, 12),
    sharpness=st.floats(0.0, 12.0),
    alpha=st.floats(0.05, 5.0),
)
def test_conserves_exactly_on_random_inputs(
    seed: int,
    b: int,
    k: int,
    h: int,
    w: int,
    factor: int,
    iterations: int,
    sharpness: float,
    alpha: float,
) -> None:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(_coarse(rng, b, k, h, w, alpha))
    logits = sharpness * torch.from_numpy(rng.standard_normal((b, k, h * factor, w * factor)))
    fine = conserve(torch.softmax(logits, dim=1), coarse, factor, iterations)
    assert fine.dtype == torch.float64
    assert fine.shape == (b, k, h * factor, w * factor)
    assert aggregation_error(fine, coarse, factor) <= TOL
    assert float((fine.sum(dim=1) - 1).abs().max()) <= TOL
    assert float(fine.min()) >= 0.0
    assert float(fine.max()) <= 1.0 + 1e-12
    # a class absent from a coarse cell is absent from all its pixels
    absent = upsample((coarse == 0).double(), factor).bool()
    assert float(fine[absent].abs().sum()) <= 1e-12


def test_float32_coarse_input_is_renormalised_then_conserved() -> None:
    rng = np.random.default_rng(3)
    coarse = torch.from_numpy(_coarse(rng, 2, 8, 3, 3, 0.3)).float()  # sums 1 ± 1e-7
    fine = conserve(torch.rand(2, 8, 24, 24, dtype=torch.float64) + 0.01, coarse, 8)
    exact = coarse.double() / coarse.double().sum(dim=1, keepdim=True)
    assert aggregation_error(fine, exact, 8) <= 1e-12


def test_a_feasible_input_is_left_alone() -> None:
    """The uniform spread of the coarse fractions is already in the polytope (feasibility)."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(_coarse(rng, 1, 8, 2, 3, 1.0))
    uniform = upsample(coarse, 4) + 0.0
    fine = conserve(uniform.clamp_min(1e-300), coarse, 4, iterations=5)
    assert torch.allclose(fine, uniform, atol=1e-12)


def test_pixels_keep_the_networks_preferences() -> None:
    """Inside a 50/50 block, pixels the network prefers for class 0 get more of class 0."""
    coarse = torch.tensor([[[[0.5]], [[0.5]]]], dtype=torch.float64)
    pref = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    pref[0, 0, 0, :] = 3.0  # top row likes class 0
    fine = conserve(torch.softmax(pref, dim=1), coarse, 2, iterations=50)
    assert float(fine[0, 0, 0].min()) > 0.8
    assert float(fine[0, 0, 1].max()) < 0.2
    expect = torch.tensor([2.0, 2.0], dtype=torch.float64)
    assert torch.allclose(block_sum(fine, 2).flatten(), expect)
