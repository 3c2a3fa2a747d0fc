"""Covariance localisation: the Gaspari–Cohn taper, distances, and sparse observation-to-state
localisation factors.

Gaspari & Cohn (1999, QJRMS 125:723-757, eq. 4.10): a compactly supported fifth-order piecewise
rational function of ``z = distance / half_width``; 1 at distance 0, 0 beyond ``2 * half_width``
(DART's ``cutoff`` is this half-width). DAPPER/Sakov express a localisation *radius* ``r`` instead:
``half_width = r * sqrt(10/3)`` (DAPPER rounds it to 1.82), so that near zero the taper bends like
a Gaussian of standard deviation ``r`` (GC ≈ 1 - 5z²/3); see :func:`half_width_from_radius`. The
published Lorenz-96 benchmarks use that convention.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from coupler.errors import InvalidArgument
from emulators.constants import EARTH_MEAN_RADIUS_IUGG_KM as EARTH_RADIUS_KM

#: Mean Earth radius (IUGG), km.


def half_width_from_radius(radius: float) -> float:
    """Gaspari–Cohn half-width for a DAPPER/Sakov localisation radius (same unit):
    ``radius * sqrt(10/3)``, the width whose taper has the curvature at zero of a Gaussian of
    standard deviation ``radius``."""
    if not math.isfinite(radius) or radius <= 0:
        raise InvalidArgument(
            f"localization: radius must be > 0, got {radius}", field="localization", rule="positive"
        )
    return radius * math.sqrt(10.0 / 3.0)


def gaspari_cohn(distance: torch.Tensor, half_width: float) -> torch.Tensor:
    """Gaspari–Cohn (1999) eq. 4.10 taper (1) of ``distance`` (any unit, >= 0) for a half-width
    in the same unit; zero at and beyond ``2 * half_width``."""
    if not math.isfinite(half_width) or half_width <= 0:
        raise InvalidArgument(
            f"half_width: must be > 0, got {half_width}", field="half_width", rule="positive"
        )
    z = distance.abs() / half_width
    inner = ((-0.25 * z + 0.5) * z + 0.625) * z**3 - (5.0 / 3.0) * z**2 + 1.0
    zs = torch.where(z > 0, z, torch.ones_like(z))
    outer = (
        ((((1.0 / 12.0) * z - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z**2
        - 5.0 * z
        + 4.0
        - 2.0 / (3.0 * zs)
    )
    out = torch.where(z <= 1.0, inner, torch.where(z < 2.0, outer, torch.zeros_like(z)))
    return out.clamp(min=0.0)


def great_circle_km(
    lat1: torch.Tensor | float,
    lon1: torch.Tensor | float,
    lat2: torch.Tensor | float,
    lon2: torch.Tensor | float,
) -> torch.Tensor:
    """Great-circle distance (km) between points given in degrees, broadcasting; haversine
    formula on a sphere of radius :data:`EARTH_RADIUS_KM`."""
    p1, l1, p2, l2 = (
        torch.deg2rad(torch.as_tensor(v, dtype=torch.float64)) for v in (lat1, lon1, lat2, lon2)
    )
    h = (
        torch.sin((p2 - p1) / 2) ** 2
        + torch.cos(p1) * torch.cos(p2) * torch.sin((l2 - l1) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * torch.asin(h.clamp(0.0, 1.0).sqrt())


def periodic_distance(a: torch.Tensor, b: torch.Tensor, period: float) -> torch.Tensor:
    """Distance between positions on a ring of length ``period`` (grid points for Lorenz-96),
    broadcasting."""
    d = (a.double() - b.double()).abs() % period
    return torch.minimum(d, period - d)


def _unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    lat, lon = np.deg2rad(lat_deg), np.deg2rad(lon_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


@dataclass(frozen=True, eq=False)
class Localization:
    """Sparse localisation factors of each observation onto the augmented columns
    ``[state (M) | observations (P)]`` of an ensemble, in compressed rows by observation.

    ``ptr``: (P+1,) int64; row ``j`` is ``index[ptr[j]:ptr[j+1]]`` (augmented column numbers,
    ``< M`` for state columns, ``M + k`` for observation ``k``) with factors ``weight[...]`` in
    (0, 1]. Columns not listed in a row get factor 0 (untouched by that observation).
    ``column_site`` (M,), when known: the site of each state column; columns of one site share
    their factors (so a local analysis can be done once per site).
    """

    n_state: int
    n_obs: int
    ptr: np.ndarray
    index: torch.Tensor
    weight: torch.Tensor
    column_site: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.ptr.shape != (self.n_obs + 1,) or int(self.ptr[-1]) != self.index.shape[0]:
            raise ValueError("localization: ptr does not match the number of observations/entries")
        if self.index.shape != self.weight.shape:
            raise ValueError("localization: index and weight differ in shape")

    # ---- builders ----------------------------------------------------------------------------
    @staticmethod
    def from_coo(
        n_state: int,
        n_obs: int,
        obs: np.ndarray,
        column: np.ndarray,
        weight: np.ndarray,
    ) -> Localization:
        """From triplets (observation, augmented column, factor); zero factors are dropped."""
        keep = weight > 0
        obs, column, weight = obs[keep], column[keep], weight[keep]
        order = np.lexsort((column, obs))
        obs, column, weight = obs[order], column[order], weight[order]
        ptr = np.zeros(n_obs + 1, dtype=np.int64)
        np.cumsum(np.bincount(obs, minlength=n_obs), out=ptr[1:])
        return Localization(
            n_state,
            n_obs,
            ptr,
            torch.from_numpy(column.astype(np.int64)),
            torch.from_numpy(weight.astype(np.float64)),
        )

    @staticmethod
    def from_dense(rho_state: torch.Tensor, rho_obs: torch.Tensor) -> Localization:
        """From dense factors: ``rho_state`` (P, M) observation-to-state, ``rho_obs`` (P, P)
        observation-to-observation."""
        p, m = rho_state.shape
        if rho_obs.shape != (p, p):
            raise ValueError(f"rho_obs: shape {tuple(rho_obs.shape)}, expected ({p}, {p})")
        full = torch.cat([rho_state, rho_obs], dim=1).double().numpy()
        obs, col = np.nonzero(full > 0)
        return Localization.from_coo(m, p, obs, col, full[obs, col])

    @staticmethod
    def periodic(
        state_pos: torch.Tensor, obs_pos: torch.Tensor, period: float, half_width: float
    ) -> Localization:
        """Grid-point distance on a ring (Lorenz-96): Gaspari–Cohn of the periodic distance."""
        rs = gaspari_cohn(
            periodic_distance(obs_pos[:, None], state_pos[None, :], period), half_width
        )
        ro = gaspari_cohn(periodic_distance(obs_pos[:, None], obs_pos[None, :], period), half_width)
        return Localization.from_dense(rs, ro)

    @staticmethod
    def sphere(
        site_lat: np.ndarray,
        site_lon: np.ndarray,
        state_site: np.ndarray,
        obs_lat: np.ndarray,
        obs_lon: np.ndarray,
        half_width_km: float,
    ) -> Localization:
        """Great-circle Gaspari–Cohn localisation on the sphere.

        site_lat/site_lon: (S,) degrees, the locations (cells). state_site: (M,) int, the site of
        each state column, or -1 for a column without location (a global parameter: factor 1
        for every observation). obs_lat/obs_lon: (P,) degrees. Neighbours come from a KD-tree
        ball query on unit vectors (chord of the great-circle support ``2 * half_width_km``).
        """
        state_site = np.asarray(state_site, dtype=np.int64)
        m, p = state_site.shape[0], int(np.asarray(obs_lat).shape[0])
        gc_support = 2.0 * half_width_km
        chord = 2.0 * math.sin(min(gc_support / EARTH_RADIUS_KM, math.pi) / 2.0) + 1e-12
        xyz_obs = _unit_vectors(np.asarray(obs_lat, float), np.asarray(obs_lon, float))
        site_tree = cKDTree(_unit_vectors(np.asarray(site_lat, float), np.asarray(site_lon, float)))
        obs_tree = cKDTree(xyz_obs)

        def pairs(tree: cKDTree) -> tuple[np.ndarray, np.ndarray]:
            hits = tree.query_ball_point(xyz_obs, chord, return_sorted=False)
            counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=p)
            rows = np.repeat(np.arange(p, dtype=np.int64), counts)
            cols = np.concatenate(
                [np.asarray(h, dtype=np.int64) for h in hits] or [np.zeros(0, dtype=np.int64)]
            )
            return rows, cols.astype(np.int64)

        def weights(rows: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
            d = great_circle_km(
                torch.from_numpy(np.asarray(obs_lat, float)[rows]),
                torch.from_numpy(np.asarray(obs_lon, float)[rows]),
                torch.from_numpy(lat),
                torch.from_numpy(lon),
            )
            return gaspari_cohn(d, half_width_km).numpy()

        # observation -> site, then site -> its state columns
        o_s, s = pairs(site_tree)
        w_s = weights(o_s, np.asarray(site_lat, float)[s], np.asarray(site_lon, float)[s])
        located = np.nonzero(state_site >= 0)[0]
        by_site = located[np.argsort(state_site[located], kind="stable")]
        n_sites = int(np.asarray(site_lat).shape[0])
        site_ptr = np.zeros(n_sites + 1, dtype=np.int64)
        np.cumsum(np.bincount(state_site[located], minlength=n_sites), out=site_ptr[1:])
        per = site_ptr[s + 1] - site_ptr[s]
        o_rows = np.repeat(o_s, per)
        w_rows = np.repeat(w_s, per)
        starts = np.repeat(site_ptr[s], per)
        offs = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
        cols = by_site[starts + offs]
        # columns without location: factor 1 for every observation
        free = np.nonzero(state_site < 0)[0]
        o_free = np.repeat(np.arange(p, dtype=np.int64), free.shape[0])
        c_free = np.tile(free, p)
        # observation -> observation
        o_o, k = pairs(obs_tree)
        w_o = weights(o_o, np.asarray(obs_lat, float)[k], np.asarray(obs_lon, float)[k])
        loc = Localization.from_coo(
            m,
            p,
            np.concatenate([o_rows, o_free, o_o]),
            np.concatenate([cols, c_free, m + k]),
            np.concatenate([w_rows, np.ones(o_free.shape[0]), w_o]),
        )
        return dataclasses.replace(loc, column_site=state_site.copy())

    def scaled(
        self, obs_group: np.ndarray, column_group: np.ndarray, table: np.ndarray
    ) -> Localization:
        """Factors multiplied by ``table[obs_group[j], column_group[c]]`` (e.g. which kinds of
        state an observation type may update; 0 drops the pair). ``obs_group`` (P,) and
        ``column_group`` (n_state + n_obs,) are small ints indexing ``table``."""
        rows = np.repeat(np.arange(self.n_obs), np.diff(self.ptr))
        cols = self.index.numpy()
        factor = np.asarray(table, dtype=np.float64)[obs_group[rows], column_group[cols]]
        # columns of one site may now differ in their factors: no site sharing
        return Localization.from_coo(
            self.n_state, self.n_obs, rows, cols, self.weight.numpy() * factor
        )

    # ---- views -------------------------------------------------------------------------------
    def row(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented columns and factors touched by observation ``j``."""
        a, b = int(self.ptr[j]), int(self.ptr[j + 1])
        return self.index[a:b], self.weight[a:b]

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense (P, M) observation-to-state and (P, P) observation-to-observation factors."""
        full = torch.zeros(self.n_obs, self.n_state + self.n_obs, dtype=torch.float64)
        rows = torch.from_numpy(np.repeat(np.arange(self.n_obs), np.diff(self.ptr)))
        full[rows, self.index] = self.weight
        return full[:, : self.n_state], full[:, self.n_state :]

    def by_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For local analyses: (M, K) observation numbers and factors per state column, padded
        with factor 0 (K = the largest number of observations seen by one column)."""
        rows = np.repeat(np.arange(self.n_obs), np.diff(self.ptr))
        cols = self.index.numpy()
        sel = cols < self.n_state
        rows, cols, w = rows[sel], cols[sel], self.weight.numpy()[sel]
        order = np.argsort(cols, kind="stable")
        rows, cols, w = rows[order], cols[order], w[order]
        counts = np.bincount(cols, minlength=self.n_state)
        k = max(int(counts.max(initial=0)), 1)
        start = np.cumsum(counts) - counts
        slot = np.arange(cols.shape[0]) - np.repeat(start, counts)
        idx = np.zeros((self.n_state, k), dtype=np.int64)
        wt = np.zeros((self.n_state, k), dtype=np.float64)
        idx[cols, slot] = rows
        wt[cols, slot] = w
        return torch.from_numpy(idx), torch.from_numpy(wt)
