"""From tiles to cells: the last phase of the land step. Cell fields are cover-weighted sums of
the tile fields, linear in the tiles, so the tiles' exact closure carries over to the cells."""

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


def aggregate(tiles: Mapping[str, Tensor], cover: Tensor) -> dict[str, Tensor]:
    """Cover-weighted cell fields (member, cell) from tile fields (member, cell, tile).
    Linear for fluxes and stores (closure carries over); log-mean for z0; mrsos is the mean over
    the soil tiles (the lake tile has no soil)."""
    out = {k: (tiles[k] * cover).sum(-1) for k in LINEAR_FIELDS}
    out["z0"] = torch.exp((torch.log(tiles["z0"]) * cover).sum(-1))
    lake = torch.zeros(P.N_CLASSES, dtype=torch.float64)
    lake[int(P.LandCover.WATER_ICE)] = 1.0
    soil_cover = cover * (1.0 - lake)
    total = soil_cover.sum(-1)
    out["mrsos"] = torch.where(
        total > 0,
        (tiles["mrsos"] * soil_cover).sum(-1) / total.clamp_min(1e-12),
        torch.zeros_like(total),
    )
    return out
