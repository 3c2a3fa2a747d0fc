"""The land step: one place for what every tile backend does in a step.

A session's land state is tiles, (member, cell, tile) with one tile per land-cover class
(``surface.class_constants``). Both tile backends, the reference process model
(``emulators.reference.ReferenceBackend``) and the compiled emulators
(``emulators.compiled.emulator.EmulatorBackend``: ``torchscript``, ``aoti``), step their tiles
through the same sequence of named phases (:meth:`TileBackend.step`); they differ only in how they
predict the fluxes.

=============  ==========================================  ======================================
phase          what                                        where
=============  ==========================================  ======================================
clock          refuse a step length the backend cannot     ``TileBackend.check_clock`` (compiled:
               take                                        no emulator trained for ``dt``)
check          required forcing present, finite, in range  ``forcing.check_forcing``: once; the
                                                           session hands over ``CheckedForcing``
surface        radiation and roughness: albedo, z0, LAI,   ``surface.surface``
               water stress (exact equations)
predict        skin temperature, H, evaporation demand,    the backend: reference = conductances
               transpiration share, GPP (``Fluxes``)       + energy balance solve; compiled =
                                                           features + network
water          runoff, ET limited by water, W' exactly     ``budgets.water``
energy         Rn, G = Rn − LE − H exactly                 ``budgets.energy``
soil heat      the soil column conducts G                  ``budgets.soil_heat``
phenology      daily accumulators; at the end of a day,    ``daily.day_ends``, ``daily.leaf_carbon``
               leaf carbon advances                        (compiled: or the LAI emulator)
nitrogen       leaf nitrogen = leaf carbon / C:N of the    ``nitrogen.follow_carbon`` (after
               class, where the state has ``nleaf``        ``advance``, every backend)
cells          cover-weighted cell fields                  ``cells.aggregate`` (compiled: summed
                                                           from the rows, ``cells.CellSums``)
=============  ==========================================  ======================================

Physics stays in pure functions on tensors (units in their docstrings): ``emulators.physics``,
``emulators.constraints``, ``emulators.reference`` (soil, photosynthesis, phenology).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

import torch

from emulators.landstep.budgets import ClosedTiles, Fluxes, close
from emulators.landstep.cells import (
    CELL_FIELDS,
    LINEAR_FIELDS,
    CellSums,
    aggregate,
    soil_cover,
    soil_tiles,
)
from emulators.landstep.cover import Remapped, remap
from emulators.landstep.daily import Day, day_ends, leaf_carbon, reset
from emulators.landstep.forcing import CheckedForcing, check_forcing
from emulators.landstep.nitrogen import NITROGEN, follow_carbon, leaf_nitrogen, with_nitrogen
from emulators.landstep.surface import (
    LAKE_CAPACITY,
    SurfaceStatics,
    TileSurface,
    class_constants,
    initial_state,
    surface,
    surface_statics,
)
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor
Forcing = Mapping[str, Tensor]
#: (new state, fields): tile fields (member, cell, tile) or cell fields (member, cell)
StepResult = tuple[LandState, dict[str, Tensor]]

__all__ = [
    "CELL_FIELDS",
    "LAKE_CAPACITY",
    "LINEAR_FIELDS",
    "NITROGEN",
    "CellSums",
    "CheckedForcing",
    "ClosedTiles",
    "Day",
    "Fluxes",
    "Forcing",
    "Remapped",
    "StepResult",
    "SurfaceStatics",
    "TileBackend",
    "TileConfig",
    "TileSurface",
    "aggregate",
    "check_forcing",
    "class_constants",
    "close",
    "day_ends",
    "follow_carbon",
    "initial_state",
    "leaf_carbon",
    "leaf_nitrogen",
    "remap",
    "reset",
    "soil_cover",
    "soil_tiles",
    "surface",
    "surface_statics",
    "with_nitrogen",
]


class TileConfig(Protocol):
    """What the land step reads from a tile backend's configuration."""

    @property
    def soil(self) -> SoilConfig: ...

    @property
    def validate_forcing(self) -> bool: ...


ConfigT = TypeVar("ConfigT", bound=TileConfig)


