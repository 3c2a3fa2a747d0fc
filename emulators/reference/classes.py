"""Per-class properties of the reference model that are *not* among the 12 MdPL parameters.

These are landcoupler's choices, each from the cited literature range, and documented in
``docs/reference-model.md``. Rows are indexed by ``LandCover`` (tile index).

Columns:
- root_depth [m]: depth of the root-zone bucket (Canadell et al. 1996 / Zeng 2001 orders).
- sla [m2 leaf (kg C)-1]: specific leaf area (White et al. 2000; CLM5 PFT table, converted).
- lai_max [1]: phenological cap (Asner et al. 2003 global LAI ranges).
- longevity [days]: leaf life span under no stress (Reich et al. 1992 orders).
- alloc [1]: fraction of NPP allocated to leaves.
- deciduous: 1 if cold/drought triggers shed leaves; 0 for evergreen.
- t_onset [K]: daily-mean temperature above which buds break / growth starts.
- soil_albedo [1]: dry-soil broadband albedo under/around the canopy (wet soil is darker).
- emissivity [1]: surface emissivity.
- z0_bare [m]: roughness length when there is no vegetation (bare, urban, water).
- impervious [1]: fraction of rain that runs off directly (urban sealing).
- heat_capacity_scale [1]: multiplier on the soil column heat capacity (water: mixed layer).
"""

from __future__ import annotations

import torch

from emulators.parameters import LandCover

COLUMNS = (
    "root_depth",
    "sla",
    "lai_max",
    "longevity",
    "alloc",
    "deciduous",
    "t_onset",
    "soil_albedo",
    "emissivity",
    "z0_bare",
    "impervious",
    "heat_capacity_scale",
)

_TABLE: dict[LandCover, tuple[float, ...]] = {
    # root, sla, lai_max, longevity, alloc, deciduous, t_onset, soil_albedo, emis, z0, imp, hcap
    LandCover.EVERGREEN_BROADLEAF_FOREST: (2.0, 12.0, 7.0, 540., 0.30, 0., 278.15, 0.15, 0.98, 0.01, 0.0, 1.0),  # noqa: E501
    LandCover.DECIDUOUS_FOREST_WOODLAND: (1.5, 25.0, 5.5, 180., 0.35, 1., 281.15, 0.17, 0.97, 0.01, 0.0, 1.0),  # noqa: E501
    LandCover.GRASSLAND: (0.6, 30.0, 4.0, 120., 0.45, 1., 278.15, 0.20, 0.97, 0.01, 0.0, 1.0),
    LandCover.CROPLAND: (0.8, 35.0, 5.5, 100., 0.50, 1., 281.15, 0.20, 0.97, 0.01, 0.0, 1.0),
    LandCover.SHRUBLAND: (1.2, 15.0, 2.5, 300., 0.30, 1., 278.15, 0.25, 0.96, 0.01, 0.0, 1.0),
    LandCover.BARE: (0.3, 1.0, 0.0, 100., 0.00, 0., 400.00, 0.30, 0.95, 0.005, 0.0, 1.0),
    LandCover.URBAN: (0.2, 1.0, 0.0, 100., 0.00, 0., 400.00, 0.15, 0.95, 0.5, 0.8, 1.5),
    LandCover.WATER_ICE: (2.0, 1.0, 0.0, 100., 0.00, 0., 400.00, 0.08, 0.97, 0.001, 0.0, 8.0),
}  # fmt: skip


def class_table(dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Column name -> (class,) tensor."""
    rows = torch.tensor([_TABLE[lc] for lc in LandCover], dtype=dtype)
    return {name: rows[:, i] for i, name in enumerate(COLUMNS)}


#: leaf carbon to nitrogen mass ratio [kg C (kg N)-1] per class, fixed (no flexible
#: stoichiometry): the CLM4-CN / CLM4.5 PFT ``leafcn`` values (Oleson et al. 2010, 2013,
#: Table "PFT parameters", after Thornton & Zimmermann 2007) of the PFT each class stands for:
#: broadleaf evergreen tropical tree 30, broadleaf deciduous temperate tree 25, C3 grass 25,
#: crop 25, broadleaf deciduous temperate shrub 25. Leafless classes carry no leaf nitrogen
#: (their leaf carbon is 0); their ratio is a placeholder of 25 that never multiplies a pool.
LEAF_CN: dict[LandCover, float] = {
    LandCover.EVERGREEN_BROADLEAF_FOREST: 30.0,
    LandCover.DECIDUOUS_FOREST_WOODLAND: 25.0,
    LandCover.GRASSLAND: 25.0,
    LandCover.CROPLAND: 25.0,
    LandCover.SHRUBLAND: 25.0,
    LandCover.BARE: 25.0,
    LandCover.URBAN: 25.0,
    LandCover.WATER_ICE: 25.0,
}


def leaf_cn(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(class,) leaf C:N mass ratios [1] (:data:`LEAF_CN`)."""
    return torch.tensor([LEAF_CN[lc] for lc in LandCover], dtype=dtype)
