"""The land state as an assimilation state vector, and back.

Works with every backend that keeps the shared tile-level state tensors (member, cell, tile):
``cleaf`` leaf carbon [kg C m-2 vegetated area], ``w`` root-zone soil water [kg m-2], ``ts`` skin
temperature [K] and ``tsoil`` (member, cell, tile, 3) soil temperatures [K] (the reference model
and the emulator backends do). Columns exist only for tiles present in a cell (cover > 0):

- ``lai`` [m2 m-2] per vegetated tile = SLA × cleaf; after the analysis leaf carbon is set to
  LAI / SLA, so LAI and leaf carbon move together; bounds [0, LAI_max of the class];
- ``w`` per soil tile, bounds [residual water, capacity] (θ_r and porosity of the soil times the
  class's root depth);
- ``ts`` per tile and ``tsoil`` per tile and layer, bounds [180, 360] K;
- ``nleaf`` leaf nitrogen [kg N m-2], where the state has the pool (``emulators.landstep
  .nitrogen``), follows ``lai``: it is not a filter column; the analysis adds the leaf-carbon
  increment divided by the class's C:N, ΔN = ΔC / CN. That is what the filter itself would do to
  a column perfectly correlated with leaf carbon (every increment of the EAKF, EnKF and LETKF is
  linear in the column's ensemble anomalies, and N = C / CN member by member), so leaf C and N
  are updated together (as DART's CLM-CN update) while the filter's columns, inflation and
  diagnostics stay what they were without the pool;
- augmented parameters (state augmentation) per vegetated tile, bounds = their priors' range;
  parameters with a log-uniform prior are carried as their natural logarithm (closer to
  Gaussian, and positive after the analysis).
Every column's site is its cell (for localisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from coupler.assimilation.settings import STATE_FIELDS, ParameterPrior
from coupler.assimilation.state import Bounds
from coupler.errors import InvalidArgument
from emulators import constants as C
from emulators import parameters as P
from emulators.landstep import LAKE_CAPACITY, NITROGEN
from emulators.protocol import LandState, LandStatic
from emulators.reference.classes import class_table, leaf_cn
from emulators.reference.soil import SoilConfig

FIELDS = STATE_FIELDS
T_BOUNDS = (180.0, 360.0)


@dataclass(frozen=True)
class Column:
    """Where one block of columns lives: (cell, tile[, layer]) index arrays."""

    name: str
    cell: np.ndarray
    tile: np.ndarray
    layer: np.ndarray | None
    lo: np.ndarray
    hi: np.ndarray


class LandLayout:
    """Which state entries are assimilated, for one domain (cover fixed)."""

    def __init__(
        self,
        cover: torch.Tensor,
        fields: Sequence[str] = ("lai", "w", "ts"),
        parameters: Sequence[ParameterPrior] = (),
        soil: SoilConfig | None = None,
    ) -> None:
        unknown = [f for f in fields if f not in FIELDS]
        if unknown or not fields:
            raise InvalidArgument(
                f"fields: unknown state field(s) {unknown} (known: {', '.join(FIELDS)})",
                field="fields",
                rule="known",
            )
        soil = soil or SoilConfig()
        cls = class_table(torch.float64)
        self.sla = cls["sla"]
        self.leaf_cn = leaf_cn(torch.float64)
        present = (cover > 0).numpy()
        veg = np.zeros(P.N_CLASSES, dtype=bool)
        veg[list(P.VEGETATED)] = True
        water = int(P.LandCover.WATER_ICE)
        cap = (cls["root_depth"] * soil.porosity * C.RHO_WATER).numpy()
        cap[water] = LAKE_CAPACITY
        floor = cap * soil.theta_residual / soil.porosity
        floor[water] = 0.0
        cells_veg, tiles_veg = np.nonzero(present & veg[None, :])
        cells_all, tiles_all = np.nonzero(present)
        blocks: list[Column] = []

        def block(
            name: str,
            c: np.ndarray,
            t: np.ndarray,
            lo: np.ndarray,
            hi: np.ndarray,
            layer: np.ndarray | None = None,
        ) -> None:
            if c.size:
                blocks.append(Column(name, c, t, layer, lo.astype(float), hi.astype(float)))

        for f in fields:
            if f == "lai":
                lai_max = cls["lai_max"].numpy()[tiles_veg]
                block("lai", cells_veg, tiles_veg, np.zeros_like(lai_max), lai_max)
            elif f == "w":
                block("w", cells_all, tiles_all, floor[tiles_all], cap[tiles_all])
            elif f == "ts":
                n = cells_all.size
                block("ts", cells_all, tiles_all, np.full(n, T_BOUNDS[0]), np.full(n, T_BOUNDS[1]))
            else:
                c, t = np.repeat(cells_all, 3), np.repeat(tiles_all, 3)
                layer = np.tile(np.arange(3), cells_all.size)
                n = c.size
                block("tsoil", c, t, np.full(n, T_BOUNDS[0]), np.full(n, T_BOUNDS[1]), layer)
        for prior in parameters:  # log-uniform priors are estimated as log(parameter)
            n = cells_veg.size
            lo, hi = (
                (np.log(prior.low), np.log(prior.high)) if prior.log else (prior.low, prior.high)
            )
            block(f"param:{prior.name}", cells_veg, tiles_veg, np.full(n, lo), np.full(n, hi))
        self.blocks = tuple(blocks)
        self.parameters = tuple(parameters)
        self.n_cells = int(cover.shape[0])

    @property
    def n_columns(self) -> int:
        return sum(b.cell.size for b in self.blocks)

    def sites(self) -> np.ndarray:
        """(M,) cell of each column."""
        return np.concatenate([b.cell for b in self.blocks]).astype(np.int64)

    def bounds(self) -> Bounds:
        lo = np.concatenate([b.lo for b in self.blocks])
        hi = np.concatenate([b.hi for b in self.blocks])
        return Bounds(torch.from_numpy(lo), torch.from_numpy(hi))

    def names(self) -> list[str]:
        """(M,) block name of each column."""
        return [b.name for b in self.blocks for _ in range(b.cell.size)]

    # ---- state <-> vector --------------------------------------------------------------------
    def _is_log(self, name: str) -> bool:
        return any(p.log and p.name == name.split(":", 1)[1] for p in self.parameters)

    def _param_index(self, name: str) -> int:
        return P.PARAMETER_NAMES.index(name.split(":", 1)[1])

    def to_vector(self, state: LandState, static: LandStatic) -> torch.Tensor:
        """E (member, M) from the state and the per-member parameters."""
        t = state.tensors
        parts = []
        for b in self.blocks:
            c, k = torch.from_numpy(b.cell), torch.from_numpy(b.tile)
            if b.name == "lai":
                parts.append(t["cleaf"][:, c, k] * self.sla[k])
            elif b.name == "tsoil":
                assert b.layer is not None
                parts.append(t["tsoil"][:, c, k, torch.from_numpy(b.layer)])
            elif b.name.startswith("param:"):
                value = static.params[:, c, k, self._param_index(b.name)]
                parts.append(value.log() if self._is_log(b.name) else value)
            else:
                parts.append(t[b.name][:, c, k])
        return torch.cat(parts, dim=1).to(torch.float64)

    def from_vector(
        self, E: torch.Tensor, state: LandState, static: LandStatic
    ) -> tuple[LandState, LandStatic]:
        """New state and static with the analysed columns written back (inputs untouched):
        leaf carbon = LAI / SLA per tile, and leaf nitrogen (where the state has it) plus the
        leaf-carbon increment / C:N."""
        tensors = dict(state.tensors)
        changed: dict[str, torch.Tensor] = {}
        params = static.params
        start = 0
        for b in self.blocks:
            x = E[:, start : start + b.cell.size]
            start += b.cell.size
            c, k = torch.from_numpy(b.cell), torch.from_numpy(b.tile)
            if b.name.startswith("param:"):
                if params is static.params:
                    params = params.clone()
                prior = next(p for p in self.parameters if p.name == b.name.split(":", 1)[1])
                value = x.exp() if prior.log else x
                params[:, c, k, prior.index] = value.clamp(prior.low, prior.high)
                continue
            key = "cleaf" if b.name == "lai" else b.name
            if key not in changed:
                changed[key] = tensors[key].clone()
            if b.name == "lai":
                changed[key][:, c, k] = x / self.sla[k]
            elif b.name == "tsoil":
                assert b.layer is not None
                changed[key][:, c, k, torch.from_numpy(b.layer)] = x
            else:
                changed[key][:, c, k] = x
        if "cleaf" in changed and NITROGEN in tensors:
            increment = (changed["cleaf"] - tensors["cleaf"]) / self.leaf_cn
            changed[NITROGEN] = tensors[NITROGEN] + increment
        tensors.update(changed)
        new_static = (
            static if params is static.params else dataclasses.replace(static, params=params)
        )
        return LandState(tensors), new_static


def select_members(state: LandState, members: slice) -> LandState:
    """The members ``members`` of every state tensor (views)."""
    return LandState({k: v[members] for k, v in state.tensors.items()})


def with_members(state: LandState, members: slice, part: LandState) -> LandState:
    """A copy of ``state`` whose members ``members`` are replaced by ``part``."""
    out = {}
    for k, v in state.tensors.items():
        nv = v.clone()
        nv[members] = part.tensors[k]
        out[k] = nv
    return LandState(out)