class TileBackend(abc.ABC, Generic[ConfigT]):
    """The ``LandBackend`` step shared by the tile backends; a subclass implements
    ``initial_state`` and :meth:`advance` (its phases from surface to phenology) and may refuse
    clocks in :meth:`check_clock`."""

    name: str
    config: ConfigT
    #: cells per block of :meth:`step` (0: the whole domain at once). Elementwise tile physics
    #: with hundreds of (member, cell, tile) temporaries is memory-bound once a temporary
    #: outgrows the core's L2 cache; stepping blocks of cells keeps them cache-resident
    #: (docs/benchmarks.md, "per-cell cost"). Every cell's arithmetic is the same either way.
    cell_block: int = 0

    @abc.abstractmethod
    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        """A spun-up-enough initial state for ``static`` at ``clock`` (``surface.initial_state``
        plus the backend's own state)."""

    def step(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """``LandBackend.step``: the tile step with cell fields (:meth:`advance_cells`), over
        blocks of :attr:`cell_block` cells when the domain is larger (results concatenated on
        the cell axis; the clock and forcing checks run once, on the whole domain)."""
        n, block = static.n_cells, self.cell_block
        self.check_clock(clock)
        if self.config.validate_forcing:
            check_forcing(forcing)
        if block <= 0 or n <= block or not _cell_axis(state, forcing, n):
            return self._advance(state, static, forcing, clock, cells=True)
        states: list[LandState] = []
        fields: list[dict[str, Tensor]] = []
        for start in range(0, n, block):
            cells = slice(start, min(n, start + block))
            part = static.cells(cells)
            new_state, cell_fields = self._advance(
                LandState({k: v[:, cells] for k, v in state.tensors.items()}),
                part,
                {k: v[:, cells] for k, v in forcing.items()},
                clock,
                cells=True,
            )
            states.append(new_state)
            fields.append(cell_fields)
        return (
            LandState({k: torch.cat([s.tensors[k] for s in states], 1) for k in states[0].tensors}),
            {k: torch.cat([f[k] for f in fields], 1) for k in fields[0]},
        )

    def step_tiles(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """The step at tile level (tile fields (member, cell, tile)): clock, check, then the
        backend's phases (:meth:`advance`). Inputs are not modified."""
        self.check_clock(clock)
        if self.config.validate_forcing:
            check_forcing(forcing)
        return self._advance(state, static, forcing, clock)

    def _advance(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Forcing,
        clock: StepClock,
        cells: bool = False,
    ) -> StepResult:
        """:meth:`advance` (with ``cells``: :meth:`advance_cells`), then the nitrogen phase:
        leaf nitrogen follows leaf carbon."""
        advance = self.advance_cells if cells else self.advance
        new_state, fields = advance(state, static, forcing, clock)
        if NITROGEN in state.tensors:
            tensors = dict(new_state.tensors)
            tensors[NITROGEN] = leaf_nitrogen(tensors["cleaf"])
            new_state = LandState(tensors)
        return new_state, fields

    def change_cover(
        self, state: LandState, static: LandStatic, cover: Tensor
    ) -> tuple[LandState, LandStatic, Remapped]:
        """The land cover of ``static`` becomes ``cover`` (cell, class) [1] (checked by the
        caller): the tile state remapped with water, heat and leaf carbon conserved per cell
        (``cover.remap``; leaf nitrogen moves with carbon), and the static fields with the new
        cover (same parameters). Inputs are not modified."""
        const = class_constants(self.config.soil)
        new_cover = cover.to(torch.float64)
        out = remap(state.tensors, static.cover, new_cover, const, self.config.soil)
        new_static = LandStatic(static.lat, static.lon, new_cover, static.params)
        return LandState(out.state), new_static, out

    def check_clock(self, clock: StepClock) -> None:
        """Refuse a step this backend cannot take, before anything else (default: none)."""
        del clock

    @abc.abstractmethod
    def advance(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """Surface, predict, water, energy, soil heat and phenology of checked ``forcing``:
        the new state and the tile fields (member, cell, tile)."""

    def advance_cells(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """:meth:`advance` with the cell fields (member, cell) instead of the tile fields
        (default: ``aggregate`` of the tile fields; a backend that computes rows can sum them
        into cells without building dense tile fields)."""
        new_state, tiles = self.advance(state, static, forcing, clock)
        return new_state, aggregate(tiles, static.cover)


def _cell_axis(state: LandState, forcing: Forcing, n: int) -> bool:
    """Every state and forcing tensor has its cells on axis 1 (member, cell, ...), so the step
    can be cut into blocks of cells."""
    tensors = [*state.tensors.values(), *forcing.values()]
    return all(t.dim() >= 2 and t.shape[1] == n for t in tensors)
