"""Tile rows: the (member, cell, tile) entries an emulator actually computes, and the exact,
cheap per-tile diagnostics every flux emulator shares with the reference model.

An emulator backend computes only the tiles with nonzero cover ("rows"), gathered from the dense
(member, cell, tile) state, and scatters the results back. The closed-form diagnostics here
(albedo from leaf optics, LAI and soil wetness; roughness length; bucket capacity; water stress)
are the reference model's own equations (``emulators.reference.model``), evaluated per row: they
cost a few element-wise operations, so there is nothing to gain by learning them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators import parameters as P
from emulators import physics
from emulators.reference import photosynthesis
from emulators.reference.classes import COLUMNS, class_table
from emulators.reference.model import LAKE_CAPACITY
from emulators.reference.soil import SoilConfig, water_content_at

Tensor = torch.Tensor

#: columns of the class table the emulators need, per row
CLASS_COLUMNS = COLUMNS


def class_constants(soil: SoilConfig, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """(class,) tensors: the reference class table plus capacity [kg m-2], vegetated/bare/water
    indicators [1]."""
    table = class_table(dtype)
    out = {k: table[k] for k in CLASS_COLUMNS}
    capacity = table["root_depth"] * soil.porosity * C.RHO_WATER
    capacity[P.LandCover.WATER_ICE] = LAKE_CAPACITY
    out["capacity"] = capacity
    veg = torch.zeros(P.N_CLASSES, dtype=dtype)
    veg[list(P.VEGETATED)] = 1.0
    out["vegetated"] = veg
    for name, lc in (("bare", P.LandCover.BARE), ("water", P.LandCover.WATER_ICE)):
        v = torch.zeros(P.N_CLASSES, dtype=dtype)
        v[int(lc)] = 1.0
        out[name] = v
    return out


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


@dataclass(frozen=True)
class Surface:
    """Exact per-row surface diagnostics (reference-model equations)."""

    theta: Tensor  # volumetric soil water [m3 m-3]
    lai: Tensor  # leaf area index of the vegetated part [m2 m-2]
    vgcov: Tensor  # vegetation cover fraction (0 for non-vegetated classes) [1]
    albedo: Tensor  # broadband surface albedo [1]
    z0: Tensor  # roughness length for momentum [m]
    f_w: Tensor  # soil water stress factor [1]


def surface(
    w: Tensor, cleaf: Tensor, params: Tensor, const: dict[str, Tensor], soil: SoilConfig
) -> Surface:
    """Albedo, roughness, LAI and water stress of rows from soil water ``w`` [kg m-2], leaf carbon
    ``cleaf`` [kg C m-2], parameters (row, 12) and per-row class constants ``const``; the same
    equations as ``ReferenceBackend.step_tiles`` steps 1-2."""
    veg = const["vegetated"]
    theta = (w / (const["root_depth"] * C.RHO_WATER)).clamp(0.0, soil.porosity)
    lai = const["sla"] * cleaf * veg
    vg = params[:, 4] * veg
    soil_alb = const["soil_albedo"] * (1.0 - 0.4 * theta / soil.porosity)
    soil_alb = torch.where(veg + const["bare"] > 0, soil_alb, const["soil_albedo"])
    alb_vis = physics.canopy_reflectance(
        params[:, 1] + photosynthesis.LEAF_TRANSMITTANCE_VIS, lai, 0.75 * soil_alb
    )
    alb_nir = physics.canopy_reflectance(params[:, 2] + params[:, 3], lai, 1.25 * soil_alb)
    albedo = vg * 0.5 * (alb_vis + alb_nir) + (1.0 - vg) * soil_alb
    z0 = torch.exp(vg * torch.log(0.123 * params[:, 0]) + (1.0 - vg) * torch.log(const["z0_bare"]))
    theta_fc = water_content_at(photosynthesis.PSI_FIELD_CAPACITY_KPA, soil).to(w.dtype)
    theta_cr = water_content_at(params[:, 11], soil).to(w.dtype)
    f_w = photosynthesis.water_stress(theta, theta_fc, theta_cr) * veg
    return Surface(theta, lai, vg, albedo, z0, f_w)
