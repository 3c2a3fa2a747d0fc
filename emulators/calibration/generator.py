"""The parameter generator g_z (static site features → the 12 parameters inside their ranges)
and the per-site direct parameterisation, both as offsets from the class defaults in logit space:

    u = σ(logit(u_default[class]) + δ),   p = low + (high − low)·u

so every output is inside the published range by construction and a zero offset is exactly the
class default (calibration starts from the defaults). ``Generators`` holds G independent MLPs
(batched weights, one rollout trains all: the full calibration and every cross-validation fold);
their last layer starts at zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from emulators import parameters as P

Tensor = torch.Tensor
EPS = 1e-4


def default_logits(tile: Tensor) -> Tensor:
    """(site, 12) logit of the class defaults normalised to [0, 1]."""
    low, high = P.bounds(torch.float32)
    u = ((P.default_table(torch.float32)[tile] - low) / (high - low)).clamp(EPS, 1 - EPS)
    return torch.log(u) - torch.log1p(-u)


def to_parameters(logit: Tensor) -> Tensor:
    """Physical parameters (…, 12) from logits."""
    low, high = P.bounds(logit.dtype)
    return low + (high - low) * torch.sigmoid(logit)


def to_logits(params: Tensor) -> Tensor:
    low, high = P.bounds(params.dtype)
    u = ((params - low) / (high - low)).clamp(EPS, 1 - EPS)
    return torch.log(u) - torch.log1p(-u)


class Generators(nn.Module):
    """G independent two-hidden-layer MLPs g_z: features (site, F) → offsets (G, site, 12).

    Features are standardised with the stored ``mean``/``std`` (of the calibration sites)."""

    if TYPE_CHECKING:  # buffers, for mypy only
        mean: Tensor
        std: Tensor

    def __init__(self, n_features: int, members: int, width: int = 32, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.members = members

        def lin(i: int, o: int, zero: bool = False) -> tuple[nn.Parameter, nn.Parameter]:
            w = torch.zeros(members, i, o) if zero else torch.randn(members, i, o, generator=g)
            return nn.Parameter(w / i**0.5), nn.Parameter(torch.zeros(members, 1, o))

        self.w1, self.b1 = lin(n_features, width)
        self.w2, self.b2 = lin(width, width)
        self.w3, self.b3 = lin(width, P.N_PARAMETERS, zero=True)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def set_normalisation(self, features: Tensor) -> None:
        std = features.std(0)
        self.mean.copy_(features.mean(0))
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, features: Tensor) -> Tensor:
        z = ((features - self.mean) / self.std).expand(self.members, -1, -1)
        z = torch.tanh(torch.bmm(z, self.w1) + self.b1)
        z = torch.tanh(torch.bmm(z, self.w2) + self.b2)
        return torch.bmm(z, self.w3) + self.b3


class Direct(nn.Module):
    """Per-site direct optimisation: free logit offsets (site, 12), starting at zero."""

    def __init__(self, sites: int) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(sites, P.N_PARAMETERS))

    def forward(self) -> Tensor:
        return self.offset
