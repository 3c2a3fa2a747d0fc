"""The water tile of the emulator backends from the reference model's own physics.

The water/ice class is an open-water mixed layer (albedo 0.08, 8× the soil column's heat
capacity, no canopy, no soil-water stress). Its surface energy balance is the reference's
Newton solve (``reference.energy``) with conductances that need no canopy: at LAI 0 and
vegetation cover 0 the stomatal and leaf boundary-layer terms drop out exactly. So the
emulator backends take the water rows' fluxes (T_s, H, evaporation demand; transpiration share
and GPP 0) from that physics instead of the flux network, and the shared constraint layer
closes them as it closes the network's. The same state gives the reference's water-tile
values to round-off (tested), while the network keeps the land tiles.

Why (docs/emulators.md, "Where the hourly LSTM's LE misses come from"): the water tile was the
largest part of the hourly LSTM's LE misses at the far-off held-out sources (Italy: LE RMSE 36
W m⁻² against 3.7–6.4 W m⁻² on the land tiles, concentrated at midday), while solving it costs
one tile's energy balance per water row. ``OpenWater.config`` carries the measurement heights
(the reference's defaults in sessions; the source's heights in evaluations).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from emulators import parameters as P
from emulators import physics
from emulators.landstep import Fluxes, TileSurface
from emulators.reference.energy import Exchange, solve_energy_balance, turbulent_fluxes
from emulators.reference.model import CELL_BLOCK_MULTIPLE, ReferenceConfig, energy_terms, exchange
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor
WATER = int(P.LandCover.WATER_ICE)


@dataclass(frozen=True)
class OpenWater:
    """Water rows from physics; ``config``: measurement heights and the Newton iteration counts
    (``ReferenceConfig``; its soil is not used: the step's soil config is)."""

    config: ReferenceConfig = field(default_factory=ReferenceConfig)

    def fluxes(
        self,
        forcing: dict[str, Tensor],
        ts_prev: Tensor,
        w: Tensor,
        tsoil: Tensor,
        params: Tensor,
        surf: TileSurface,
        const: dict[str, Tensor],
        soil: SoilConfig,
        dt: float,
    ) -> Fluxes:
        """The reference's fluxes of water rows (all arguments (row, …) of those rows only)."""
        ex = exchange(forcing, surf, surf.z0, params, torch.zeros_like(w), const, self.config)
        eb = energy_terms(forcing, surf.albedo, w, tsoil, dt, const, soil)
        cfg = self.config
        t_s, g = solve_energy_balance(
            ts_prev, eb, ex, cfg.newton_iterations, cfg.stability_updates, water_conductances
        )
        return turbulent_fluxes(t_s, g, eb, torch.zeros_like(w))


def water_conductances(t_s: Tensor, ex: Exchange) -> tuple[Tensor, Tensor, Tensor]:
    """``reference.energy.conductances`` of water rows, every bit: with vegetation cover and
    LAI 0 its canopy terms are exact zeros (0 · g_T, 0 / (r_a + 1/g_bh)) added to 1/r_a, so
    g_H = g_E = 1/r_a with r_a the stability-corrected aerodynamic resistance, and g_T = 0
    (tested against ``conductances``). 21 operations instead of the general form's 51 (torch
    profiler, top level), in the four of the Newton solve's iterations that evaluate them."""
    stab = physics.stability_factor(physics.bulk_richardson(t_s, ex.ta, ex.wind, ex.height_wind))
    g = 1.0 / (ex.ra_neutral / stab)
    return g, g, torch.zeros_like(g)


def rows(tile: Tensor) -> Tensor:
    """Indices of the water rows of ``tile`` (row,) class indices."""
    return torch.nonzero(tile == WATER).reshape(-1)


def padded(index: Tensor) -> Tensor:
    """``index`` with its last entry repeated up to a multiple of ``CELL_BLOCK_MULTIPLE`` (64).
    torch computes the last ``n mod 2·lanes`` elements of a vectorised loop with the scalar
    exp/log/pow (``ReferenceConfig.cell_block``), so without padding a water row's last bits
    would depend on how many water rows a call has; padded, every row takes the vector path, and
    row blocks (``row_step``) give every bit of the whole-domain step (tested)."""
    extra = -index.numel() % CELL_BLOCK_MULTIPLE
    return torch.cat([index, index[-1:].expand(extra)]) if extra else index


def select_surface(surf: TileSurface, index: Tensor) -> TileSurface:
    """The rows ``index`` of every field of ``surf``."""
    return TileSurface(
        **{f.name: getattr(surf, f.name).index_select(0, index) for f in dataclasses.fields(surf)}
    )


def replace(fluxes: Fluxes, index: Tensor, exact: Fluxes) -> Fluxes:
    """``fluxes`` with rows ``index`` taken from ``exact``."""
    return Fluxes(
        **{
            f.name: getattr(fluxes, f.name).index_copy(0, index, getattr(exact, f.name))
            for f in dataclasses.fields(fluxes)
        }
    )


def first(fluxes: Fluxes, n: int) -> Fluxes:
    """The first ``n`` rows of every field of ``fluxes``."""
    return Fluxes(**{f.name: getattr(fluxes, f.name)[:n] for f in dataclasses.fields(fluxes)})
