"""The fine grid of the downscaler: a global regular latitude–longitude grid at 5′ (1/12°,
≈ 9.3 km at the equator), rows from north to south, columns from 180° W eastward.

A :class:`Window` is a rectangle of rows and columns on that grid; columns wrap around the
dateline, rows do not. Coarse cells are ``factor × factor`` blocks of fine pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fine pixels per degree (5′ grid).
PX_PER_DEGREE = 12
N_ROWS = 180 * PX_PER_DEGREE
N_COLS = 360 * PX_PER_DEGREE
#: Mean Earth radius (km), for distances.


@dataclass(frozen=True)
class Window:
    """Rows ``row0 … row0+nrows-1`` (north → south) and columns ``col0 …`` (wrapping, west →
    east) of the global 5′ grid."""

    row0: int
    col0: int
    nrows: int
    ncols: int

    def __post_init__(self) -> None:
        if self.nrows < 1 or self.ncols < 1:
            raise ValueError(f"window: nrows and ncols must be >= 1, got {self.nrows}x{self.ncols}")
        if self.row0 < 0 or self.row0 + self.nrows > N_ROWS:
            raise ValueError(
                f"window: rows {self.row0}..{self.row0 + self.nrows - 1} outside 0..{N_ROWS - 1}"
            )
        if not 0 <= self.col0 < N_COLS:
            raise ValueError(f"window: col0 {self.col0} outside 0..{N_COLS - 1}")
        if self.ncols > N_COLS:
            raise ValueError(f"window: ncols {self.ncols} > {N_COLS}")

    @classmethod
    def globe(cls) -> Window:
        return cls(0, 0, N_ROWS, N_COLS)

    @classmethod
    def around(cls, lat: float, lon: float, nrows: int, ncols: int) -> Window:
        """The window of ``nrows × ncols`` pixels whose north-west corner is the pixel holding
        (``lat``, ``lon``) in degrees; rows are clipped to stay on the globe."""
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"lat: {lat} outside [-90, 90] degrees_north")
        row = min(int((90.0 - lat) * PX_PER_DEGREE), N_ROWS - nrows)
        col = int(((lon + 180.0) % 360.0) * PX_PER_DEGREE) % N_COLS
        return cls(max(row, 0), col, nrows, ncols)

    def lat(self) -> np.ndarray:
        """(nrows,) pixel-centre latitudes, degrees_north."""
        rows = np.arange(self.row0, self.row0 + self.nrows)
        return 90.0 - (rows + 0.5) / PX_PER_DEGREE

    def lon(self) -> np.ndarray:
        """(ncols,) pixel-centre longitudes in [-180, 180), degrees_east."""
        cols = (np.arange(self.col0, self.col0 + self.ncols)) % N_COLS
        return -180.0 + (cols + 0.5) / PX_PER_DEGREE


def take(global_array: np.ndarray, window: Window, scale: int = 1) -> np.ndarray:
    """The rows/columns of ``window`` from a global array whose last two axes are the grid
    refined ``scale`` times (north → south, 180° W eastward); columns wrap."""
    r0, r1 = window.row0 * scale, (window.row0 + window.nrows) * scale
    cols = (np.arange(window.col0 * scale, (window.col0 + window.ncols) * scale)) % (N_COLS * scale)
    c0 = int(cols[0])
    if c0 + cols.size <= N_COLS * scale:  # contiguous: a view-friendly slice
        return global_array[..., r0:r1, c0 : c0 + cols.size]
    return np.take(global_array[..., r0:r1, :], cols, axis=-1)


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor × factor`` blocks of the last two axes (their sizes divisible by it)."""
    h, w = a.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"block_mean: shape {h}x{w} not divisible by factor {factor}")
    shaped = a.reshape(*a.shape[:-2], h // factor, factor, w // factor, factor)
    return shaped.mean(axis=(-3, -1))
