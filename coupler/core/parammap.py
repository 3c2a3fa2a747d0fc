"""Calibrated parameter maps: the session option ``parameters_url`` (docs/calibration.md).

A map is a Zarr store (``emulators.io``) with a ``cell`` dimension in the session grid's order:
``lat``/``lon`` coordinates (degrees) equal to the grid's, a ``land_cover`` (cell,) integer
class index, and one (cell,) variable per MdPL parameter (``emulators.landcover.PARAMETERS``).
Each cell's ``land_cover`` tile takes the map's values for every member; the other tiles keep
their class defaults. Every problem is an InvalidArgument with ``field="parameters_url"`` and a
rule (readable, shape, grid_match, parameters, land_cover, valid_range); nothing is opened then.
"""

from __future__ import annotations

import numpy as np
import torch

from coupler.errors import InvalidArgument
from coupler.spec import SessionSpec
from emulators import landcover as P

FIELD = "parameters_url"
GRID_TOLERANCE_DEG = 1e-9


def _bad(rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{FIELD}: {message}", field=FIELD, rule=rule)


def read_map(url: str, spec: SessionSpec) -> tuple[np.ndarray, np.ndarray]:
    """(class index (cell,) int64, parameters (cell, 12) float64) of the map at ``url``,
    checked against ``spec``'s grid and the published ranges."""
    from emulators import io

    try:
        ds = io.open_zarr(url)
    except Exception as exc:  # any store failure is the same refusal
        raise _bad("readable", f"cannot open a Zarr parameter map at {url!r}: {exc}") from None
    n = spec.n_cells
    if "cell" not in ds.sizes:
        raise _bad(
            "shape", f"the map has no 'cell' dimension (dimensions {sorted(map(str, ds.sizes))})"
        )
    if ds.sizes["cell"] != n:
        raise _bad("shape", f"the map has {ds.sizes['cell']} cells, the grid has {n}")
    for name, grid in (("lat", spec.grid.lat), ("lon", spec.grid.lon)):
        if name not in ds.variables:
            raise _bad("grid_match", f"the map has no {name!r} coordinate")
        values = np.asarray(ds[name].values, dtype=np.float64)
        if values.shape != (n,) or np.abs(values - grid).max() > GRID_TOLERANCE_DEG:
            raise _bad("grid_match", f"the map's {name} differ from the session grid's")
    missing = [p for p in P.PARAMETER_NAMES if p not in ds.variables]
    if missing:
        raise _bad("parameters", f"the map lacks parameter variable(s) {missing}")
    if "land_cover" not in ds.variables:
        raise _bad("land_cover", "the map has no 'land_cover' class index")
    cls = np.asarray(ds["land_cover"].values)
    if cls.shape != (n,) or cls.dtype.kind not in "iu" or cls.min() < 0 or cls.max() >= P.N_CLASSES:
        raise _bad("land_cover", f"land_cover must be (cell,) integers in 0..{P.N_CLASSES - 1}")
    params = np.empty((n, P.N_PARAMETERS))
    for i, p in enumerate(P.PARAMETERS):
        v = np.asarray(ds[p.name].values, dtype=np.float64)
        if v.shape != (n,):
            raise _bad("shape", f"{p.name}: shape {v.shape}, expected ({n},)")
        if not np.isfinite(v).all() or v.min() < p.low or v.max() > p.high:
            raise _bad(
                "valid_range",
                f"{p.name} ({p.long_name}) must be finite in [{p.low:g}, {p.high:g}] {p.units}",
            )
        params[:, i] = v
    return cls.astype(np.int64), params


def apply_map(params: torch.Tensor, spec: SessionSpec) -> torch.Tensor:
    """``params`` (member, cell, class, 12) with the map of ``spec.parameters_url`` applied (a
    new tensor; ``params`` itself when the spec has no map)."""
    if spec.parameters_url is None:
        return params
    cls, values = read_map(spec.parameters_url, spec)
    out = params.clone()
    cells = torch.arange(spec.n_cells)
    out[:, cells, torch.from_numpy(cls)] = torch.from_numpy(values).to(out.dtype)
    return out
