"""Land cover of the land cells: the eight classes of ``emulators.parameters.LandCover`` from the
control climate of the simplified atmosphere itself (annual-mean temperature and precipitation),
by Whittaker-style biome rules (Whittaker 1975, *Communities and Ecosystems*: biomes by annual
temperature and precipitation). No land-cover data set ships with the installed packages, so
this map is landcoupler's own, coarse and documented; each biome is a fixed mix of classes:

| biome | rule (T °C, P mm yr-1) | mix |
|---|---|---|
| ice sheet | lat < −60°, or Greenland (lat > 60°, −75° < lon < −10°) | water/ice 1 |
| tundra | T < −8 | grass .5, bare .3, shrub .2 |
| boreal forest | −8 ≤ T < 3 | dfw .7, grass .15, shrub .1, water .05 |
| desert | P < 250 | bare .75, shrub .25 |
| dryland | 250 ≤ P < 550 | shrub .45, grass .4, bare .1, crop .05 |
| tropical forest | T ≥ 20, P ≥ 1400 | ebf .8, crop .1, grass .05, shrub .05 |
| savanna | T ≥ 20, 550 ≤ P < 1400 | grass .45, dfw .25, shrub .15, crop .15 |
| temperate | otherwise | dfw .35, crop .3, grass .25, shrub .05, urban .05 |

The rules are applied in the order of the table. The biome of each land cell is also what the
regional feedback table groups by (``regions``).
"""

from __future__ import annotations

import numpy as np

from emulators.parameters import N_CLASSES, LandCover

L = LandCover
BIOMES: dict[str, dict[LandCover, float]] = {
    "ice sheet": {L.WATER_ICE: 1.0},
    "tundra": {L.GRASSLAND: 0.5, L.BARE: 0.3, L.SHRUBLAND: 0.2},
    "boreal forest": {
        L.DECIDUOUS_FOREST_WOODLAND: 0.7, L.GRASSLAND: 0.15, L.SHRUBLAND: 0.1, L.WATER_ICE: 0.05
    },
    "desert": {L.BARE: 0.75, L.SHRUBLAND: 0.25},
    "dryland": {L.SHRUBLAND: 0.45, L.GRASSLAND: 0.4, L.BARE: 0.1, L.CROPLAND: 0.05},
    "tropical forest": {
        L.EVERGREEN_BROADLEAF_FOREST: 0.8, L.CROPLAND: 0.1, L.GRASSLAND: 0.05, L.SHRUBLAND: 0.05
    },
    "savanna": {
        L.GRASSLAND: 0.45, L.DECIDUOUS_FOREST_WOODLAND: 0.25, L.SHRUBLAND: 0.15, L.CROPLAND: 0.15
    },
    "temperate": {
        L.DECIDUOUS_FOREST_WOODLAND: 0.35, L.CROPLAND: 0.3, L.GRASSLAND: 0.25,
        L.SHRUBLAND: 0.05, L.URBAN: 0.05,
    },
}  # fmt: skip
BIOME_NAMES: tuple[str, ...] = tuple(BIOMES)


def classify(
    lat: np.ndarray, lon: np.ndarray, tas: np.ndarray, pr_mm_per_year: np.ndarray
) -> np.ndarray:
    """Biome index (into :data:`BIOME_NAMES`) per cell from annual-mean tas [K] and
    precipitation [mm yr-1] (rules in the module docstring)."""
    t = np.asarray(tas) - 273.15
    p = np.asarray(pr_mm_per_year)
    lat, lon = np.asarray(lat), np.asarray(lon)
    rules = [
        (lat < -60.0) | ((lat > 60.0) & (lon > -75.0) & (lon < -10.0)),
        t < -8.0,
        t < 3.0,
        p < 250.0,
        p < 550.0,
        (t >= 20.0) & (p >= 1400.0),
        t >= 20.0,
        np.ones_like(t, dtype=bool),
    ]
    out = np.full(t.shape, len(rules) - 1)
    for k in reversed(range(len(rules))):
        out = np.where(rules[k], k, out)
    return out


def cover_fractions(biome: np.ndarray) -> np.ndarray:
    """(cell, 8) land-cover fractions (rows sum to 1) of the biome indices."""
    table = np.zeros((len(BIOMES), N_CLASSES))
    for i, mix in enumerate(BIOMES.values()):
        for cls, frac in mix.items():
            table[i, int(cls)] = frac
    if not np.allclose(table.sum(axis=1), 1.0):
        raise ValueError("biome mixes must sum to 1")
    return table[np.asarray(biome)]
