"""The emulator backend's step on blocks of tile rows, and its phenology phase.

The backend gathers the active tiles of a block of rows from the dense (member, cell, tile)
state, steps them (features → network → constraint layer → phenology) and scatters them back
before the next block: every float64 temporary of the constraint layer is then one block long,
so it stays in the core's cache instead of streaming through memory (the same reason the
reference model steps blocks of cells: ``landstep.TileBackend.cell_block``). Blocks start at
multiples of :data:`ROW_BLOCK_MULTIPLE` rows, so torch's vectorised loops group the rows of a
block exactly as they group the whole domain's, and every row's arithmetic is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from emulators import landstep
from emulators.compiled.closure import N_FLUX_OUTPUTS, Closed
from emulators.compiled.features import static_flux_features
from emulators.compiled.flux_step import NET_DTYPE, RowInputs
from emulators.compiled.lai_step import LAI_ACCUMULATORS, accumulate, advance_leaf_carbon
from emulators.compiled.phases import Phase, no_phases
from emulators.compiled.tiles import Rows
from emulators.protocol import LandStatic, StepClock
from emulators.reference import phenology
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor
#: row blocks start at multiples of this (2 × the 8 float64 lanes of AVX-512, with room to
#: spare; as ``reference.model.CELL_BLOCK_MULTIPLE``)
ROW_BLOCK_MULTIPLE = 64


@dataclass(frozen=True)
class RowStatics:
    """What of a domain's rows changes only with its cover and parameters, kept by the backend
    between steps: the rows; per row the class constants, the parameters, the
    ``static_flux_features`` (network dtype), the ``landstep.surface_statics``, the cover
    fraction and the soil flag; each cell's soil cover (``landstep.CellSums``); and the entries'
    ``Rows.slots``. Valid while ``cover`` and ``params`` are the same tensors, unmodified
    (``key``: members and the parameters' version counter)."""

    cover: Tensor
    params: Tensor
    key: tuple[int, int]
    rows: Rows
    const: dict[str, Tensor]
    params_rows: Tensor
    features: Tensor
    weight: Tensor
    soil: Tensor
    total_soil: Tensor
    slots: Tensor
    surface: landstep.SurfaceStatics


def statics(
    cached: RowStatics | None,
    static: LandStatic,
    const: dict[str, Tensor],
    all_tiles: bool,
    soil_config: SoilConfig,
) -> RowStatics:
    """The rows of ``static`` (``Rows.active``) and what of them changes only with the cover and
    parameters: ``cached`` when it was made for the same cover, members and parameter tensor at
    the same version counter; parameters made in inference mode have no version counter, so
    what depends on them is rebuilt every step (the rows themselves only with the cover)."""
    params = static.params
    tracked = not params.is_inference()
    key = (static.n_members, params._version if tracked else -1)
    if (
        tracked
        and cached is not None
        and cached.cover is static.cover
        and cached.params is params
        and cached.key == key
    ):
        return cached
    if cached is not None and cached.cover is static.cover and cached.key[0] == key[0]:
        rows, row_const = cached.rows, cached.const
        weight, soil, total_soil = cached.weight, cached.soil, cached.total_soil
        slots = cached.slots
    else:
        rows = Rows.active(static.cover, static.n_members, all_tiles)
        row_const = {k: v[rows.tile] for k, v in const.items()}
        weight = static.cover.to(torch.float64)[rows.cell, rows.tile]
        soil = landstep.soil_tiles(torch.float64)[rows.tile]
        total_soil = landstep.soil_cover(static.cover)
        slots = rows.slots()
    m, n, k = rows.shape
    row_params = rows.gather(params.reshape(m, n, k, -1))
    features = static_flux_features(row_params, rows.tile, NET_DTYPE)
    surface = landstep.surface_statics(row_params, row_const, soil_config, torch.float64)
    return RowStatics(
        static.cover,
        params,
        key,
        rows,
        row_const,
        row_params,
        features,
        weight,
        soil,
        total_soil,
        slots,
        surface,
    )


def surface_rows(surface: landstep.SurfaceStatics, rows: slice) -> landstep.SurfaceStatics:
    """The ``rows`` of ``surface`` (views)."""
    return landstep.SurfaceStatics(surface.vgcov[rows], surface.z0[rows], surface.theta_cr[rows])


def run_flux(
    net: Callable[..., tuple[Tensor, Tensor, Tensor]],
    x: Tensor,
    h: Tensor,
    c: Tensor,
    chunk: int,
    device: torch.device,
    phase: Phase = no_phases,
) -> tuple[Tensor, Tensor, Tensor]:
    """(y, h, c) of the recurrent flux network ``net`` over rows ``x``, ``h``, ``c`` in calls of
    ``chunk`` rows on ``device``; joining the calls' outputs is timed as "scatter" (it is not
    the network's work), h and c each right after a zero row in memory, so that they are the
    new recurrent state's table as they are (``dense_rows``)."""
    ys, hs, cs = [], [], []
    for s in range(0, x.shape[0], chunk):
        y, h1, c1 = net(
            x[s : s + chunk].to(device), h[s : s + chunk].to(device), c[s : s + chunk].to(device)
        )
        ys.append(y.cpu())
        hs.append(h1.cpu())
        cs.append(c1.cpu())
    if not ys:
        return torch.zeros(0, N_FLUX_OUTPUTS), h, c
    if len(ys) == 1:
        return ys[0], hs[0], cs[0]
    with phase("scatter"):  # h and c after a zero row: the new state's table (``dense_rows``)
        zero_h, zero_c = hs[0].new_zeros(1, *hs[0].shape[1:]), cs[0].new_zeros(1, *cs[0].shape[1:])
        return torch.cat(ys), torch.cat([zero_h, *hs])[1:], torch.cat([zero_c, *cs])[1:]


def row_blocks(n: int, block: int) -> list[slice]:
    """Slices of ``block`` rows covering ``n`` rows (one slice when ``block`` is 0 or ≥ ``n``;
    a domain without rows is one empty slice, so a step still runs and returns empty fields)."""
    if block <= 0 or n <= block:
        return [slice(0, n)]
    return [slice(s, min(n, s + block)) for s in range(0, n, block)]


def gpp_vegetated(gpp: Tensor, params: Tensor, const: dict[str, Tensor]) -> Tensor:
    """GPP per vegetated area [kg C m-2 s-1] from the tile GPP (the reference's pool)."""
    vg = params[:, 4] * const["vegetated"]
    return torch.where(vg > 0, gpp / vg.clamp_min(1e-6), torch.zeros_like(gpp))


def daily_sums(
    acc: dict[str, Tensor],
    acc_gpp: Tensor,
    inp: RowInputs,
    closed: Closed,
    soil: SoilConfig,
    dt: float,
) -> tuple[dict[str, Tensor], Tensor]:
    """(the ``LAI_ACCUMULATORS``, the GPP pool [kg C m-2]) after a step of ``dt`` seconds."""
    acc = accumulate({k: acc[k] for k in LAI_ACCUMULATORS}, inp, closed, soil, dt)
    return acc, acc_gpp + gpp_vegetated(closed.fields["gpp"], inp.params, inp.const) * dt


#: ``daily_sums``' signature (``inductor`` compiles it)
DailySums = Callable[
    [dict[str, Tensor], Tensor, RowInputs, Closed, SoilConfig, float],
    tuple[dict[str, Tensor], Tensor],
]


def phenology_phase(
    *,
    run_lai: Callable[[Tensor], Tensor] | None,
    inp: RowInputs,
    closed: Closed,
    acc: dict[str, Tensor],
    acc_gpp: Tensor,
    lat: Tensor,
    soil: SoilConfig,
    clock: StepClock,
    sums: DailySums = daily_sums,
) -> dict[str, Tensor]:
    """The phenology phase of rows: the daily accumulators after this step and, at the end of a
    day, the new leaf carbon (the LAI emulator ``run_lai``, or with None the reference phenology
    fed by the emulated GPP) and the accumulators reset. Returns ``cleaf``, ``acc_gpp`` and the
    ``LAI_ACCUMULATORS``. ``acc`` holds the accumulators before the step, ``lat`` (row,)
    degrees north; ``sums``: :func:`daily_sums` (or it compiled)."""
    acc, acc_gpp = sums(acc, acc_gpp, inp, closed, soil, clock.dt)
    cleaf = inp.cleaf
    if landstep.day_ends(clock):
        if run_lai is not None:
            cleaf = advance_leaf_carbon(
                run_lai, acc, cleaf, closed.w, inp.params, inp.tile, lat, inp.const, clock
            )
        else:
            period = acc["acc_time"].clamp_min(1.0)
            day = landstep.Day(
                gpp=acc_gpp,
                t_mean=acc["acc_tas"] / period,
                fw_mean=acc["acc_fw"] / period,
                days=1.0,
                in_spring=phenology.spring(lat, clock.day_of_year),
            )
            cleaf = landstep.leaf_carbon(cleaf, day, inp.const)
        acc = landstep.reset(acc)
        acc_gpp = torch.zeros_like(acc_gpp)
    return {"cleaf": cleaf, "acc_gpp": acc_gpp, **acc}


def scatter_fields(
    dense: dict[str, Tensor], fields: dict[str, Tensor], idx: Tensor, size: int
) -> None:
    """Write the tile fields of rows ``idx`` into ``dense`` (flat (member·cell·tile,) tensors of
    ``size``, made on first use: zeros, z0 1 m, where a tile has no row)."""
    for key, v in fields.items():
        if key not in dense:
            dense[key] = torch.full((size,), 1.0 if key == "z0" else 0.0, dtype=v.dtype)
        dense[key].index_copy_(0, idx, v)


def dense_rows(blocks: list[Tensor], slots: Tensor) -> tuple[Tensor, Tensor]:
    """(dense, rows): the dense (member·cell·tile, …) tensor with the rows of ``blocks`` (in row
    order) at their entries and zeros elsewhere, and those rows as one tensor. ``slots``
    (``Rows.slots``) indexes a zero row followed by the rows, so the dense tensor is written in
    one pass — not filled with zeros and then written again at the rows, which for the
    recurrent state (most of a step's bytes) costs a second pass through memory. One block
    that already follows a zero row in memory (``run_flux`` joins its calls' outputs so) is
    that table as it is; else the zero row and the blocks are joined."""
    table = _after_zero_row(blocks[0]) if len(blocks) == 1 else None
    if table is None:
        first = blocks[0]
        table = torch.cat([first.new_zeros(1, *first.shape[1:]), *blocks])
    return table.index_select(0, slots), table[1:]


def _after_zero_row(rows: Tensor) -> Tensor | None:
    """The table (zero row, ``rows``) as a view, if ``rows`` is contiguous and the row right
    before it in its storage is all +0.0 (every bit of ``new_zeros``); else None."""
    width = rows[0].numel() if rows.shape[0] else 0
    if width == 0 or not rows.is_contiguous() or rows.storage_offset() < width:
        return None
    shape = (rows.shape[0] + 1, *rows.shape[1:])
    table = rows.as_strided(shape, rows.stride(), rows.storage_offset() - width)
    head = table[0]
    return table if not bool((head != 0).any() | torch.signbit(head).any()) else None


def own(v: Tensor, inputs: list[Tensor]) -> Tensor:
    """``v``, or a copy of it where it shares memory with one of ``inputs`` (a field the step
    passed through unchanged): a step's results never alias its inputs."""
    ptr = v.untyped_storage().data_ptr()
    if any(x.untyped_storage().data_ptr() == ptr for x in inputs):
        return v.clone()
    return v
