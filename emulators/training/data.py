"""Tile-level reference trajectories: the training and evaluation data of the flux and LAI
emulators.

A *source* is a forcing source (``emulators.forcing.load``) with perturbed parameters (the MdPL
recipe, ``emulators.datasets.perturbed_parameters``). Every forcing cell is replicated
``replicas`` times with independent parameter draws, and every replica carries all 8 land-cover
tiles with equal cover: tile physics does not depend on cover, so one reference step yields 8
independent tile trajectories (``ReferenceBackend.step_tiles``). The reference model is spun up
for ``spinup_days`` and then run over the whole forcing, recording per step and tile the state
before the step and the fields after it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from emulators import parameters as P
from emulators.constants import DEFAULT_HEIGHT_TEMPERATURE, DEFAULT_HEIGHT_WIND, MAX_HEIGHT
from emulators.datasets import perturbed_parameters
from emulators.protocol import LandStatic, StepClock
from emulators.reference.model import ReferenceBackend, ReferenceConfig
from emulators.training.start_spread import StartSpread
from emulators.variables import REQUIRED_FORCING

#: per-step tile fields recorded (state before the step, then fields after it)
STATE_KEYS = ("w", "ts", "tsoil", "cleaf")
OUTPUT_KEYS = ("hfls", "hfss", "ts", "evspsbl", "tran", "gpp", "mrro", "albedo", "lai")
NO_SPREAD = StartSpread()


#: the defaults of the per-cell ranges of widened synthetic specs (their allowed values:
#: ``emulators.forcing.synthetic.CELL_RANGES``)
_CELL_DEFAULTS: dict[str, tuple[float, float]] = {
    "elevation": (0.0, 0.0),
    "wind_scale": (1.0, 1.0),
    "rh_offset": (0.0, 0.0),
    "pr_scale": (1.0, 1.0),
}


@dataclass(frozen=True)
class SourceSpec:
    """A forcing source and how to perturb it. ``options`` go to ``emulators.forcing.load``
    (for ``synthetic``, ``cells`` random land cells are drawn by ``seed``).

    Synthetic only, per cell and drawn by ``seed`` after the coordinates (so a spec with the
    defaults draws the same cells and weather as before these fields existed): ``elevation``
    (lo, hi) m, uniform; ``wind_scale`` (lo, hi), log-uniform factor on the climatological mean
    wind; ``rh_offset`` (lo, hi), uniform offset of the relative humidity (negative: drier);
    ``pr_scale`` (lo, hi), uniform factor on the precipitation amounts ((0, 0): cells without
    rain). The defaults (0, 0), (1, 1), (0, 0), (1, 1) are the sea-level, climatological
    cells."""

    source: str
    seed: int = 0
    replicas: int = 1
    cells: int = 0  # synthetic only
    days: int = 365  # synthetic only
    start: str = "2001-01-01"  # synthetic only
    perturbation: float = 0.5
    spinup_days: int = 60
    options: dict[str, Any] = field(default_factory=dict)
    #: a cold start (``spinup_days=0``) or a slice of the record: the first ``offset_days`` of
    #: the forcing are skipped and ``record_days`` recorded (0: to the end)
    offset_days: int = 0
    record_days: int = 0
    elevation: tuple[float, float] = (0.0, 0.0)  # synthetic only, m
    wind_scale: tuple[float, float] = (1.0, 1.0)  # synthetic only
    rh_offset: tuple[float, float] = (0.0, 0.0)  # synthetic only
    #: synthetic only; recorded when set (added after shipped manifests recorded their specs)
    pr_scale: tuple[float, float] = field(default=(1.0, 1.0), metadata={"recorded": "when set"})
    #: (wind, temperature) measurement heights [m] the reference runs at instead of the
    #: source's own (its ``height_wind_m``, ``height_temperature_m``); () = the source's
    heights: tuple[float, ...] = field(default=(), metadata={"recorded": "when set"})

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> SourceSpec:
        """The spec a manifest's training record holds (``dataclasses.asdict`` of one; lists
        back to tuples; keys this version does not know are refused by the constructor)."""
        kept: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**kept)

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"{self.source}: replicas must be >= 1, got {self.replicas}")
        if self.source == "synthetic" and self.cells < 1:
            raise ValueError(f"synthetic: cells must be >= 1, got {self.cells}")
        if not 0.0 <= self.perturbation <= 1.0:
            raise ValueError(f"{self.source}: perturbation must be in [0, 1]")
        if self.spinup_days < 0:
            raise ValueError(f"{self.source}: spinup_days must be >= 0")
        if self.offset_days < 0 or self.record_days < 0:
            raise ValueError(f"{self.source}: offset_days and record_days must be >= 0")
        if self.heights and (
            len(self.heights) != 2 or not all(0.0 < h <= MAX_HEIGHT for h in self.heights)
        ):
            raise ValueError(
                f"{self.source}: heights must be (wind, temperature) in (0, {MAX_HEIGHT:g}] m, "
                f"got {self.heights!r}"
            )
        from emulators.forcing.synthetic import CELL_RANGES

        for name, (lo, hi) in CELL_RANGES.items():
            value = getattr(self, name)
            if value == _CELL_DEFAULTS[name]:
                continue
            if self.source != "synthetic":
                raise ValueError(f"{self.source}: {name} applies to the synthetic source only")
            if len(value) != 2 or not lo <= value[0] <= value[1] <= hi:
                raise ValueError(
                    f"synthetic: {name} must be (low, high) with {lo} <= low <= high <= {hi}, "
                    f"got {value!r}"
                )

    @property
    def label(self) -> str:
        if self.source == "synthetic":
            base = f"synthetic-seed{self.seed}"
        else:
            years = self.options.get("years")
            base = f"{self.source}-{years[0]}" if years else self.source
        at = f"-at{self.heights[0]:g}m{self.heights[1]:g}m" if self.heights else ""
        return base + at + (f"-cold{self.offset_days}" if self.cold else "")

    @property
    def widened(self) -> bool:
        """A synthetic spec whose cells span elevation, wind, humidity or precipitation (not the
        defaults)."""
        return any(getattr(self, k) != v for k, v in _CELL_DEFAULTS.items())

    @property
    def cold(self) -> bool:
        """A fresh start: recorded from the backends' initial state (no spin-up)."""
        return self.spinup_days == 0

    def key(self) -> str:
        fields = asdict(self)
        for name in ("offset_days", "record_days", "heights"):  # earlier caches stay valid
            if not fields[name]:
                del fields[name]
        for name, default in _CELL_DEFAULTS.items():
            if tuple(fields[name]) == default:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_forcing(spec: SourceSpec, timestep: int = 3600) -> xr.Dataset:
    from emulators import forcing

    if spec.source == "synthetic":
        rng = np.random.default_rng(spec.seed)
        lat = np.degrees(np.arcsin(rng.uniform(-0.85, 0.95, spec.cells)))
        lon = rng.uniform(-180.0, 180.0, spec.cells)
        cells = _cell_draws(spec, rng) if spec.widened else {}
        return forcing.load(
            "synthetic",
            lat=lat,
            lon=lon,
            **cells,
            start=spec.start,
            days=spec.days,
            seed=spec.seed,
            timestep=timestep,
            **spec.options,
        )
    return forcing.load(spec.source, timestep=timestep, **spec.options)


