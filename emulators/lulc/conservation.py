"""The conservation layer: fine class fractions that aggregate exactly to the coarse input.

Given strictly positive fine fractions ``P`` (B, K, H, W) (a softmax) and coarse fractions ``C``
(B, K, h, w) with ``H = f·h``, ``W = f·w``, find ``Q`` with

* ``Q ≥ 0`` and ``Σ_k Q[k, p] = 1`` for every fine pixel ``p``            (row sums 1),
* ``Σ_{p ∈ block b} Q[k, p] = n·C[k, b]`` for every block and class, ``n = f²`` (column sums).

Per block this is a transportation polytope with n rows and K columns whose margins have the
same total (n·Σ_k C = n). It is never empty: ``Q[k, p] = C[k, b]`` (the coarse fractions spread
uniformly, the area-weighted baseline) is in it. So the layer can always succeed:

1. ``iterations`` Sinkhorn / iterative-proportional-fitting sweeps in float64 (scale each
   class in each block to its target, then each pixel to 1) move ``P`` towards the KL
   projection of the network's output onto the polytope (Sinkhorn's theorem: converges for
   positive ``P``; classes with ``C = 0`` become exactly 0 in their block).
2. The rounding step of Altschuler, Weed & Rigollet (2017, Alg. 2) then lands *exactly* on the
   polytope: scale down rows above 1, scale down columns above target, and add the outer
   product of the (non-negative) row and column deficits divided by their common total. Row
   and column sums are then exact up to float64 round-off (≈ 1e-15), entries stay ≥ 0, so each
   is ≤ 1.

All operations are tensor ops with no data-dependent control flow: the layer traces, scripts
and exports with the network.
"""

from __future__ import annotations

import torch

# representable in float32: exporters may store scalar constants in single precision
_TINY = 1e-30


def block_sum(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Sum over ``factor × factor`` blocks of the last two axes: (B, K, H, W) → (B, K, h, w)."""
    b, k, hh, ww = x.shape
    return x.reshape(b, k, hh // factor, factor, ww // factor, factor).sum(dim=(3, 5))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of the last two axes by ``factor``."""
    b, k, h, w = x.shape
    y = x[:, :, :, None, :, None].expand(b, k, h, factor, w, factor)
    return y.reshape(b, k, h * factor, w * factor)


def conserve(
    fine: torch.Tensor, coarse: torch.Tensor, factor: int, iterations: int = 10
) -> torch.Tensor:
    """Fine fractions (float64) aggregating exactly to ``coarse`` (see the module docstring).

    ``fine``: (B, K, H, W) positive weights (any scale); ``coarse``: (B, K, H/f, W/f) non-negative
    fractions, renormalised here to sum to 1 per cell (in float64).
    """
    p = fine.to(torch.float64)
    c = coarse.to(torch.float64).clamp_min(0.0)
    c = c / c.sum(dim=1, keepdim=True).clamp_min(_TINY)
    n = float(factor * factor)
    target = n * c
    p = p / p.sum(dim=1, keepdim=True).clamp_min(_TINY)
    for _ in range(iterations):
        p = p * upsample(target / block_sum(p, factor).clamp_min(_TINY), factor)
        p = p / p.sum(dim=1, keepdim=True).clamp_min(_TINY)
    # exact rounding onto the polytope (Altschuler, Weed & Rigollet 2017, Alg. 2)
    p = p * torch.clamp(1.0 / p.sum(dim=1, keepdim=True).clamp_min(_TINY), max=1.0)
    p = p * upsample(torch.clamp(target / block_sum(p, factor).clamp_min(_TINY), max=1.0), factor)
    # deficits are >= 0 in exact arithmetic; clamping round-off keeps col_deficit/total in [0, 1]
    row_deficit = (1.0 - p.sum(dim=1, keepdim=True)).clamp_min(0.0)
    col_deficit = (target - block_sum(p, factor)).clamp_min(0.0)
    total = col_deficit.sum(dim=1, keepdim=True).clamp_min(_TINY)
    return p + row_deficit * upsample(col_deficit / total, factor)


def aggregation_error(fine: torch.Tensor, coarse: torch.Tensor, factor: int) -> float:
    """Largest |block mean of ``fine`` − ``coarse``| over blocks and classes (fractions, 1)."""
    mean = block_sum(fine.detach().to(torch.float64), factor) / float(factor * factor)
    return float((mean - coarse.detach().to(torch.float64)).abs().max())
