"""The seeded fine-scale land-cover "truth" the downscaler learns from.

No installed package ships a land-cover map (searched: site-packages for MODIS, ESA CCI,
GlobCover, IGBP, land cover/use; basemap-data, pcse, pvlib, cartopy-free environment), so the
truth is generated at 5′ from the real surface data plus seeded, spatially correlated random
fields. Each pixel gets one land class for its land part and class ``WATER_ICE`` for its water
part (ocean from global-land-mask + lakes from basemap), so fractions are exact and sum to 1.

Rules (thresholds chosen once so that the area shares look like the real world's; measured
for seed 0 over 56° S – 76° N, area-weighted, as % of ice-free land: evergreen broadleaf 13.7,
deciduous forest/woodland 23.0, grassland 24.2, cropland 11.7, shrubland 11.3, bare 15.6,
urban 0.6; ice is 2.8 % of the land area):

1. *Ice*: Blue Marble brightness > 0.8 and ``tas_proxy`` < 285 K → the whole pixel is
   ``WATER_ICE`` (Greenland, Arctic islands, high glaciers).
2. *Moisture index* ``wet = 2.5·greenness + 0.8·(1 − aridity) − 0.9·(brightness − 0.3)
   + 0.25·z₄`` (z_σ: unit-variance Gaussian random field of correlation scale σ pixels) →
   bare (wet < −0.2), shrubland (< 0.1), grassland (< 0.65), else forest.
3. *Forest type*: evergreen broadleaf where ``tas_proxy + 3 K·z₈`` > 296 K, else deciduous
   forest / woodland.
4. *Cropland* (human land use): where ``0.8·z₂₄ + 0.6·z₁.₅ + 1.5·s`` > 1.4 on grass, shrub or
   forest, with agro-climatic suitability ``s = exp(−((tas_proxy − 288 K)/9 K)²)·(1 − aridity)``;
   z₂₄ makes agricultural regions, z₁.₅ field-scale patchiness.
5. *Urban*: settlement seeds drawn per land pixel with probability
   ``p = 0.004·exp(−max(d, 0)/150 km)·(0.25 + s)`` (coastal, temperate), each grown into a
   disc of radius 1–4 pixels.

Generation is deterministic for (window, seed); a window's random fields are drawn over that
window (with a reflecting boundary), the globe's with a periodic longitude boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from emulators.lulc.features import FEATURE_NAMES, water_fraction
from emulators.parameters import N_CLASSES, LandCover

_I = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the land-cover generator (defaults: the documented, calibrated values)."""

    seed: int = 0
    moisture_noise: float = 0.25
    bare_below: float = -0.2
    shrub_below: float = 0.1
    grass_below: float = 0.65
    ebf_above_k: float = 296.0
    crop_above: float = 1.4
    urban_rate: float = 0.004
    urban_coast_km: float = 150.0

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")
        if not self.bare_below < self.shrub_below < self.grass_below:
            raise ValueError(
                "bare_below < shrub_below < grass_below must hold, got "
                f"{self.bare_below}, {self.shrub_below}, {self.grass_below}"
            )
        if not 0.0 <= self.urban_rate <= 1.0:
            raise ValueError(f"urban_rate: must be in [0, 1], got {self.urban_rate}")
        if self.moisture_noise < 0 or self.urban_coast_km <= 0:
            raise ValueError("moisture_noise must be >= 0 and urban_coast_km > 0")


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float, wrap: bool):
    """Unit-variance Gaussian random field of correlation scale ``sigma`` pixels."""
    z = rng.standard_normal(shape).astype(np.float32)
    mode = ("reflect", "wrap") if wrap else "reflect"
    return ndimage.gaussian_filter(z, sigma, mode=mode) * np.float32(2 * np.sqrt(np.pi) * sigma)