def _cell_draws(spec: SourceSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-cell elevation, wind scale, humidity offset and precipitation factor of a widened
    synthetic spec (drawn in that order: a spec without ``pr_scale`` draws what it drew before)."""
    n = spec.cells
    z = rng.uniform(spec.elevation[0], spec.elevation[1], n)
    log_w = rng.uniform(np.log(spec.wind_scale[0]), np.log(spec.wind_scale[1]), n)
    drh = rng.uniform(spec.rh_offset[0], spec.rh_offset[1], n)
    out = {"elevation": z, "wind_scale": np.exp(log_w), "rh_offset": drh}
    if spec.pr_scale != _CELL_DEFAULTS["pr_scale"]:
        out["pr_scale"] = rng.uniform(spec.pr_scale[0], spec.pr_scale[1], n)
    return out


@dataclass
class Trajectory:
    """Arrays of one source. Rows r = (cell·replicas + replica)·8 + tile.

    forcing[name]: (time, row) float64; state[name]: (time, row[, 3]) before each step;
    outputs[name]: (time, row) after each step; params (row, 12); tile, cell (row,) int64;
    lat, lon (row,); time (time,) datetime64[s] step starts; dt seconds."""

    label: str
    forcing: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    params: np.ndarray
    tile: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    time: np.ndarray
    dt: float
    #: (wind, temperature) measurement heights [m] the reference ran at (None: not known, a
    #: trajectory loaded from a cache written before they were recorded)
    heights: tuple[float, float] | None = None

    @property
    def rows(self) -> int:
        return int(self.params.shape[0])

    @property
    def steps(self) -> int:
        return int(self.time.shape[0])

    def physical_rows(self) -> np.ndarray:
        """(row,) bool: the rows whose state stayed finite and in the registry's valid range
        (what :meth:`physical` keeps)."""
        ts = self.state["ts"]
        bad = ~np.isfinite(ts).all(0) | (ts.min(0) < 180.0) | (ts.max(0) > 360.0)
        for v in (*self.state.values(), *self.outputs.values()):
            bad |= ~np.isfinite(v.reshape(v.shape[0], v.shape[1], -1)).all(axis=(0, 2))
        return np.asarray(~bad)

    def physical(self) -> tuple[Trajectory, int]:
        """(this trajectory without the rows whose state ever left the registry's valid range or
        went non-finite, number of rows dropped). The reference model can diverge for rare
        parameter/forcing combinations; such rows are not training or evaluation data."""
        keep = self.physical_rows()
        if keep.all():
            return self, 0
        bad = ~keep
        return (
            Trajectory(
                label=self.label,
                forcing={k: v[:, keep] for k, v in self.forcing.items()},
                state={k: v[:, keep] for k, v in self.state.items()},
                outputs={k: v[:, keep] for k, v in self.outputs.items()},
                params=self.params[keep],
                tile=self.tile[keep],
                lat=self.lat[keep],
                lon=self.lon[keep],
                time=self.time,
                dt=self.dt,
                heights=self.heights,
            ),
            int(bad.sum()),
        )

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {f"forcing_{k}": v for k, v in self.forcing.items()}
        arrays |= {f"state_{k}": v for k, v in self.state.items()}
        arrays |= {f"outputs_{k}": v for k, v in self.outputs.items()}
        arrays |= {
            "params": self.params,
            "tile": self.tile,
            "lat": self.lat,
            "lon": self.lon,
            "time": self.time.astype("datetime64[s]").astype(np.int64),
            "dt": np.array(self.dt),
            "label": np.array(self.label),
        }
        if self.heights is not None:
            arrays["heights"] = np.array(self.heights, dtype=np.float64)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    @staticmethod
    def load(path: Path) -> Trajectory:
        z = np.load(path)

        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}

        return Trajectory(
            label=str(z["label"]),
            forcing=group("forcing_"),
            state=group("state_"),
            outputs=group("outputs_"),
            params=z["params"],
            tile=z["tile"],
            lat=z["lat"],
            lon=z["lon"],
            time=z["time"].astype("datetime64[s]"),
            dt=float(z["dt"]),
            heights=_heights_of(z),
        )


def _heights_of(z: Any) -> tuple[float, float] | None:
    """The heights a cached trajectory was simulated at (None: cached before trajectories
    recorded them; ``simulate`` then takes its source's own, what the reference ran at)."""
    if "heights" not in z.files:
        return None
    wind, temperature = (float(v) for v in z["heights"])
    return (wind, temperature)


@dataclass(frozen=True)
class Setup:
    """What a reference run of ``spec`` starts from: the forcing (sliced by ``offset_days`` and
    ``record_days``), the static fields of its ``n`` = cells × replicas rows of 8 tiles, the
    model config (the source's measurement heights) and the forcing arrays (time, n)."""

    static: LandStatic
    config: ReferenceConfig
    arrays: dict[str, torch.Tensor]
    times: np.ndarray
    n: int


def reference_config(ds: xr.Dataset, heights: tuple[float, ...] = ()) -> ReferenceConfig:
    """The reference model's config for forcing ``ds``: its measurement heights (attrs), or
    ``heights`` (wind, temperature) [m] where given (``SourceSpec.heights``)."""
    if heights:
        return ReferenceConfig(height_wind=heights[0], height_temperature=heights[1])
    return ReferenceConfig(
        height_wind=float(ds.attrs.get("height_wind_m", DEFAULT_HEIGHT_WIND)),
        height_temperature=float(ds.attrs.get("height_temperature_m", DEFAULT_HEIGHT_TEMPERATURE)),
    )


def setup(spec: SourceSpec, timestep: int = 3600) -> Setup:
    """The forcing, static fields and config of a reference run of ``spec`` (:class:`Setup`)."""
    ds = load_forcing(spec, timestep)
    per_day = max(1, 86_400 // timestep)
    if spec.offset_days or spec.record_days:
        first = spec.offset_days * per_day
        end = first + spec.record_days * per_day if spec.record_days else ds.sizes["time"]
        if end > ds.sizes["time"]:
            raise ValueError(
                f"{spec.label}: offset_days + record_days exceed the record "
                f"({ds.sizes['time']} steps of {timestep} s)"
            )
        ds = ds.isel(time=slice(first, end))
    n_cells, k = ds.sizes["cell"], P.N_CLASSES
    n = n_cells * spec.replicas
    cell_of = np.repeat(np.arange(n_cells), spec.replicas)
    lat = torch.as_tensor(ds["lat"].values[cell_of], dtype=torch.float64)
    lon = torch.as_tensor(ds["lon"].values[cell_of], dtype=torch.float64)
    cover = torch.full((n, k), 1.0 / k, dtype=torch.float64)
    g = torch.Generator().manual_seed(spec.seed)
    params = perturbed_parameters(np.zeros(n, dtype=np.int64), spec.perturbation, g)
    static = LandStatic(lat, lon, cover, params)
    config = reference_config(ds, spec.heights)
    arrays = {
        name: torch.as_tensor(ds[name].values[:, cell_of], dtype=torch.float64)
        for name in REQUIRED_FORCING
    }
    times = ds["time"].values.astype("datetime64[s]")
    return Setup(static, config, arrays, times, n)


#: where trajectories are cached by default (``landcoupler emulators``' work directory's data)
DEFAULT_CACHE = Path("out/emulators/data")


def cache_name(spec: SourceSpec, timestep: int = 3600, spread: StartSpread = NO_SPREAD) -> str:
    """The file name of ``spec``'s trajectories at steps of ``timestep`` seconds in a cache:
    label, the spec's hash, [the start's spread,] the step and the reference model's fingerprint
    (``reference.fingerprint``)."""
    from emulators.reference.fingerprint import fingerprint

    return f"{spec.label}-{spec.key()}{spread.suffix}-{timestep}-ref{fingerprint()}.npz"


def simulate(
    spec: SourceSpec,
    timestep: int = 3600,
    progress: bool = True,
    cache: Path | None = None,
    spread: StartSpread = NO_SPREAD,
) -> Trajectory:
    """Run the reference model over ``spec`` and record tile trajectories (cached as .npz in
    ``cache`` by the spec's hash and the reference's fingerprint, when given: after a change of
    the reference's physics the trajectories are simulated again, not read). ``spread``: a
    fresh start's (``spec.cold``) initial state drawn around the backends' (``start_spread``)."""
    if spread.active and not spec.cold:
        raise ValueError(f"{spec.label}: spread applies to fresh starts (spinup_days=0) only")
    path = cache / cache_name(spec, timestep, spread) if cache else None
    if path is not None and path.exists():
        traj = Trajectory.load(path)
        if traj.heights is None:  # an earlier cache: the source's own heights (not in its key)
            config = reference_config(load_forcing(spec, timestep), spec.heights)
            traj.heights = (config.height_wind, config.height_temperature)
        return traj
    run = setup(spec, timestep)
    static, arrays, times, n, k = run.static, run.arrays, run.times, run.n, P.N_CLASSES
    backend = ReferenceBackend(run.config)
    dt = float(timestep)
    clock = StepClock(0, times[0], dt)
    state = spread.apply(backend.initial_state(static, clock), spec.seed, spec.offset_days)
    spin = min(spec.spinup_days * 86_400 // timestep, len(times))
    for i in range(spin):
        state, _ = backend.step_tiles(
            state, static, {k_: v[i : i + 1] for k_, v in arrays.items()}, clock
        )
        clock = clock.advance()
    steps = len(times)
    rec_state = {
        "w": np.empty((steps, n * k), np.float32),
        "ts": np.empty((steps, n * k), np.float32),
        "tsoil": np.empty((steps, n * k, 3), np.float32),
        "cleaf": np.empty((steps, n * k), np.float32),
    }
    rec_out = {name: np.empty((steps, n * k), np.float32) for name in OUTPUT_KEYS}
    clock = StepClock(0, times[0], dt)
    for i in tqdm(range(steps), desc=f"reference {spec.label}", unit="step", disable=not progress):
        for name in STATE_KEYS:
            v = state.tensors[name][0]
            rec_state[name][i] = v.reshape(n * k, *v.shape[2:]).numpy()
        state, tiles = backend.step_tiles(
            state, static, {k_: v[i : i + 1] for k_, v in arrays.items()}, clock
        )
        for name in OUTPUT_KEYS:
            rec_out[name][i] = tiles[name][0].reshape(-1).numpy()
        clock = clock.advance()
    cell_rows = np.repeat(np.arange(n), k)
    traj = Trajectory(
        label=spec.label,
        forcing={name: v.numpy()[:, cell_rows] for name, v in arrays.items()},
        state=rec_state,
        outputs=rec_out,
        params=run.static.params[0].reshape(n * k, P.N_PARAMETERS).numpy(),
        tile=np.tile(np.arange(k), n),
        lat=run.static.lat.numpy()[cell_rows],
        lon=run.static.lon.numpy()[cell_rows],
        time=times,
        dt=dt,
        heights=(run.config.height_wind, run.config.height_temperature),
    )
    if path is not None:
        traj.save(path)
    return traj
