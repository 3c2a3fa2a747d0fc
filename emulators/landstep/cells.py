"""From tiles to cells: the last phase of the land step. Cell fields are cover-weighted sums of
the tile fields, linear in the tiles, so the tiles' exact closure carries over to the cells.

Two ways to the same fields: :func:`aggregate` from dense (member, cell, tile) tile fields (the
reference model computes every tile), and :class:`CellSums` straight from the rows an emulator
backend computes (only the tiles with cover), without building dense tile fields first. They
differ only in the order of the sum: a cell of one or two tiles gets every bit the same, larger
ones agree to round-off (``tests/emulators/landstep/test_cells.py``)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from emulators import parameters as P

Tensor = torch.Tensor

#: tile fields whose cell value is the cover-weighted sum
LINEAR_FIELDS = (
    "hfls",
    "hfss",
    "hfdsl",
    "ts",
    "albedo",
    "rsus",
    "rlus",
    "rns",
    "evspsbl",
    "tran",
    "mrro",
    "mrso",
    "lai",
    "gpp",
)


#: the cell fields, in the order of :class:`CellSums`' terms: the linear fields, z0 (summed as
#: log z0), mrsos (summed over the soil tiles)
CELL_FIELDS = (*LINEAR_FIELDS, "z0", "mrsos")


def soil_tiles(dtype: torch.dtype = torch.float64) -> Tensor:
    """(tile,) 1 for the tiles with soil, 0 for the lake tile."""
    soil = torch.ones(P.N_CLASSES, dtype=dtype)
    soil[int(P.LandCover.WATER_ICE)] = 0.0
    return soil


def soil_cover(cover: Tensor) -> Tensor:
    """(…, cell) the cover [1] of the soil tiles of ``cover`` (…, cell, tile): mrsos' weight."""
    return (cover.to(torch.float64) * soil_tiles()).sum(-1)


def _mrsos(total_soil: Tensor, weighted: Tensor) -> Tensor:
    """mrsos of the cells: the soil tiles' cover-weighted sum over their cover ``total_soil``."""
    return torch.where(
        total_soil > 0, weighted / total_soil.clamp_min(1e-12), torch.zeros_like(total_soil)
    )


def aggregate(tiles: Mapping[str, Tensor], cover: Tensor) -> dict[str, Tensor]:
    """Cover-weighted cell fields (member, cell) from tile fields (member, cell, tile).
    Linear for fluxes and stores (closure carries over); log-mean for z0; mrsos is the mean over
    the soil tiles (the lake tile has no soil)."""
    out = {k: (tiles[k] * cover).sum(-1) for k in LINEAR_FIELDS}
    out["z0"] = torch.exp((torch.log(tiles["z0"]) * cover).sum(-1))
    on_soil = cover * soil_tiles()
    out["mrsos"] = _mrsos(on_soil.sum(-1), (tiles["mrsos"] * on_soil).sum(-1))
    return out


class CellSums:
    """The fields of :func:`aggregate`, summed straight from tile rows.

    ``add`` takes the closed fields of some rows (``tiles``: (row,) each), the row's flat
    member·cell index, its cover fraction ``weight`` and soil flag ``soil`` (``soil_tiles`` of
    its tile); ``fields`` returns the (member, cell) fields once every row is in. Each cell's
    sum is the left fold of its rows' terms in the order they were added (``index_add_`` runs
    over the index in order), so adding rows block by block gives every bit of adding them at
    once. Tiles without a row hold no cover and add nothing, as in :func:`aggregate`."""

    def __init__(self, total_soil: Tensor, members: int) -> None:
        """``total_soil`` (cell,) the domain's :func:`soil_cover` (it changes only with the
        cover: a backend keeps it), the same for all ``members``."""
        n = total_soil.shape[0]
        self.shape = (members, n)
        self.sums = torch.zeros(len(CELL_FIELDS), members * n, dtype=torch.float64)
        self.total_soil = total_soil

    def add(self, tiles: Mapping[str, Tensor], index: Tensor, weight: Tensor, soil: Tensor) -> None:
        """Add rows: ``tiles`` (row,) closed fields (at least ``CELL_FIELDS``), ``index`` (row,)
        member·cell, ``weight`` (row,) cover [1], ``soil`` (row,) 1 for soil tiles, 0 for lake."""
        terms = [tiles[k] for k in LINEAR_FIELDS]
        terms += [torch.log(tiles["z0"]), tiles["mrsos"] * soil]
        self.sums.index_add_(1, index, torch.stack(terms) * weight)

    def fields(self) -> dict[str, Tensor]:
        """The cell fields (member, cell) of the rows added so far."""
        m, n = self.shape
        sums = self.sums.view(len(CELL_FIELDS), m, n)
        out = {k: sums[i] for i, k in enumerate(LINEAR_FIELDS)}
        out["z0"] = torch.exp(sums[len(LINEAR_FIELDS)])
        out["mrsos"] = _mrsos(self.total_soil.expand(m, n), sums[-1])
        return out