def generate(
    features: np.ndarray, config: GeneratorConfig, *, periodic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Land cover of one window from its static ``features`` (N_FEATURES, H, W).

    Returns ``(land_class, fractions)``: the (H, W) int64 class of each pixel's land part
    (``LandCover``) and the (N_CLASSES, H, W) float32 area fractions (1), which sum to 1 per
    pixel. ``periodic``: the window is the whole circle of longitude (random fields wrap).
    """
    if features.ndim != 3 or features.shape[0] != len(FEATURE_NAMES):
        raise ValueError(
            f"features: expected shape ({len(FEATURE_NAMES)}, H, W), got {features.shape}"
        )
    rng = np.random.default_rng(config.seed)
    shape = features.shape[1:]
    z4, z8, z24, z15 = (_field(rng, shape, s, periodic) for s in (4.0, 8.0, 24.0, 1.5))
    u_seed = rng.random(shape)
    u_radius = rng.random(shape)

    tas = features[_I["tas_proxy"]].astype(np.float64)
    arid = features[_I["aridity_proxy"]].astype(np.float64)
    green = features[_I["greenness"]].astype(np.float64)
    bright = features[_I["brightness"]].astype(np.float64)
    dist = features[_I["distance_to_coast"]].astype(np.float64)
    water = water_fraction(features).astype(np.float64)

    wet = 2.5 * green + 0.8 * (1 - arid) - 0.9 * (bright - 0.3) + config.moisture_noise * z4
    cls = np.full(shape, int(LandCover.GRASSLAND), dtype=np.int64)
    cls[wet < config.grass_below] = LandCover.GRASSLAND
    cls[wet < config.shrub_below] = LandCover.SHRUBLAND
    cls[wet < config.bare_below] = LandCover.BARE
    forest = wet >= config.grass_below
    ebf = tas + 3.0 * z8 > config.ebf_above_k
    cls[forest & ebf] = LandCover.EVERGREEN_BROADLEAF_FOREST
    cls[forest & ~ebf] = LandCover.DECIDUOUS_FOREST_WOODLAND

    suit = np.exp(-(((tas - 288.0) / 9.0) ** 2)) * (1 - arid)
    crop = (0.8 * z24 + 0.6 * z15 + 1.5 * suit > config.crop_above) & (cls != LandCover.BARE)
    cls[crop] = LandCover.CROPLAND

    landish = water < 0.5
    p_seed = config.urban_rate * np.exp(-np.maximum(dist, 0) / config.urban_coast_km)
    seeds = landish & (u_seed < p_seed * (0.25 + suit))
    if seeds.any():
        radius = 1.0 + np.minimum(-1.5 * np.log1p(-u_radius), 3.0)  # 1–4 px, exponential
        dpx, (iy, ix) = ndimage.distance_transform_edt(~seeds, return_indices=True)
        urban = dpx <= radius[iy, ix]
        cls[urban] = LandCover.URBAN

    ice = (bright > 0.8) & (tas < 285.0)
    cls[ice] = LandCover.WATER_ICE

    land_part = np.where(ice, 0.0, 1.0 - water).astype(np.float32)
    return cls, fractions_of(cls, land_part)


def fractions_of(cls: np.ndarray, land_part: np.ndarray) -> np.ndarray:
    """(8, …) float32 fractions: ``land_part`` on each pixel's land class ``cls``, the rest
    ``WATER_ICE``."""
    out = np.zeros((N_CLASSES, *cls.shape), dtype=np.float32)
    np.put_along_axis(out, cls[None].astype(np.int64), land_part[None].astype(np.float32), axis=0)
    out[LandCover.WATER_ICE] += 1.0 - land_part.astype(np.float32)
    return out


def coarsen(fractions: np.ndarray, factor: int) -> np.ndarray:
    """Class fractions aggregated over ``factor × factor`` blocks: the coarse input.

    Pixels count equally, as in the network's conservation layer; on the 5′ grid the pixel
    areas inside one 40′ block differ by ≈ tan φ · 1.2 % (0.5 % at 23°, 2 % at 60°, 4.7 % at
    76°), which this definition ignores."""
    h, w = fractions.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"fractions: shape {h}x{w} not divisible by factor {factor}")
    f64 = fractions.astype(np.float64)
    blocks = f64.reshape(*f64.shape[:-2], h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(-3, -1))
