"""Cell lists for the simplified atmosphere: a regular latitude–longitude grid at DEG degrees with
cell areas and land fractions from the real ``global-land-mask`` data, any other cell list, the
diffusion operator on the sphere, and the split of the land cells into subdomains ("ranks").

Land fraction: the 30″ GLOBE-derived mask of ``global-land-mask`` 1.0.0 aggregated to 5′
(``emulators.lulc.masks``) and then area-weighted to the cell; inland lakes count as land there.
Cells whose land fraction is below ``min_land_fraction`` are treated as all ocean (tiny islands
are folded into the ocean) and are never sent to the land side; the others are the land cells.

Diffusion (``laplacian``): a finite-volume Laplacian with symmetric face weights, so the
area-weighted global sum of a diffused field is conserved exactly (to solver round-off):
(∇²x)_i ≈ (1/A_i) Σ_j (ℓ_ij / d_ij)(x_j − x_i), with ℓ_ij the shared face length and d_ij the
centre distance. On the regular grid these are exact spherical metrics: east–west faces have
ℓ = R Δφ and d = R cos φ Δλ (the cos(lat) metric), north–south faces ℓ = R cos φ_face Δλ and
d = R Δφ; polar faces have zero length. On an arbitrary cell list a symmetric k-nearest-neighbour
graph is used with ℓ_ij/d_ij = (s_i + s_j)/2, s_i = 4 A_i / Σ_j d_ij², which reproduces the exact
weights on square (s = 1) and hexagonal (s = 1/√3) meshes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from emulators.constants import EARTH_RADIUS

FINE_PER_DEGREE = 12  # the 5′ land-fraction grid


@dataclass(frozen=True, eq=False)
class CellGrid:
    """A list of cells: lat, lon (degrees), area (m2), land_fraction (1, 0 = ocean only);
    ``shape`` (ny, nx) when the cells are a regular grid in row-major order (lat ascending,
    lon ascending), which maps and the exact Laplacian use."""

    lat: np.ndarray
    lon: np.ndarray
    area: np.ndarray
    land_fraction: np.ndarray
    shape: tuple[int, int] | None = None
    resolution: float | None = None
    neighbours: int = field(default=6)

    def __post_init__(self) -> None:
        n = np.asarray(self.lat).shape[0]
        for name in ("lat", "lon", "area", "land_fraction"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,) or not np.isfinite(arr).all():
                raise ValueError(f"{name}: expected ({n},) finite values, got {arr.shape}")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        if n == 0:
            raise ValueError("lat: a grid needs at least one cell")
        if np.abs(self.lat).max() > 90.0:
            raise ValueError("lat: latitudes must lie in [-90, 90] degrees_north")
        if self.area.min() <= 0.0:
            raise ValueError("area: cell areas must be > 0 m2")
        if self.land_fraction.min() < 0.0 or self.land_fraction.max() > 1.0:
            raise ValueError("land_fraction: must lie in [0, 1]")
        if self.shape is not None and self.shape[0] * self.shape[1] != n:
            raise ValueError(f"shape: {self.shape} does not hold {n} cells")
        if self.neighbours < 3:
            raise ValueError(f"neighbours: need >= 3 for a graph Laplacian, got {self.neighbours}")

    @property
    def n_cells(self) -> int:
        return int(self.lat.shape[0])

    @cached_property
    def land_index(self) -> np.ndarray:
        """Indices of the land cells (land fraction > 0), ascending."""
        return np.flatnonzero(self.land_fraction > 0.0)

    @property
    def weights(self) -> np.ndarray:
        """Area weights summing to 1."""
        return self.area / self.area.sum()

    @cached_property
    def laplacian(self) -> sp.csr_matrix:
        """The (cell, cell) diffusion operator [m-2] (see the module docstring)."""
        if self.shape is not None and self.resolution is not None:
            return _regular_laplacian(self.lat, self.area, self.shape, self.resolution)
        return _graph_laplacian(self.lat, self.lon, self.area, self.neighbours)


def regular_axes(deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre latitudes (south → north) and longitudes (from 180° W east) of a regular
    DEG-degree grid; DEG must divide 180 into whole cells and be a multiple of 5′."""
    if not deg > 0 or abs(180.0 / deg - round(180.0 / deg)) > 1e-9:
        raise ValueError(f"resolution: {deg} degrees does not divide 180 degrees into whole cells")
    fine = deg * FINE_PER_DEGREE
    if abs(fine - round(fine)) > 1e-9:
        raise ValueError(f"resolution: {deg} degrees is not a multiple of 5 arc-minutes")
    ny, nx = round(180.0 / deg), round(360.0 / deg)
    lat = -90.0 + deg * (np.arange(ny) + 0.5)
    lon = -180.0 + deg * (np.arange(nx) + 0.5)
    return lat, lon


def regular_area(lat: np.ndarray, deg: float) -> np.ndarray:
    """Exact spherical cell area [m2] = R² Δλ (sin φ_north − sin φ_south) per latitude row."""
    half = np.deg2rad(deg / 2.0)
    phi = np.deg2rad(lat)
    return EARTH_RADIUS**2 * np.deg2rad(deg) * (np.sin(phi + half) - np.sin(phi - half))


