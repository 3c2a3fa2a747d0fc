"""Land-cover change: the tile state remapped from old to new class fractions, conserving the
water, heat and leaf carbon of every cell (pure functions, tensors in and out).

The land state is tiles, one per class, each with its own per-area state (``surface``): a cell's
store of a quantity is the cover-weighted sum over its tiles, Σ_k f_k x_k. When the fractions
change from ``f`` to ``f'`` (CLM's dynamic landunits / JSBACH's cover change, simplified):

* a **shrinking or unchanged** tile (f'_k ≤ f_k) keeps its per-area state; the area it loses,
  s_k = f_k − f'_k, puts its content s_k x_k into the cell's pool;
* a **growing** tile (g_k = f'_k − f_k > 0, new tiles included) keeps what it had, f_k x_k, and
  receives the pool on its new area: g_k · a_k · v, where a_k is the tile's *receiving weight*
  and v one intensive value per cell, v = clamp(pool / Σ_j g_j a_j, lo, hi); its new per-area
  state is (f_k x_k + g_k a_k v) / f'_k;
* what the growing tiles cannot take (the clamp) is **released**: returned per cell, so that
  Σ_k f'_k x'_k + released = Σ_k f_k x_k exactly (to float64 round-off).

The conserved quantities, their weights and bounds:

==========  ==============================  ===================  ==========================
quantity    per-area content of tile k      weight a_k           v and its bounds
==========  ==============================  ===================  ==========================
water       ``w`` [kg m-2]                  capacity [kg m-2]    relative saturation, [0, 1]
heat        c_s h_k dz_i (T_ik − T_ref)     h_k (heat capacity   T − T_ref [K], within the
            per soil layer i [J m-2],       scale) per layer     pool's own layer
            T_ref = 273.15 K                                     temperatures
leaf C      ``cleaf`` [kg C m-2]            LAI_max/SLA × veg.   fraction of the carbon
                                            [kg C m-2]           capacity, [0, 1]
==========  ==============================  ===================  ==========================

So water stays in the ground unless the growing tiles are full (the excess is released: it
leaves the cell as runoff, the dynbal runoff of CLM); heat keeps the temperatures in the range
of the pooled tiles (the rest, nonzero only when heat capacities differ, leaves as a heat flux);
heat released is negative (drawn in) when the growing tiles' larger heat capacity needs more
than the pool to reach the pool's coldest temperature; leaf carbon goes to growing vegetated
tiles up to their LAI_max, the rest is the land-use
carbon release to the atmosphere (CMIP's ``fLuc`` integrated over the change). Heat content is
stated relative to T_ref because with unequal heat capacities the heat moved by a change of area
depends on the reference.

Other state (skin temperature, daily accumulators, recurrent emulator state, any further
(member, cell, tile, …) tensor) is intensive: a growing tile's value becomes the area-weighted
mean of what it had and of the pool (the area-weighted mean of the shrinking parts). A leaf
nitrogen pool ``nleaf`` [kg N m-2], where present, moves with leaf carbon (the same share of
the pool is received, so C:N of the moved matter is kept).

Cells whose fractions do not change come back bitwise unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor

#: the reference temperature of the heat content [K]
T_REF = C.T_FREEZE
#: the conserved tile state variables (everything else is intensive)
CONSERVED = ("w", "tsoil", "cleaf")
NITROGEN = "nleaf"


@dataclass(frozen=True)
class Remapped:
    """The new tile state and, per (member, cell), what left the cell in the change.

    released_water [kg m-2], released_heat [J m-2], released_carbon [kg C m-2] (and
    released_nitrogen [kg N m-2] with ``nleaf``); ``residual_*`` are the conservation residuals
    |Σ f' x' + released − Σ f x| in the same units, computed in float64."""

    state: dict[str, Tensor]
    released: dict[str, Tensor]
    residual: dict[str, Tensor]


def _move(
    x: Tensor, f_old: Tensor, f_new: Tensor, weight: Tensor, lo: Tensor | float, hi: Tensor | float
) -> tuple[Tensor, Tensor]:
    """One conserved per-area content ``x`` (member, cell, tile): returns (new x, released
    (member, cell)). ``weight`` broadcasts
    against ``x``; ``lo``/``hi`` bound the intensive value v (per (member, cell) or scalars)."""
    shrink = (f_old - f_new).clamp_min(0.0)
    grow = (f_new - f_old).clamp_min(0.0)
    pool = (shrink * x).sum(-1)
    room = (grow * weight).sum(-1)
    v = torch.where(room > 0, pool / torch.where(room > 0, room, 1.0), torch.zeros_like(pool))
    v = torch.minimum(torch.maximum(v, torch.as_tensor(lo, dtype=v.dtype)), torch.as_tensor(hi))
    v = torch.where(room > 0, v, torch.zeros_like(v))
    received = grow * weight * v.unsqueeze(-1)
    new = torch.where(grow > 0, (f_old * x + received) / torch.where(grow > 0, f_new, 1.0), x)
    return new, pool - received.sum(-1)


def _mix(x: Tensor, f_old: Tensor, f_new: Tensor) -> Tensor:
    """Intensive state (member, cell, tile, …): growing tiles take the area-weighted mean of
    their old value and of the pool's (the shrinking parts'); the others keep theirs."""
    extra = x.dim() - 3
    shape = (*f_old.shape, *([1] * extra))
    fo, fn = f_old.reshape(shape), f_new.reshape(shape)
    shrink, grow = (fo - fn).clamp_min(0.0), (fn - fo).clamp_min(0.0)
    total = shrink.sum(2, keepdim=True)
    xd = x.to(torch.float64)
    pool_mean = (shrink * xd).sum(2, keepdim=True) / torch.where(total > 0, total, 1.0)
    mixed = (fo * xd + grow * pool_mean) / torch.where(grow > 0, fn, 1.0)
    return torch.where(grow > 0, mixed.to(x.dtype), x)


def cell_totals(
    state: Mapping[str, Tensor], cover: Tensor, const: Mapping[str, Tensor], soil: SoilConfig
) -> dict[str, Tensor]:
    """Per (member, cell) stores: water [kg m-2], soil heat relative to T_REF [J m-2], leaf
    carbon [kg C m-2] (and leaf nitrogen [kg N m-2] with ``nleaf``) of tile state ``state`` under
    fractions ``cover`` (cell, tile) or (member, cell, tile)."""
    dz = torch.tensor(soil.layer_thickness, dtype=torch.float64)
    hc = soil.heat_capacity * const["heat_capacity_scale"]
    heat = hc * ((state["tsoil"].to(torch.float64) - T_REF) * dz).sum(-1)
    out = {
        "water": (cover * state["w"]).sum(-1),
        "heat": (cover * heat).sum(-1),
        "carbon": (cover * state["cleaf"]).sum(-1),
    }
    if NITROGEN in state:
        out["nitrogen"] = (cover * state[NITROGEN]).sum(-1)
    return out


def remap(
    state: Mapping[str, Tensor],
    f_old: Tensor,
    f_new: Tensor,
    const: Mapping[str, Tensor],
    soil: SoilConfig,
) -> Remapped:
    """The tile state after the cover changes from ``f_old`` to ``f_new`` (cell, tile) fractions
    of the cells' land part (rows sum to 1), by the rules of the module docstring. ``state``:
    (member, cell, tile, …) tensors with at least ``w`` [kg m-2], ``tsoil`` (…, 3) [K] and
    ``cleaf`` [kg C m-2]; ``const``: the class constants (``surface.class_constants``). Inputs
    are not modified; cells with f_new == f_old keep their state bitwise."""
    fo = f_old.to(torch.float64).expand_as(state["w"])
    fn = f_new.to(torch.float64).expand_as(state["w"])
    w, tsoil, cleaf = state["w"], state["tsoil"], state["cleaf"]
    new: dict[str, Tensor] = {}
    released: dict[str, Tensor] = {}

    new["w"], released["water"] = _move(w, fo, fn, const["capacity"], 0.0, 1.0)

    # heat, layer by layer: content h_k (T − T_ref) (per c_s dz_i); the received temperature
    # stays within the pool's own temperatures
    hc = const["heat_capacity_scale"]
    dz = soil.layer_thickness
    shrinking = (fo - fn) > 0
    layers, heat_out = [], torch.zeros_like(released["water"])
    for i in range(tsoil.shape[-1]):
        t = tsoil[..., i] - T_REF
        inf = torch.full_like(t, torch.inf)
        lo = torch.where(shrinking, t, inf).amin(-1)
        hi = torch.where(shrinking, t, -inf).amax(-1)
        lo, hi = torch.where(torch.isfinite(lo), lo, 0.0), torch.where(torch.isfinite(hi), hi, 0.0)
        e, rel = _move(hc * t, fo, fn, hc, lo, hi)
        grow = (fn - fo) > 0
        layers.append(torch.where(grow, e / hc + T_REF, tsoil[..., i]))
        heat_out = heat_out + rel * soil.heat_capacity * dz[i]
    new["tsoil"] = torch.stack(layers, -1)
    released["heat"] = heat_out

    cmax = const["lai_max"] / const["sla"] * const["vegetated"]
    new["cleaf"], released["carbon"] = _move(cleaf, fo, fn, cmax, 0.0, 1.0)
    if NITROGEN in state:  # moves with carbon: the received share of the pools is the same
        n = state[NITROGEN]
        shrink, grow = (fo - fn).clamp_min(0.0), fn > fo
        pool_n, pool_c = (shrink * n).sum(-1), (shrink * cleaf).sum(-1)
        per_c = torch.where(pool_c > 0, pool_n / torch.where(pool_c > 0, pool_c, 1.0), 0.0)
        recv_n = torch.where(grow, fn * new["cleaf"] - fo * cleaf, 0.0) * per_c.unsqueeze(-1)
        new[NITROGEN] = torch.where(grow, (fo * n + recv_n) / torch.where(grow, fn, 1.0), n)
        released["nitrogen"] = pool_n - recv_n.sum(-1)

    for key, value in state.items():
        if key not in new:
            new[key] = _mix(value, f_old.to(torch.float64).expand_as(w), fn)

    # cells without a change: bitwise the old state
    same = (fo == fn).all(-1)
    for key, value in new.items():
        mask = same.reshape(*same.shape, *([1] * (value.dim() - 2)))
        new[key] = torch.where(mask, state[key], value)
    for key in released:
        released[key] = torch.where(same, torch.zeros_like(released[key]), released[key])

    before = cell_totals(state, fo, const, soil)
    after = cell_totals(new, fn, const, soil)
    residual = {k: (after[k] + released[k] - before[k]).abs() for k in before}
    return Remapped(new, released, residual)
