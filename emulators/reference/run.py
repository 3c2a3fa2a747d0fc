"""Offline driver: run the reference model over a forcing Dataset (the layout of
``emulators.forcing``) and return its outputs as a CF-annotated Dataset (time, cell)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from emulators import parameters as P
from emulators.protocol import LandStatic, StepClock
from emulators.reference.model import ReferenceBackend, ReferenceConfig, Surface
from emulators.variables import REQUIRED_FORCING, get

DEFAULT_OUTPUTS: tuple[str, ...] = (
    "hfls",
    "hfss",
    "hfdsl",
    "rns",
    "ts",
    "albedo",
    "rsus",
    "rlus",
    "evspsbl",
    "tran",
    "mrro",
    "mrso",
    "mrsos",
    "lai",
    "gpp",
    "z0",
)


@dataclass(frozen=True)
class RunSpec:
    """What to run: the cover of every cell and optional per-cell parameters."""

    cover: np.ndarray  # (cell, class) fractions summing to 1
    params: np.ndarray | None = None  # (member, cell, class, 12); None = class defaults
    members: int = 1

    def __post_init__(self) -> None:
        if self.cover.ndim != 2 or self.cover.shape[1] != P.N_CLASSES:
            raise ValueError(f"cover: expected (cell, {P.N_CLASSES}), got {self.cover.shape}")


def cover_for(name: str, n_cells: int) -> np.ndarray:
    """(cell, class) cover with every cell entirely class ``name``."""
    lc = P.LandCover.from_name(name)
    cover = np.zeros((n_cells, P.N_CLASSES))
    cover[:, int(lc)] = 1.0
    return cover


def expand_all_classes(forcing: xr.Dataset) -> tuple[xr.Dataset, np.ndarray]:
    """Repeat every forcing cell once per land-cover class: (cell × class) cells, each pure."""
    n = forcing.sizes["cell"]
    idx = np.repeat(np.arange(n), P.N_CLASSES)
    expanded = forcing.isel(cell=idx).assign_coords(cell=np.arange(n * P.N_CLASSES))
    classes = np.tile(np.arange(P.N_CLASSES), n)
    cover = np.eye(P.N_CLASSES)[classes]
    expanded = expanded.assign_coords(
        land_cover=("cell", np.array([P.LandCover(c).short for c in classes]))
    )
    return expanded, cover


def run_reference(
    forcing: xr.Dataset,
    spec: RunSpec,
    config: ReferenceConfig | None = None,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    progress: bool = True,
    spinup_steps: int = 0,
) -> xr.Dataset:
    """Run the model over every time of ``forcing``; returns member-mean outputs (time, cell).

    ``spinup_steps``: the first steps are run twice (once to spin up soil water, temperature and
    leaves from the default initial state, then again from the spun-up state).
    """
    for name in REQUIRED_FORCING:
        if name not in forcing:
            raise ValueError(f"forcing dataset lacks the required variable {name!r}")
    if config is None:
        config = ReferenceConfig(
            height_wind=float(forcing.attrs.get("height_wind_m", 10.0)),
            height_temperature=float(forcing.attrs.get("height_temperature_m", 2.0)),
        )
    backend = ReferenceBackend(config)
    n_cells = forcing.sizes["cell"]
    if spec.cover.shape[0] != n_cells:
        raise ValueError(f"cover has {spec.cover.shape[0]} cells, forcing has {n_cells}")
    lat = torch.as_tensor(forcing["lat"].values, dtype=torch.float64)
    lon = torch.as_tensor(forcing["lon"].values, dtype=torch.float64)
    cover = torch.as_tensor(spec.cover, dtype=torch.float64)
    if spec.params is None:
        static = LandStatic.from_cover(lat, lon, cover, members=spec.members)
    else:
        static = LandStatic(lat, lon, cover, torch.as_tensor(spec.params, dtype=torch.float64))
    dt = float(forcing.attrs.get("timestep_seconds", _infer_dt(forcing)))
    times = forcing["time"].values
    arrays = {
        k: torch.as_tensor(np.ascontiguousarray(forcing[k].values), dtype=torch.float64)
        for k in (*REQUIRED_FORCING, *(["co2"] if "co2" in forcing else []))
    }
    clock = StepClock(0, times[0].astype("datetime64[s]"), dt)
    state = backend.initial_state(static, clock)
    for i in range(min(spinup_steps, len(times))):
        step_forcing = {k: v[i].expand(static.n_members, -1) for k, v in arrays.items()}
        state, _ = backend.step(state, static, step_forcing, clock)
        clock = clock.advance()
    clock = StepClock(0, times[0].astype("datetime64[s]"), dt)
    out = {k: np.empty((len(times), n_cells)) for k in outputs}
    for i in tqdm(range(len(times)), desc="reference model", unit="step", disable=not progress):
        step_forcing = {k: v[i].expand(static.n_members, -1) for k, v in arrays.items()}
        state, fields = backend.step(state, static, step_forcing, clock)
        for k in outputs:
            out[k][i] = fields[k].mean(0).numpy()
        clock = clock.advance()
    ds = xr.Dataset(
        {k: (("time", "cell"), v, get(k).cf_attrs()) for k, v in out.items()},
        coords={
            c: forcing.coords[c]
            for c in forcing.coords
            if c in ("time", "cell", "lat", "lon", "land_cover")
        },
    )
    ds.attrs.update(_provenance(forcing, spec, config, dt))
    return ds


def _infer_dt(forcing: xr.Dataset) -> float:
    t = forcing["time"].values
    if len(t) < 2:
        raise ValueError(
            "cannot infer the timestep from fewer than two times; set attrs['timestep_seconds']"
        )
    return float((t[1] - t[0]) / np.timedelta64(1, "s"))


def _provenance(
    forcing: xr.Dataset, spec: RunSpec, config: ReferenceConfig, dt: float
) -> dict[str, Any]:
    from emulators.provenance import code_version

    cfg = asdict(config)
    cfg["surface"] = config.surface.value
    return {
        "title": "landcoupler reference land model output",
        "source": f"landcoupler reference model ({code_version()})",
        "forcing_source": str(forcing.attrs.get("source", "unknown")),
        "references": "docs/reference-model.md",
        "timestep_seconds": dt,
        "reference_config": json.dumps(cfg),
        "members": spec.members,
        "surface": config.surface.value,
        "Conventions": "CF-1.10",
    }


def fao56_config(forcing: xr.Dataset) -> ReferenceConfig:
    """The FAO-56 reference grass surface at the forcing's measurement heights."""
    return ReferenceConfig(
        surface=Surface.FAO56_GRASS,
        height_wind=float(forcing.attrs.get("height_wind_m", 10.0)),
        height_temperature=float(forcing.attrs.get("height_temperature_m", 2.0)),
    )
