"""Validation of an observation batch, and screening of observations before an analysis.

Malformed input (non-finite value or error variance, wrong shape) is an error naming the field
and the rule. A *valid* observation whose forward-operator value is non-finite for any member,
whose prior observed ensemble has no spread, or that fails the gross-error check is rejected and
counted; it never touches the ensemble.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch

from coupler.assimilation.config import QualityControl
from coupler.errors import InvalidArgument


class Reject(enum.IntEnum):
    """Why an observation was not assimilated (0: it was)."""

    USED = 0
    NONFINITE_FORWARD = 1
    ZERO_SPREAD = 2
    GROSS_ERROR = 3


def check_observations(y: torch.Tensor, R: torch.Tensor) -> None:
    """Raise InvalidArgument unless ``y`` (P,) and ``R`` (P,) are 1-D, equally long, finite,
    and every error variance ``R`` is > 0 (in the squared unit of its observation)."""
    if y.dim() != 1:
        raise InvalidArgument(f"y: shape {tuple(y.shape)}, expected (P,)", field="y", rule="shape")
    if R.shape != y.shape:
        raise InvalidArgument(
            f"R: shape {tuple(R.shape)}, expected {tuple(y.shape)} like y", field="R", rule="shape"
        )
    bad = ~torch.isfinite(y)
    if bad.any():
        first = int(bad.nonzero()[0, 0])
        raise InvalidArgument(
            f"y: {int(bad.sum())} non-finite observation value(s), first at index {first}",
            field="y",
            rule="finite",
        )
    bad = ~(torch.isfinite(R) & (R > 0))
    if bad.any():
        first = int(bad.nonzero()[0, 0])
        raise InvalidArgument(
            f"R: {int(bad.sum())} error variance(s) not finite and > 0, first at index {first}",
            field="R",
            rule="positive_finite",
        )


@dataclass(frozen=True, eq=False)
class Screening:
    """Outcome of :func:`screen`: ``reason`` (P,) int8 codes of :class:`Reject`."""

    reason: torch.Tensor

    @property
    def used(self) -> torch.Tensor:
        return self.reason == int(Reject.USED)

    @property
    def n_used(self) -> int:
        return int(self.used.sum())

    def counts(self) -> dict[str, int]:
        """Number of rejected observations per reason (lower-case names)."""
        return {
            r.name.lower(): int((self.reason == int(r)).sum()) for r in Reject if r != Reject.USED
        }


def screen(HE: torch.Tensor, y: torch.Tensor, R: torch.Tensor, qc: QualityControl) -> Screening:
    """Screen observations given the prior observed ensemble ``HE`` (N, P)."""
    finite = torch.isfinite(HE).all(dim=0)
    safe = torch.where(finite[None, :], HE, torch.zeros_like(HE))
    var = safe.var(dim=0, unbiased=True)
    innov = y - safe.mean(dim=0)
    reason = torch.zeros(y.shape[0], dtype=torch.int8)
    gross = innov.abs() > qc.gross_error_k * (var + R).sqrt()
    reason[gross] = int(Reject.GROSS_ERROR)
    reason[var <= 0] = int(Reject.ZERO_SPREAD)
    reason[~finite] = int(Reject.NONFINITE_FORWARD)
    return Screening(reason)
