"""One flux-emulator step on tile rows: exact surface diagnostics → features → network →
constraint layer. Shared by training (differentiable, float32) and serving (float64 closure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from emulators import landstep
from emulators.compiled import closure, open_water
from emulators.compiled.features import HEIGHT_FEATURES, N_FLUX_FEATURES, flux_features
from emulators.compiled.phases import Phase, no_phases
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor
#: ``net(x, h, c) -> (y, h, c)`` (the recurrent flux emulator's calling convention)
RecurrentNet = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
#: the dtype the flux networks take their features in
NET_DTYPE = torch.float32


@dataclass(frozen=True)
class RowInputs:
    """Per-row inputs of a step (all (row,) unless stated)."""

    forcing: dict[str, Tensor]  # registry forcing fields
    w: Tensor  # soil water [kg m-2]
    ts_prev: Tensor  # skin temperature of the previous step [K]
    tsoil: Tensor  # (row, 3) soil temperatures [K]
    cleaf: Tensor  # leaf carbon [kg C m-2]
    params: Tensor  # (row, 12)
    tile: Tensor  # class index, int64
    const: dict[str, Tensor]  # class constants gathered per row
    doy: Tensor  # day of year
    local_hour: Tensor | None  # local solar hour [h]; None at daily steps (features)
    #: (row, N_STATIC_FLUX_FEATURES) ``static_flux_features`` of the rows, where the caller
    #: keeps them between steps (they change only with the cover and parameters); None: computed
    static_features: Tensor | None = None
    #: ``landstep.surface_statics`` of the rows, where the caller keeps them; None: computed
    surface_statics: landstep.SurfaceStatics | None = None
    #: (row, 2) the forcing's (wind, temperature) measurement heights [m], for a network with
    #: the height features (``features.HEIGHT_FEATURES``); None: a network without them
    heights: Tensor | None = None


def takes_heights(net: object) -> bool:
    """Whether flux network ``net`` (a ``FluxLSTM``, its TorchScript, an ensemble of them)
    takes the measurement heights: its input normaliser ends with ``HEIGHT_FEATURES``."""
    mean = getattr(getattr(net, "inputs", None), "mean", None)
    return mean is not None and int(mean.shape[0]) == N_FLUX_FEATURES + len(HEIGHT_FEATURES)


def features(
    inp: RowInputs, soil: SoilConfig, dtype: torch.dtype | None = None
) -> tuple[Tensor, landstep.TileSurface]:
    """(features (row, F), exact surface diagnostics) of a step; with ``dtype`` the features
    are written in that dtype (``flux_features``), every bit as computing and then casting."""
    surf = landstep.surface(inp.w, inp.cleaf, inp.params, inp.const, soil, inp.surface_statics)
    x = flux_features(
        inp.forcing,
        albedo=surf.albedo,
        theta_rel=inp.w / inp.const["capacity"],
        lai=surf.lai,
        f_w=surf.f_w,
        ts_prev=inp.ts_prev,
        tsoil=inp.tsoil,
        params=inp.params,
        tile=inp.tile,
        doy=inp.doy,
        local_hour=inp.local_hour,
        static=inp.static_features,
        dtype=dtype,
        heights=inp.heights,
    )
    return x, surf


@dataclass(frozen=True)
class StepKernels:
    """The physics of a step around its network: ``features`` (:func:`features`), ``water``
    (``open_water.OpenWater.fluxes``, called with the ``OpenWater`` first) and ``close``
    (``closure.close``). :data:`EAGER` runs them as written (every bit of the reference's
    arithmetic); ``emulators.compiled.inductor`` compiles them (the ``fused`` backend's)."""

    features: Callable[..., tuple[Tensor, landstep.TileSurface]]
    water: Callable[..., landstep.Fluxes]
    close: Callable[..., closure.Closed]


#: the physics as written
EAGER = StepKernels(features, open_water.OpenWater.fluxes, closure.close)


def step(
    net: RecurrentNet,
    inp: RowInputs,
    h: Tensor,
    c: Tensor,
    soil: SoilConfig,
    dt: float,
    net_dtype: torch.dtype = NET_DTYPE,
    phase: Phase = no_phases,
    water: open_water.OpenWater | None = None,
    spin_up: int = 0,
    kernels: StepKernels = EAGER,
) -> tuple[closure.Closed, Tensor, Tensor, Tensor]:
    """(closed fields, raw predictions (row, 5), h, c) of one step; ``phase`` times its parts
    ("features", "network", "closure"; ``emulators.compiled.phases``; finding the rows to spin
    up is "features", their network calls "network"). With ``water``, the
    water rows' fluxes come from the reference's physics (``open_water``), not the network.
    ``spin_up``: rows that have never stepped first get their recurrent state spun up
    (:func:`spin_up_state`). ``kernels``: the physics around the network."""
    with phase("features"):
        x, surf = kernels.features(inp, soil, net_dtype)
        fresh = never_stepped(h, c) if spin_up > 0 else None
    with phase("network"):
        if fresh is not None:
            h, c = spin_up_rows(net, x, h, c, fresh, spin_up)
        y, h, c = net(x, h, c)
    with phase("closure"):
        exact = None if water is None else water_rows(water, inp, surf, soil, dt, kernels.water)
        closed = kernels.close(
            y,
            forcing=inp.forcing,
            w=inp.w,
            tsoil=inp.tsoil,
            surf=surf,
            const=inp.const,
            soil=soil,
            dt=dt,
            exact=exact,
        )
    return closed, y, h, c


def spin_up_state(
    net: RecurrentNet, x: Tensor, h: Tensor, c: Tensor, iterations: int
) -> tuple[Tensor, Tensor]:
    """(h, c) with the rows that have never stepped (:func:`never_stepped`: a new session, a
    resumed physical state without recurrent state, a tile getting cover for the first time)
    spun up: ``iterations`` calls of ``net`` on this step's features ``x`` held fixed, outputs
    discarded — the recurrent counterpart of spinning a land model up on repeated forcing, so
    the first step does not start from a state the network never saw in training. Other rows
    and the inputs are untouched; 0 iterations: ``(h, c)`` as they are. The number is chosen
    per artifact on its validation sources (``training.spin_up``)."""
    if iterations <= 0:
        return h, c
    fresh = never_stepped(h, c)
    return (h, c) if fresh is None else spin_up_rows(net, x, h, c, fresh, iterations)


def never_stepped(h: Tensor, c: Tensor) -> Tensor | None:
    """Indices of the rows whose recurrent state is exactly zero (None: no such row). A cheap
    first test on the last column of ``h`` (a zero row passes it; after a step hardly any row
    does: the LSTM's last hidden unit, the transformer's newest window entry), then the whole
    rows of the candidates."""
    if h.shape[0] == 0:
        return None
    maybe = torch.nonzero(h[:, -1] == 0).squeeze(1)
    if maybe.numel() == 0:
        return None
    zero = (h.index_select(0, maybe) == 0).all(1) & (c.index_select(0, maybe) == 0).all(1)
    fresh = maybe[zero]
    return fresh if fresh.numel() else None


def spin_up_rows(
    net: RecurrentNet, x: Tensor, h: Tensor, c: Tensor, fresh: Tensor, iterations: int
) -> tuple[Tensor, Tensor]:
    """(h, c) with rows ``fresh`` spun up by ``iterations`` calls of ``net`` on their features
    (:func:`spin_up_state`); new tensors, the inputs untouched."""
    xs, hs, cs = x.index_select(0, fresh), h.index_select(0, fresh), c.index_select(0, fresh)
    for _ in range(iterations):
        _, hs, cs = net(xs, hs, cs)
    return h.index_copy(0, fresh, hs.to(h.dtype)), c.index_copy(0, fresh, cs.to(c.dtype))


def water_rows(
    water: open_water.OpenWater,
    inp: RowInputs,
    surf: landstep.TileSurface,
    soil: SoilConfig,
    dt: float,
    fluxes_of: Callable[..., landstep.Fluxes],
) -> tuple[Tensor, landstep.Fluxes] | None:
    """(indices, fluxes) of the water rows of ``inp`` from physics (``fluxes_of``: the
    ``water`` of :class:`StepKernels`); None without water rows."""
    index = open_water.rows(inp.tile)
    n = index.numel()
    if n == 0:
        return None
    computed = open_water.padded(index)  # every row on the vector path (``padded``)

    def take(t: Tensor) -> Tensor:
        return t.index_select(0, computed)

    fluxes = fluxes_of(
        water,
        {k: take(v) for k, v in inp.forcing.items()},
        ts_prev=take(inp.ts_prev),
        w=take(inp.w),
        tsoil=take(inp.tsoil),
        params=take(inp.params),
        surf=open_water.select_surface(surf, computed),
        # class constants: one class, so one row of them broadcast (no per-row gather)
        const={k: v[index[0]].expand(len(computed), *v.shape[1:]) for k, v in inp.const.items()},
        soil=soil,
        dt=dt,
    )
    return index, open_water.first(fluxes, n)
