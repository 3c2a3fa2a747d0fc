"""Tile rows: the (member, cell, tile) entries an emulator actually computes.

An emulator backend computes only the tiles with nonzero cover ("rows"), gathered from the dense
(member, cell, tile) state, and scatters the results back. The exact per-tile diagnostics the
rows need (albedo, roughness, LAI, water stress; class constants) are the land step's own,
shared with the reference model (``emulators.landstep.surface``); ``class_constants`` and
``surface`` are re-exported here for the emulator code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators.landstep.surface import class_constants, surface

Tensor = torch.Tensor

__all__ = ["Rows", "class_constants", "surface"]


@dataclass(frozen=True)
class Rows:
    """The active (member, cell, tile) entries of a domain, flattened.

    ``flat`` indexes a (member·cell·tile) flattening of a dense tensor; ``member``, ``cell``,
    ``tile`` are the row's coordinates (all int64, shape (row,))."""

    flat: Tensor
    member: Tensor
    cell: Tensor
    tile: Tensor
    shape: tuple[int, int, int]

    @property
    def n(self) -> int:
        return int(self.flat.shape[0])

    @staticmethod
    def active(cover: Tensor, members: int, all_tiles: bool = False) -> Rows:
        """Rows of tiles with cover > 0 (every tile with ``all_tiles``) for ``members``
        identical-cover members; ``cover`` is (cell, tile)."""
        n, k = cover.shape
        mask = torch.ones_like(cover, dtype=torch.bool) if all_tiles else cover > 0
        cell, tile = torch.nonzero(mask, as_tuple=True)
        member = torch.arange(members).repeat_interleave(cell.shape[0])
        cell, tile = cell.repeat(members), tile.repeat(members)
        flat = (member * n + cell) * k + tile
        return Rows(flat, member, cell, tile, (members, n, k))

    def slots(self) -> Tensor:
        """(member·cell·tile,) int64: 1 + the row of each entry, 0 where it has none — the
        index that builds a dense tensor from a zero row and the rows in one pass
        (``row_step.dense_rows``)."""
        m, n, k = self.shape
        out = torch.zeros(m * n * k, dtype=torch.int64)
        out[self.flat] = torch.arange(1, self.n + 1)
        return out

    def gather(self, dense: Tensor) -> Tensor:
        """(row, ...) from a (member, cell, tile, ...) tensor."""
        m, n, k = self.shape
        return dense.reshape(m * n * k, *dense.shape[3:])[self.flat]

    def scatter(self, dense: Tensor, rows: Tensor) -> Tensor:
        """A copy of ``dense`` (member, cell, tile, ...) with the active rows replaced."""
        m, n, k = self.shape
        out = dense.reshape(m * n * k, *dense.shape[3:]).clone()
        out[self.flat] = rows.to(out.dtype)
        return out.reshape(dense.shape)

    def expand(self, rows: Tensor, fill: float = 0.0) -> Tensor:
        """A dense (member, cell, tile) tensor with ``rows`` at the active entries, ``fill``
        elsewhere."""
        m, n, k = self.shape
        out = torch.full((m * n * k,), fill, dtype=rows.dtype)
        out[self.flat] = rows
        return out.reshape(m, n, k)