def land_fraction_regular(deg: float) -> np.ndarray:
    """(ny, nx) land fraction of a regular DEG grid (lat ascending), the area-weighted mean of
    the 5′ fractions of ``global-land-mask`` inside each cell. Decodes the 30″ mask once per
    process (a few seconds)."""
    from emulators.lulc import grid as fine_grid
    from emulators.lulc import masks

    regular_axes(deg)  # validates
    fine = masks.glm_land_fraction(fine_grid.Window.globe()).astype(np.float64)  # north → south
    fine = fine[::-1]  # south → north
    s = round(deg * FINE_PER_DEGREE)
    lat_fine = -90.0 + (np.arange(fine.shape[0]) + 0.5) / FINE_PER_DEGREE
    w = np.cos(np.deg2rad(lat_fine))[:, None]
    ny, nx = fine.shape[0] // s, fine.shape[1] // s
    num = (fine * w).reshape(ny, s, nx, s).sum(axis=(1, 3))
    den = np.broadcast_to(w, fine.shape).reshape(ny, s, nx, s).sum(axis=(1, 3))
    return np.clip(num / den, 0.0, 1.0)


def regular(
    deg: float, min_land_fraction: float = 0.05, land_fraction: np.ndarray | None = None
) -> CellGrid:
    """The global regular grid at ``deg`` degrees. ``land_fraction`` (ny, nx) overrides the mask
    (tests, aquaplanets); fractions below ``min_land_fraction`` become 0 (ocean)."""
    if not 0.0 <= min_land_fraction < 1.0:
        raise ValueError(f"min_land_fraction: must lie in [0, 1), got {min_land_fraction}")
    lat, lon = regular_axes(deg)
    ny, nx = lat.size, lon.size
    frac = land_fraction_regular(deg) if land_fraction is None else np.asarray(land_fraction)
    if frac.shape != (ny, nx):
        raise ValueError(f"land_fraction: shape {frac.shape}, expected ({ny}, {nx})")
    frac = np.where(frac >= min_land_fraction, frac, 0.0)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    area = np.broadcast_to(regular_area(lat, deg)[:, None], (ny, nx))
    return CellGrid(
        lat2.ravel(), lon2.ravel(), area.ravel(), frac.ravel(), shape=(ny, nx), resolution=deg
    )


def _regular_laplacian(
    lat: np.ndarray, area: np.ndarray, shape: tuple[int, int], deg: float
) -> sp.csr_matrix:
    ny, nx = shape
    dphi = dlam = np.deg2rad(deg)
    phi = np.deg2rad(lat.reshape(ny, nx)[:, 0])
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows, cols, vals = [], [], []
    # east-west faces (periodic): ℓ = R Δφ, d = R cos φ Δλ
    ew = (dphi / (np.cos(phi) * dlam))[:, None] * np.ones((1, nx))
    rows.append(idx.ravel())
    cols.append(np.roll(idx, -1, axis=1).ravel())
    vals.append(ew.ravel())
    # north-south faces between rows j and j+1: ℓ = R cos φ_face Δλ, d = R Δφ
    face = np.cos(0.5 * (phi[:-1] + phi[1:]))
    ns = (face * dlam / dphi)[:, None] * np.ones((1, nx))
    rows.append(idx[:-1].ravel())
    cols.append(idx[1:].ravel())
    vals.append(ns.ravel())
    return _assemble(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), area)


def _graph_laplacian(lat: np.ndarray, lon: np.ndarray, area: np.ndarray, k: int) -> sp.csr_matrix:
    from scipy.spatial import cKDTree

    n = lat.size
    if n < 2:
        return sp.csr_matrix((n, n))
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    kk = min(k, n - 1)
    chord, nbr = cKDTree(xyz).query(xyz, k=kk + 1)
    chord, nbr = chord[:, 1:], nbr[:, 1:]
    dist = 2.0 * EARTH_RADIUS * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
    s = 4.0 * area / np.maximum((dist**2).sum(axis=1), 1e-30)
    i = np.repeat(np.arange(n), kk)
    j = nbr.ravel()
    pairs = np.unique(np.sort(np.stack([i, j], axis=1), axis=1), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    return _assemble(a, b, 0.5 * (s[a] + s[b]), area)


def _assemble(i: np.ndarray, j: np.ndarray, w: np.ndarray, area: np.ndarray) -> sp.csr_matrix:
    """L = A⁻¹ (W − diag(W 1)) for symmetric face weights w on pairs (i, j)."""
    n = area.size
    ij = (np.concatenate([i, j]), np.concatenate([j, i]))
    sym = sp.coo_matrix((np.concatenate([w, w]), ij), shape=(n, n)).tocsr()
    degree = np.asarray(sym.sum(axis=1)).ravel()
    lap = sym - sp.diags(degree)
    return sp.csr_matrix(sp.diags(1.0 / area) @ lap)


def split_land(grid: CellGrid, ranks: int) -> list[np.ndarray]:
    """The land cells split into ``ranks`` contiguous subdomains (indices into the grid), as an
    MPI model's ranks would own bands of its grid. Every rank gets at least one cell."""
    land = grid.land_index
    if ranks < 1:
        raise ValueError(f"ranks: must be >= 1, got {ranks}")
    if land.size < ranks:
        raise ValueError(f"ranks: {ranks} ranks but only {land.size} land cells")
    return [np.asarray(part) for part in np.array_split(land, ranks)]
