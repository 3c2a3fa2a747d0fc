"""Prescribed large-scale moisture transport by the Hadley circulation (regular grids only).

Diffusion alone carries moisture down its gradient, from the humid tropics outwards: it cannot
make the rainy intertropical convergence zone (ITCZ) or the dry subtropics. The Hadley cells'
low-level trade winds carry moisture equatorward and converge it in the ITCZ, while the
poleward return flow aloft is dry (e.g. Hartmann 2016, ch. 6; Peixoto & Oort 1992, ch. 12). That
net equatorward moisture flux is prescribed here as a zonally uniform, upwind-advected flux with
an effective velocity

    v(φ) = −V sin(π (φ − φ_ITCZ) / E)   for |φ − φ_ITCZ| < E, else 0,

(V ≈ 1.5 m s-1 for the whole column water, ~1/3 of the trade winds' speed, since most water sits
in the lowest kilometres; E = 30°, the cells' edge; φ_ITCZ follows the seasonal shift of the
SST climatology). The finite-volume form is conservative: the area-weighted sum of the moisture
tendency is zero, so the moisture and latent-energy budgets close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coupler.atmosphere.grid import EARTH_RADIUS, CellGrid


def hadley_velocity(lat_deg: np.ndarray, itcz_deg: float, speed: float, edge: float) -> np.ndarray:
    """Effective northward velocity [m s-1] of the column's water at latitudes ``lat_deg``."""
    x = (np.asarray(lat_deg, dtype=np.float64) - itcz_deg) / edge
    return np.where(np.abs(x) < 1.0, -speed * np.sin(np.pi * x), 0.0)


@dataclass(frozen=True)
class HadleyGeometry:
    """The north–south faces of a regular grid: ``lat`` (faces,) degrees, ``length`` (faces,) m,
    and the cell ``area`` (ny, nx) m2."""

    shape: tuple[int, int]
    lat: np.ndarray
    length: np.ndarray
    area: np.ndarray

    @staticmethod
    def of(grid: CellGrid) -> HadleyGeometry | None:
        """None for grids without a regular shape (no Hadley transport there)."""
        if grid.shape is None or grid.resolution is None:
            return None
        ny, nx = grid.shape
        lat_rows = grid.lat.reshape(ny, nx)[:, 0]
        lat_face = 0.5 * (lat_rows[:-1] + lat_rows[1:])
        length = EARTH_RADIUS * np.cos(np.deg2rad(lat_face)) * np.deg2rad(grid.resolution)
        return HadleyGeometry((ny, nx), lat_face, length, grid.area.reshape(ny, nx))


def face_flux(geometry: HadleyGeometry, itcz_deg: float, speed: float, edge: float) -> np.ndarray:
    """(faces,) northward flux per unit of q [m2 s-1] = v(φ_face) × face length."""
    return hadley_velocity(geometry.lat, itcz_deg, speed, edge) * geometry.length


def tendency(geometry: HadleyGeometry, flux: np.ndarray, q: np.ndarray) -> np.ndarray:
    """dq/dt [s-1 × q] of first-order upwind advection across the faces, (cell,) in and out;
    conservative: Σ area · dq/dt = 0 exactly up to round-off."""
    q2 = q.reshape(geometry.shape)
    f = flux[:, None]
    upwind = np.where(f > 0, q2[:-1], q2[1:])  # (faces, nx)
    transfer = f * upwind
    out = np.zeros_like(q2)
    out[1:] += transfer
    out[:-1] -= transfer
    return (out / geometry.area).ravel()


def substeps(geometry: HadleyGeometry, flux: np.ndarray, dt: float, courant: float = 0.5) -> int:
    """Explicit substeps keeping the outflow fraction per substep ≤ ``courant`` (stability)."""
    f = np.abs(flux)
    outflow = np.zeros(geometry.shape[0])
    outflow[:-1] += f
    outflow[1:] += f
    worst = float((outflow / geometry.area[:, 0]).max()) * dt
    return max(1, int(np.ceil(worst / courant)))
