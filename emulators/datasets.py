"""Training datasets from the reference model with perturbed parameters (the MdPL recipe).

Each cell gets one land-cover class (or a random mixture) and a parameter set drawn around the
class defaults: ``default + perturbation × (high − low) × U(−½, ½)``, clipped to the published
range (``perturbation = 1`` spans the whole range, as MdPL's surrogate training does). The
reference model runs over the forcing and everything needed to train an emulator is written to
one Zarr v3 store: forcing, cover, parameters, outputs, with CF attributes and provenance (the
config, seed, code version and forcing source).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import xarray as xr

from emulators import constants as C
from emulators import parameters as P
from emulators.provenance import code_version
from emulators.reference.run import RunSpec, run_reference


@dataclass(frozen=True)
class DatasetConfig:
    forcing: str = "synthetic"  # any emulators.forcing source
    cells: int = 64  # for synthetic forcing; station sources have their own cells
    days: int = 365  # synthetic only
    start: str = "2001-01-01"  # synthetic only
    timestep: int = 3600
    seed: int = 0
    perturbation: float = 1.0  # fraction of each parameter's range
    mixed_cover: bool = False  # random class mixtures instead of one class per cell
    spinup_days: int = 30

    def __post_init__(self) -> None:
        if self.cells < 1:
            raise ValueError(f"cells must be >= 1, got {self.cells}")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if not 0.0 <= self.perturbation <= 1.0:
            raise ValueError(f"perturbation must be in [0, 1], got {self.perturbation}")
        if self.timestep <= 0 or C.SECONDS_PER_DAY % self.timestep:
            raise ValueError(f"timestep must divide a day (s), got {self.timestep}")


def perturbed_parameters(
    classes: np.ndarray, perturbation: float, generator: torch.Generator
) -> torch.Tensor:
    """(1, cell, class, 12) parameters: every class row of a cell perturbed around its defaults."""
    n = len(classes)
    base = P.default_table().expand(n, P.N_CLASSES, P.N_PARAMETERS).reshape(-1, P.N_PARAMETERS)
    sampled = P.sample_parameters(base.shape[0], generator, spread=perturbation, base=base)
    return sampled.reshape(1, n, P.N_CLASSES, P.N_PARAMETERS)


def generate(config: DatasetConfig, progress: bool = True) -> xr.Dataset:
    from emulators import forcing as sources

    rng = np.random.default_rng(config.seed)
    if config.forcing == "synthetic":
        lat = np.degrees(np.arcsin(rng.uniform(-0.9, 0.95, config.cells)))
        lon = rng.uniform(-180.0, 180.0, config.cells)
        forcing = sources.load(
            "synthetic",
            lat=lat,
            lon=lon,
            start=config.start,
            days=config.days,
            seed=config.seed,
            timestep=config.timestep,
        )
    else:
        forcing = sources.load(config.forcing, timestep=config.timestep)
    n = forcing.sizes["cell"]
    if config.mixed_cover:
        cover = rng.dirichlet(np.full(P.N_CLASSES, 0.3), size=n)
        classes = cover.argmax(-1)
    else:
        classes = rng.integers(0, P.N_CLASSES, n)
        cover = np.eye(P.N_CLASSES)[classes]
    g = torch.Generator().manual_seed(config.seed)
    params = perturbed_parameters(classes, config.perturbation, g)
    spinup = config.spinup_days * C.SECONDS_PER_DAY // config.timestep
    out = run_reference(
        forcing, RunSpec(cover=cover, params=params.numpy()), progress=progress, spinup_steps=spinup
    )
    ds = xr.merge([forcing, out], compat="override", combine_attrs="override")
    ds["landCoverFrac"] = (
        ("cell", "landcover"),
        100.0 * cover,
        {"units": "%", "long_name": "Percentage of land area by class"},
    )
    ds["parameters"] = (
        ("cell", "landcover", "parameter"),
        params[0].numpy(),
        {"long_name": "MdPL parameters per cell and class (see parameter_units)"},
    )
    ds = ds.assign_coords(
        landcover=[lc.short for lc in P.LandCover],
        parameter=list(P.PARAMETER_NAMES),
        parameter_units=("parameter", [p.units for p in P.PARAMETERS]),
    )
    ds.attrs = {
        "title": "landcoupler reference-model training dataset",
        "source": code_version(),
        "forcing_source": str(forcing.attrs.get("source", config.forcing)),
        "forcing_references": str(forcing.attrs.get("references", "")),
        "dataset_config": json.dumps(asdict(config)),
        "seed": config.seed,
        "timestep_seconds": config.timestep,
        "Conventions": "CF-1.10",
        "reference_config": out.attrs.get("reference_config", ""),
    }
    return ds
