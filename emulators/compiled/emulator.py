"""The in-process emulator backend: compiled flux and LAI emulators behind ``LandBackend``.

Names: ``torchscript`` (TorchScript artifacts, CPU or CUDA), ``aoti`` (AOTInductor packages,
built for CPU), ``onnx`` (ONNX Runtime, CPU or its CUDA execution provider), ``fused`` (the flux
LSTMs' TorchScript weights in one native CPU operator, ``emulators.compiled.fused``) and
``triton`` (the networks served by a Triton Inference Server,
``emulators.serving.triton_backend``) — the same
class with a different artifact loader: the network call is the only thing that differs. A
step is the land step's skeleton (``emulators.landstep.TileBackend``: clock, forcing check, then
the phases below); only the prediction of the fluxes differs from the reference model:

1. clock: a session's ``dt`` needs an emulator trained for it (:class:`TimestepError`);
2. the tiles with nonzero cover are gathered into rows (``tiles.Rows``; every tile with
   ``all_tiles=True``, which the benchmark uses to report identical work);
3. surface: exact, cheap diagnostics per row (albedo, roughness, LAI, water stress:
   ``landstep.surface``, the reference equations);
4. predict: the flux emulator (recurrent, state passed in and out) predicts T_s − T_a, H, LE
   demand, transpiration share and GPP — float32, in calls of ``chunk_rows`` rows; the water
   tile's fluxes come from the reference's own energy balance instead (``open_water``);
5. water, energy, soil heat: the land step's constraint layer (``closure.close`` →
   ``landstep.close``, float64) closes energy and water exactly and conducts G into the soil;
6. phenology: at the end of each day (``landstep.day_ends``), leaf carbon advances: with the LAI
   emulator from daily aggregates (``phenology="emulator"``), or with the reference phenology
   fed by the emulated GPP (``phenology="reference"``, ``landstep.leaf_carbon``);
7. rows are scattered back, and cell fields are the cover-weighted tile sums, so closure
   carries over to cells: summed straight from the rows (``landstep.CellSums``) by ``step``,
   from dense tile fields by ``step_tiles`` (``landstep.aggregate``; the same fields to
   round-off). Where every (member, cell, tile) entry is a row (``identity_rows``), rows are
   slices of the state and the results are the new state: no gather, copy or scatter.
Steps 2-7 run on all rows or blocks of ``row_block`` rows (``row_step``); ``self.phases``
(``phases.PhaseTimes``) times a step's parts for ``make bench-emulators``.
State (``LandState.tensors``; leading dims (member, cell, tile)): ``w`` soil water, ``ts`` skin
temperature, ``tsoil`` (…, 3) soil temperatures, ``cleaf`` leaf carbon, daily accumulators
``acc_*``, and the LSTM state ``lstm_h``/``lstm_c`` (…, hidden) float32.

Timesteps: each flux artifact is trained for one step length (its manifest's
``timestep_seconds``): ``flux_lstm`` 3600 s, ``flux_lstm_daily`` 86 400 s. The backend loads every
configured flux artifact and picks, per session, the one whose timestep equals the session's
``dt``; any other ``dt`` is refused with :class:`TimestepError` (field ``dt``, rule
``trained_timestep``) naming the available timesteps. At steps of a day or longer the LAI step
runs after every step, and the local-solar-hour features are constant zeros (as in training).
The LAI emulator is picked the same way, by the land step it was trained on
(``lai_step.lai_timestep``): ``lai`` 3600 s, ``lai_daily`` 86 400 s; with
``phenology="emulator"`` a session whose ``dt`` has a flux but no LAI emulator is refused the
same way (``phenology="reference"`` needs none).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emulators import landstep
from emulators import parameters as P
from emulators.compiled import flux_step, inductor, open_water, row_step
from emulators.compiled.artifacts import (
    LOADERS,
    HeightsError,
    LoadedFlux,
    LoadedLAI,
    Loader,
    for_dt,
    load_artifact,
    load_fluxes,
    load_lais,
)
from emulators.compiled.artifacts import (
    TimestepError as TimestepError,  # re-exported: tests catch it from here
)
from emulators.compiled.config import ARTIFACTS as ARTIFACTS
from emulators.compiled.config import EmulatorConfig as EmulatorConfig
from emulators.compiled.features import step_local_hour
from emulators.compiled.kept_rows import KeptRows
from emulators.compiled.lai_step import LAI_ACCUMULATORS
from emulators.compiled.phases import Phase, no_phases
from emulators.constants import DEFAULT_HEIGHTS
from emulators.landstep import Forcing, StepResult
from emulators.manifest import Manifest
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference.model import ReferenceConfig
from emulators.variables import REQUIRED_FORCING

Tensor = torch.Tensor
#: the recurrent state: zero on tiles without cover (nothing reads it there: a step computes
#: only the tiles with cover, and a tile that gains cover takes the pool's state,
#: ``landstep.cover``), so a step writes the new state's rows into zeros instead of into a
#: copy of the old state (half the memory traffic of the state's largest tensors)
RECURRENT = ("lstm_h", "lstm_c")
#: rows per call of the ``fused`` operator: it cuts rows into cache-sized blocks itself, and
#: one call's h and c come right after a zero row (the new state's table, ``dense_rows``)
FUSED_CHUNK_ROWS = 262_144


def _check_heights(flux: LoadedFlux, wind: float, temperature: float) -> None:
    """:class:`HeightsError` unless (``wind``, ``temperature``) lie in the ranges ``flux`` (a
    network with the height features) was trained at."""
    assert flux.heights is not None
    for name, value in (("wind", wind), ("temperature", temperature)):
        low, high = flux.heights[name]
        if not low <= value <= high:
            raise HeightsError(
                f"height_{name}: {flux.manifest.name} was trained at {name} heights "
                f"{low:g}-{high:g} m, got {value:g} m (outside that range it would extrapolate)",
                f"height_{name}",
            )


class EmulatorBackend(landstep.TileBackend[EmulatorConfig]):
    """Compiled emulators behind the ``LandBackend`` Protocol (see module docstring)."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        loader: str = "torchscript",
        load: Loader | None = None,
    ) -> None:
        """``loader`` names the backend; ``load`` (default: ``artifacts.load_artifact`` of the
        format ``loader``) builds each network from its manifest and artifact directory."""
        if load is None and loader not in LOADERS:
            raise ValueError(f"loader: must be one of {LOADERS}, got {loader!r}")
        self.config = cfg = config or EmulatorConfig()
        self.name = loader
        if cfg.device is not None:
            device = cfg.device
        else:
            device = "cuda" if loader == "torchscript" and torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(
                f"device: {device!r} requested but torch.cuda.is_available() is false"
            )
        self.device = torch.device(device)
        in_process_cpu = self.device.type == "cpu" and load is None
        default_chunk = 4096 if in_process_cpu else 16_384
        if loader == "fused":  # the operator blocks rows itself; one call's h and c follow a
            default_chunk = FUSED_CHUNK_ROWS  # zero row: the state's table with no join
        self.chunk_rows: int = cfg.chunk_rows or default_chunk
        self.lai_chunk_rows: int = cfg.chunk_rows or 16_384  # once a day: no need to cut it

        def load_net(manifest: Manifest, directory: Path) -> Callable[..., Any]:
            if load is not None:
                return load(manifest, directory, device)
            return load_artifact(manifest, directory, loader, device)

        self._fluxes = load_fluxes(Path(cfg.artifacts), cfg.flux, load_net)
        #: trained step lengths [s], ascending
        self.timesteps = tuple(sorted(self._fluxes))
        # the shortest-step flux emulator's manifest and widths (what ``_run_flux`` runs when
        # no network is given; kept for the benchmark's network-only timing)
        first = self._fluxes[self.timesteps[0]]
        self.flux_manifest = first.manifest
        self.hidden, self.c_width = first.hidden, first.c_width
        self._lais: dict[float, LoadedLAI] = {}
        if cfg.phenology == "emulator":
            self._lais = load_lais(Path(cfg.artifacts), cfg.lai, load_net)
        #: land steps [s] with an LAI emulator, ascending (empty with the reference phenology)
        self.lai_timesteps = tuple(sorted(self._lais))
        #: the shortest-step LAI emulator's manifest (None with the reference phenology)
        self.lai_manifest = self._lais[self.lai_timesteps[0]].manifest if self._lais else None
        hashes = [self._fluxes[dt].manifest.hash() for dt in self.timesteps] + [
            self._lais[dt].manifest.hash() for dt in self.lai_timesteps
        ]
        self.manifest_hash = ",".join(h[:16] for h in hashes)
        self.version = self.flux_manifest.code_version
        self._const = landstep.class_constants(cfg.soil, torch.float64)
        self._water = open_water.OpenWater() if cfg.open_water else None
        #: (wind, temperature) heights [m] of the forcing this backend serves (``at_heights``)
        self.heights: tuple[float, float] = DEFAULT_HEIGHTS
        compile_physics = loader == "fused" if cfg.compile_physics is None else cfg.compile_physics
        if compile_physics and self.device.type != "cpu":
            raise ValueError(f"compile_physics: needs the CPU device, got {device!r}")
        self._physics = inductor.physics(compile_physics)
        # the rows and their statics, with the cover and parameter tensors they came from: held,
        # so a new static can never be mistaken for a freed one whose id() it reuses
        self._rows_cache: row_step.RowStatics | None = None
        # the recurrent rows of the state the last step returned (``kept_rows``)
        self._kept = KeptRows()
        #: ``phase(name)`` around each part of a step (``phases.PhaseTimes`` measures them)
        self.phases: Phase = no_phases
        #: where every (member, cell, tile) entry is a row (``all_tiles``, or every tile with
        #: cover), rows are slices of the state and results become the new state without a
        #: gather, copy and scatter (the same arithmetic, every bit the same); False: gather
        #: and scatter anyway (the tests compare the two)
        self.identity_rows = True

    def at_heights(self, wind: float, temperature: float) -> EmulatorBackend:
        """``HeightAwareBackend``: a flux network with the height features (``trained_heights``)
        serves the heights inside the ranges it was trained at, one without them the default
        heights only (its features are the forcing's values alone). The backend at other
        heights shares the networks; its water rows run at them. Heights that no network here
        serves are refused (:class:`HeightsError`); a step length whose network does not serve
        them is refused when the session starts (``flux_for``)."""
        if (wind, temperature) == self.heights:
            return self
        if (wind, temperature) != DEFAULT_HEIGHTS:
            aware = [f for f in self._fluxes.values() if f.heights is not None]
            if not aware:
                raise self._not_served(wind, temperature, None)
            for flux in aware:
                _check_heights(flux, wind, temperature)
        other = copy.copy(self)
        other.heights = (float(wind), float(temperature))
        other._rows_cache, other._kept = None, KeptRows()  # per-instance step caches
        if self._water is not None:
            other._water = open_water.OpenWater(
                ReferenceConfig(height_wind=wind, height_temperature=temperature)
            )
        return other

    def _not_served(self, wind: float, temperature: float, flux: LoadedFlux | None) -> HeightsError:
        name = "height_wind" if wind != DEFAULT_HEIGHTS[0] else "height_temperature"
        nets = (
            flux.manifest.name
            if flux is not None
            else ", ".join(self._fluxes[dt].manifest.name for dt in self.timesteps)
        )
        return HeightsError(
            f"{name}: the {self.name!r} backend's flux network(s) ({nets}) have no height input "
            f"and serve forcing at {DEFAULT_HEIGHTS[0]:g} m (wind) / {DEFAULT_HEIGHTS[1]:g} m "
            f"(temperature) only, got {wind:g} m / {temperature:g} m; the 'reference' and "
            "'hybrid' backends take any heights",
            name,
        )

    @property
    def physics(self) -> str:
        """How the physics around the networks runs: ``"inductor"`` (compiled), ``"eager"``,
        or ``"eager (why)"`` where compiling was asked for and is not possible here."""
        failed = self._physics.failed
        return f"eager ({failed})" if failed else self._physics.label

    # ------------------------------------------------------------------------------------------
    def flux_for(self, dt: float) -> LoadedFlux:
        """The flux emulator trained for steps of ``dt`` seconds, else :class:`TimestepError`;
        one that does not serve this backend's heights: :class:`HeightsError`."""
        flux: LoadedFlux = for_dt(
            self._fluxes, dt, f"the {self.name} backend has flux emulators", ""
        )
        if self.heights != DEFAULT_HEIGHTS:
            if flux.heights is None:
                raise self._not_served(*self.heights, flux)
            _check_heights(flux, *self.heights)
        return flux

    def lai_for(self, dt: float) -> LoadedLAI | None:
        """The LAI emulator trained on land steps of ``dt`` seconds (None with the reference
        phenology), else :class:`TimestepError`."""
        if self.config.phenology != "emulator":
            return None
        return for_dt(
            self._lais,
            dt,
            f"the {self.name} backend has LAI emulators",
            " (phenology='reference' needs none)",
        )

    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        flux = self.flux_for(clock.dt)
        self.lai_for(clock.dt)
        m, n, k = static.n_members, static.n_cells, P.N_CLASSES
        recurrent = {
            "lstm_h": torch.zeros(m, n, k, flux.hidden, dtype=torch.float32),
            "lstm_c": torch.zeros(m, n, k, flux.c_width, dtype=torch.float32),
        }
        return landstep.initial_state(
            static,
            self._const,
            recurrent=recurrent,
            accumulators=("acc_gpp", *LAI_ACCUMULATORS),
        )

    # ------------------------------------------------------------------------------------------
    def _rows(self, static: LandStatic) -> row_step.RowStatics:
        """The rows of ``static`` and their statics, kept between steps (``row_step.statics``)."""
        self._rows_cache = row_step.statics(
            self._rows_cache, static, self._const, self.config.all_tiles, self.config.soil
        )
        return self._rows_cache

    def _run_flux(
        self, x: Tensor, h: Tensor, c: Tensor, net: Callable[..., Any] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``net`` (default: the shortest-step flux emulator) over ``x`` in chunks of rows."""
        net = net or self._fluxes[self.timesteps[0]].net
        return row_step.run_flux(net, x, h, c, self.chunk_rows, self.device, self.phases)

    def _run_lai(self, x: Tensor, net: Callable[[Tensor], Tensor]) -> Tensor:
        step = self.lai_chunk_rows
        outs = [net(x[s : s + step].to(self.device)).cpu() for s in range(0, x.shape[0], step)]
        return torch.cat(outs) if outs else torch.zeros(0, 1)

    def check_clock(self, clock: StepClock) -> None:
        """A session's ``dt`` needs a flux (and, with ``phenology="emulator"``, an LAI) emulator
        trained for it: else :class:`TimestepError`."""
        self.flux_for(clock.dt)
        self.lai_for(clock.dt)

    def advance(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """The step at tile level: tile fields (member, cell, tile); inactive tiles hold zeros
        (z0: 1 m) and keep their state, except the recurrent state (:data:`RECURRENT`), which
        is zero there."""
        return self._advance_rows(state, static, forcing, clock, cells=False)

    def advance_cells(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock
    ) -> StepResult:
        """The step with cell fields (member, cell), summed straight from the rows
        (``landstep.CellSums``): no dense tile fields are built."""
        return self._advance_rows(state, static, forcing, clock, cells=True)

    @torch.no_grad()
    def _advance_rows(
        self, state: LandState, static: LandStatic, forcing: Forcing, clock: StepClock, cells: bool
    ) -> StepResult:
        """Rows are gathered, stepped and scattered in blocks of ``row_block`` rows
        (``row_step``); the fields come back per tile, or with ``cells`` summed into cells;
        ``self.phases`` times the parts."""
        cfg, phase = self.config, self.phases
        flux = self.flux_for(clock.dt)
        lai = self.lai_for(clock.dt)

        def run_flux(x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            return self._run_flux(x, h, c, flux.net)

        run_lai: Callable[[Tensor], Tensor] | None = None
        if lai is not None:
            lai_net = lai.net

            def run_lai(x: Tensor) -> Tensor:
                return self._run_lai(x, lai_net)

        with phase("gather"):
            statics = self._rows(static)
            rows, const = statics.rows, statics.const
            m, n, k = rows.shape
            t = {key: v.reshape(m * n * k, *v.shape[3:]) for key, v in state.tensors.items()}
            params = static.params.reshape(m * n * k, -1)
            # forcing (member, cell) flattened; a row's entry is at member·n + cell = flat // k
            f64 = {
                key: forcing[key].to(torch.float64).expand(m, n).reshape(m * n)
                for key in REQUIRED_FORCING
            }
        heights = torch.tensor([self.heights], dtype=torch.float64)
        blocks = row_step.row_blocks(rows.n, cfg.row_block)
        # every (member, cell, tile) entry is a row, in order (all tiles, or full cover): rows
        # are slices of the dense state, and one block's results are the new state as they are
        identity = self.identity_rows and rows.n == m * n * k
        whole = identity and len(blocks) == 1
        with phase("scatter"):
            if whole:
                out: dict[str, Tensor] = {}
            elif identity:
                out = {key: torch.empty_like(v) for key, v in t.items()}
            else:  # tiles without cover keep their state, but hold no recurrent memory: the
                # recurrent state is made from its rows at the end (``row_step.dense_rows``)
                out = {key: v.clone() for key, v in t.items() if key not in RECURRENT}
        recurrent: dict[str, list[Tensor]] = {key: [] for key in RECURRENT}
        # the recurrent rows this backend wrote into this very state, if unmodified (kept_rows)
        kept = {
            key: None if identity else self._kept.rows(key, state.tensors[key], rows)
            for key in RECURRENT
        }
        # rows this backend stepped last time have all stepped: none needs a spin-up
        spin_up = flux.spin_up if cfg.spin_up is None else cfg.spin_up
        spin_up = 0 if all(v is not None for v in kept.values()) else spin_up
        dense: dict[str, Tensor] = {}
        sums = landstep.CellSums(statics.total_soil, m) if cells else None
        for s in blocks:
            with phase("gather"):
                idx, cell = rows.flat[s], rows.cell[s]
                mc = torch.div(idx, k, rounding_mode="floor")

                def g(x: Tensor, i: Tensor | None = None, r: Tensor = idx, s: slice = s) -> Tensor:
                    """Rows ``i`` (default: the block's) of ``x``; identity rows: a view of the
                    block (nothing in a step writes its inputs)."""
                    if i is None:
                        return x[s] if identity else x.index_select(0, r)
                    return x.index_select(0, i)

                inp = flux_step.RowInputs(
                    {key: g(v, mc) for key, v in f64.items()},
                    g(t["w"]),
                    g(t["ts"]),
                    g(t["tsoil"]),
                    g(t["cleaf"]),
                    statics.params_rows[s],
                    rows.tile[s],
                    {key: v[s] for key, v in const.items()},
                    torch.full((idx.shape[0],), float(clock.day_of_year), dtype=torch.float64),
                    step_local_hour(clock.seconds_of_day, g(static.lon, cell), clock.dt),
                    statics.features[s],
                    row_step.surface_rows(statics.surface, s),
                    None if flux.heights is None else heights.expand(idx.shape[0], 2),
                )
                h, c = (g(t[k]) if (r := kept[k]) is None else r[s] for k in RECURRENT)
                acc = {key: g(t[key]) for key in LAI_ACCUMULATORS}
                acc_gpp = g(t["acc_gpp"])
            closed, _, h, c = flux_step.step(
                run_flux,
                inp,
                h,
                c,
                cfg.soil,
                clock.dt,
                phase=phase,
                water=self._water,
                spin_up=spin_up,
                kernels=self._physics.kernels,
            )
            with phase("phenology"):
                new = row_step.phenology_phase(
                    run_lai=run_lai,
                    inp=inp,
                    closed=closed,
                    acc=acc,
                    acc_gpp=acc_gpp,
                    lat=static.lat.index_select(0, cell),
                    soil=cfg.soil,
                    clock=clock,
                    sums=self._physics.sums,
                )
            with phase("scatter"):
                new.update(w=closed.w, ts=closed.ts, tsoil=closed.tsoil, lstm_h=h, lstm_c=c)
                if sums is not None:
                    sums.add(closed.fields, mc, statics.weight[s], statics.soil[s])
                if whole:
                    inputs = [*t.values(), params, statics.params_rows]
                    out.update(
                        {key: row_step.own(v.to(t[key].dtype), inputs) for key, v in new.items()}
                    )
                    if sums is None:
                        dense = {key: row_step.own(v, inputs) for key, v in closed.fields.items()}
                    continue
                for key, v in new.items():
                    if identity:
                        out[key][s] = v
                    elif key in recurrent:
                        recurrent[key].append(v.to(t[key].dtype))
                    else:
                        out[key].index_copy_(0, idx, v.to(out[key].dtype))
                if sums is None:
                    row_step.scatter_fields(dense, closed.fields, idx, m * n * k)
        if whole:  # state the step does not advance (e.g. leaf nitrogen): a copy
            with phase("scatter"):
                out.update({key: v.clone() for key, v in t.items() if key not in out})
        joined: dict[str, Tensor] = {}
        if not identity:
            with phase("scatter"):
                for key, parts in recurrent.items():
                    out[key], joined[key] = row_step.dense_rows(parts, statics.slots)
        shapes = state.tensors
        new_state = LandState({key: out[key].reshape(shapes[key].shape) for key in t})
        for key, v in joined.items():
            self._kept.keep(key, new_state.tensors[key], rows, v)
        if sums is not None:
            return new_state, sums.fields()
        return new_state, {key: v.reshape(m, n, k) for key, v in dense.items()}


class TorchScriptBackend(EmulatorBackend):
    """``torchscript``: the emulator backend with TorchScript artifacts (CPU, or CUDA)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config, loader="torchscript")


class AOTIBackend(EmulatorBackend):
    """``aoti``: the emulator backend with AOTInductor packages (CPU)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config, loader="aoti")


class FusedBackend(EmulatorBackend):
    """``fused``: the emulator backend with the flux LSTMs run by the native fused operator
    (``emulators.compiled.fused``; CPU, compiled on first use) and the LAI networks by
    TorchScript."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config, loader="fused")


class OnnxBackend(EmulatorBackend):
    """``onnx``: the emulator backend with the ONNX artifacts run by ONNX Runtime (CPU, or the
    CUDA execution provider with ``device="cuda"``)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config, loader="onnx")
