"""The state vector of an analysis: named blocks of columns with bounds and locations, packed
into one (member, column) tensor. Parameter estimation by state augmentation is just more
blocks (Anderson 2001 §4; Annan et al. 2005): a parameter is a column like any other, updated
through its ensemble correlation with the observed quantities and kept within its range."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from coupler.errors import InvalidArgument


@dataclass(frozen=True, eq=False)
class Bounds:
    """Per-column bounds ``lo`` (M,) and ``hi`` (M,) (±inf allowed), ``lo <= hi``."""

    lo: torch.Tensor
    hi: torch.Tensor

    def __post_init__(self) -> None:
        if self.lo.dim() != 1 or self.lo.shape != self.hi.shape:
            raise InvalidArgument(
                f"bounds: lo {tuple(self.lo.shape)} and hi {tuple(self.hi.shape)} must be equal "
                "1-D shapes",
                field="bounds",
                rule="shape",
            )
        if torch.isnan(self.lo).any() or torch.isnan(self.hi).any() or (self.lo > self.hi).any():
            raise InvalidArgument(
                "bounds: need lo <= hi and no NaN", field="bounds", rule="ordered"
            )

    def clip(self, E: torch.Tensor) -> tuple[torch.Tensor, int]:
        """E (N, M) clipped into the bounds, and how many values moved."""
        out = torch.maximum(torch.minimum(E, self.hi), self.lo)
        return out, int((out != E).sum())


@dataclass(frozen=True)
class Block:
    """``size`` columns named ``name`` with bounds [lo, hi] (units of the block) and, per column,
    the site (cell) it sits at, or -1 for no location (e.g. a global parameter)."""

    name: str
    size: int
    lo: float = -math.inf
    hi: float = math.inf
    site: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name or self.size < 1:
            raise InvalidArgument(
                f"block {self.name!r}: needs a name and size >= 1", field="block", rule="non_empty"
            )
        if not self.lo <= self.hi:
            raise InvalidArgument(
                f"block {self.name!r}: lo {self.lo} > hi {self.hi}", field=self.name, rule="ordered"
            )
        if self.site is not None and len(self.site) != self.size:
            raise InvalidArgument(
                f"block {self.name!r}: {len(self.site)} sites for {self.size} columns",
                field=self.name,
                rule="shape",
            )


@dataclass(frozen=True)
class StateLayout:
    """Blocks in order; column offsets follow."""

    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        names = [b.name for b in self.blocks]
        if not names or len(set(names)) != len(names):
            raise InvalidArgument(
                f"layout: block names must be unique and non-empty, got {names}",
                field="layout",
                rule="unique",
            )

    @property
    def n_columns(self) -> int:
        return sum(b.size for b in self.blocks)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for b in self.blocks:
            out[b.name] = slice(start, start + b.size)
            start += b.size
        return out

    def bounds(self) -> Bounds:
        lo = torch.cat([torch.full((b.size,), b.lo, dtype=torch.float64) for b in self.blocks])
        hi = torch.cat([torch.full((b.size,), b.hi, dtype=torch.float64) for b in self.blocks])
        return Bounds(lo, hi)

    def sites(self) -> np.ndarray:
        """(M,) site of each column (-1: none)."""
        return np.concatenate(
            [np.full(b.size, -1) if b.site is None else np.asarray(b.site) for b in self.blocks]
        ).astype(np.int64)

    def pack(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, M) from each block's (N, size) tensor."""
        parts: Sequence[torch.Tensor] = []
        for b in self.blocks:
            if b.name not in values:
                raise InvalidArgument(
                    f"{b.name}: missing from the state", field=b.name, rule="missing"
                )
            v = values[b.name]
            if v.dim() != 2 or v.shape[1] != b.size:
                raise InvalidArgument(
                    f"{b.name}: shape {tuple(v.shape)}, expected (member, {b.size})",
                    field=b.name,
                    rule="shape",
                )
            parts = [*parts, v.double()]
        return torch.cat(list(parts), dim=1)

    def unpack(self, E: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each block's (N, size) view of ``E`` (N, M)."""
        return {name: E[:, s] for name, s in self.slices().items()}
