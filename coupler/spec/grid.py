"""The cells of one session's domain: :class:`GridSpec` (a list of cells, so any grid — regular,
reduced Gaussian, icosahedral, HEALPix — is the same to the service; ocean cells are never sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from coupler.errors import InvalidArgument


def bad(field_name: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field_name}: {message}", field=field_name, rule=rule)


def cell_array(name: str, values: Any, n: int | None) -> np.ndarray:
    """A read-only float64 (cell,) copy of ``values``; checks dtype, shape and finiteness."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise bad(name, "dtype", f"expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(cell,)"
        raise bad(name, "shape", f"shape {arr.shape}, expected {want}")
    out = np.array(arr, dtype=np.float64, copy=True)
    if not np.isfinite(out).all():
        raise bad(name, "finite", f"{int((~np.isfinite(out)).sum())} non-finite value(s)")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class GridSpec:
    """The cells of one session's domain (ocean cells are never sent).

    lat: (cell,) degrees_north in [-90, 90]; lon: (cell,) degrees_east in [-360, 360];
    area: (cell,) m2 > 0 (areacella); land_fraction: (cell,) 1, in (0, 1];
    shape: optional (ny, nx) with ny*nx == cell, for maps.
    """

    lat: np.ndarray
    lon: np.ndarray
    area: np.ndarray | None = None
    land_fraction: np.ndarray | None = None
    shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        lat = cell_array("lat", self.lat, None)
        n = lat.shape[0]
        if n == 0:
            raise bad("lat", "non_empty", "a grid needs at least one cell")
        if lat.min() < -90.0 or lat.max() > 90.0:
            raise bad("lat", "valid_range", "latitudes must lie in [-90, 90] degrees_north")
        lon = cell_array("lon", self.lon, n)
        if lon.min() < -360.0 or lon.max() > 360.0:
            raise bad("lon", "valid_range", "longitudes must lie in [-360, 360] degrees_east")
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        if self.area is not None:
            area = cell_array("area", self.area, n)
            if area.min() <= 0.0:
                raise bad("area", "positive", "cell areas must be > 0 m2")
            object.__setattr__(self, "area", area)
        if self.land_fraction is not None:
            frac = cell_array("land_fraction", self.land_fraction, n)
            if frac.min() <= 0.0 or frac.max() > 1.0:
                raise bad(
                    "land_fraction",
                    "valid_range",
                    "land fractions must lie in (0, 1]; "
                    "ocean-only cells are never sent to the land side",
                )
            object.__setattr__(self, "land_fraction", frac)
        if self.shape is not None:
            shape = tuple(self.shape)
            if (
                len(shape) != 2
                or not all(isinstance(s, int | np.integer) and s > 0 for s in shape)
                or int(shape[0]) * int(shape[1]) != n
            ):
                raise bad(
                    "shape",
                    "matches_cells",
                    f"shape {shape} must be (ny, nx) with ny*nx == {n} cells",
                )
            object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))

    @property
    def n_cells(self) -> int:
        return int(self.lat.shape[0])
