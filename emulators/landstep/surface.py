"""The tiles of the land step: class constants, the initial state, and the exact surface
diagnostics (radiation and roughness) every backend computes the same way.

Tile fields are (member, cell, tile) with one tile per land-cover class; the compiled emulators
evaluate the same functions on gathered tile rows (row,). The surface diagnostics are the
reference model's own equations: albedo from leaf optics, LAI and soil wetness (two-stream
canopy reflectance, ``physics.canopy_reflectance``), roughness length from vegetation height and
cover, and the soil water stress factor from ``psicr``. They cost a few element-wise operations,
so no emulator learns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators import parameters as P
from emulators import physics
from emulators.landstep.nitrogen import NITROGEN, leaf_nitrogen
from emulators.protocol import LandState, LandStatic
from emulators.reference import photosynthesis
from emulators.reference.classes import class_table
from emulators.reference.soil import SoilConfig, water_content_at

Tensor = torch.Tensor

LAKE_CAPACITY = 2000.0  # kg m-2 (2 m of water) for the water/ice tile
SOIL_LAYERS = 3
#: soil water of the state a session starts from, as a fraction of the capacity [1]
INITIAL_RELATIVE_WATER = 0.75


def class_constants(soil: SoilConfig, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """(class,) tensors: the reference class table (``reference.classes``) plus the bucket
    capacity [kg m-2] and the vegetated/bare/water indicators [1]."""
    out = class_table(dtype)
    capacity = out["root_depth"] * soil.porosity * C.RHO_WATER
    capacity[P.LandCover.WATER_ICE] = LAKE_CAPACITY
    out["capacity"] = capacity
    veg = torch.zeros(P.N_CLASSES, dtype=dtype)
    veg[list(P.VEGETATED)] = 1.0
    out["vegetated"] = veg
    for name, lc in (("bare", P.LandCover.BARE), ("water", P.LandCover.WATER_ICE)):
        v = torch.zeros(P.N_CLASSES, dtype=dtype)
        v[int(lc)] = 1.0
        out[name] = v
    return out


def initial_state(
    static: LandStatic,
    const: Mapping[str, Tensor],
    *,
    recurrent: Mapping[str, Tensor] | None = None,
    accumulators: tuple[str, ...] = (),
) -> LandState:
    """The state a session starts from, (member, cell, tile): soil water ``w`` at 3/4 of the
    capacity [kg m-2]; skin ``ts`` and soil ``tsoil`` (…, 3) temperatures from latitude,
    302 − 45 sin²φ [K]; leaf carbon ``cleaf`` for half of LAI_max [kg C m-2]; then the backend's
    ``recurrent`` state as given, its daily ``accumulators`` at zero, and last the leaf nitrogen
    pool ``nleaf`` = cleaf / C:N [kg N m-2] (``nitrogen``)."""
    m, n, k = static.n_members, static.n_cells, P.N_CLASSES
    cap = const["capacity"].expand(m, n, k)
    lat = torch.deg2rad(static.lat).expand(m, n).unsqueeze(-1)
    t0 = (302.0 - 45.0 * torch.sin(lat) ** 2).expand(m, n, k).clone()
    cleaf0 = 0.5 * const["lai_max"] / const["sla"] * const["vegetated"]
    tensors = {
        "w": INITIAL_RELATIVE_WATER * cap.clone(),
        "ts": t0,
        "tsoil": t0.unsqueeze(-1).expand(m, n, k, SOIL_LAYERS).clone(),
        "cleaf": cleaf0.expand(m, n, k).clone(),
        **(recurrent or {}),
    }
    zeros = torch.zeros(m, n, k, dtype=torch.float64)
    for name in accumulators:
        tensors[name] = zeros.clone()
    tensors[NITROGEN] = leaf_nitrogen(tensors["cleaf"])
    return LandState(tensors)


@dataclass(frozen=True)
class TileSurface:
    """Exact surface diagnostics of the tiles, from the state at the start of the step."""

    theta: Tensor  # volumetric soil water [m3 m-3]
    lai: Tensor  # leaf area index of the vegetated part [m2 m-2]
    vgcov: Tensor  # vegetation cover fraction (0 for non-vegetated classes) [1]
    albedo: Tensor  # broadband surface albedo [1]
    z0: Tensor  # roughness length for momentum [m]
    f_w: Tensor  # soil water stress factor [1]


@dataclass(frozen=True)
class SurfaceStatics:
    """The part of :func:`surface` fixed by the parameters and class constants: vegetation
    cover [1], roughness length [m] and the critical soil water content [m3 m-3]. A backend that
    steps the same tiles again and again keeps it (``compiled.row_step.RowStatics``)."""

    vgcov: Tensor
    z0: Tensor
    theta_cr: Tensor


def surface_statics(
    params: Tensor, const: Mapping[str, Tensor], soil: SoilConfig, dtype: torch.dtype
) -> SurfaceStatics:
    """:class:`SurfaceStatics` of parameters ``params`` (…, 12) and class constants ``const``
    (as :func:`surface` takes them); ``dtype``: the soil water's, as :func:`surface` casts."""
    veg = const["vegetated"]
    vg = params[..., 4] * veg
    z0_veg = 0.123 * params[..., 0]
    z0 = torch.exp(vg * torch.log(z0_veg) + (1.0 - vg) * torch.log(const["z0_bare"]))
    theta_cr = water_content_at(params[..., 11], soil).to(dtype)
    return SurfaceStatics(vg, z0, theta_cr)


def surface(
    w: Tensor,
    cleaf: Tensor,
    params: Tensor,
    const: Mapping[str, Tensor],
    soil: SoilConfig,
    statics: SurfaceStatics | None = None,
) -> TileSurface:
    """Radiation and roughness phase: albedo, roughness length, LAI and water stress from soil
    water ``w`` [kg m-2], leaf carbon ``cleaf`` [kg C m-2], the 12 MdPL parameters ``params``
    (…, 12) and class constants ``const`` broadcasting against ``w`` (``class_constants``, or
    gathered per row). ``statics``: :func:`surface_statics` of the same parameters and
    constants where the caller keeps them (every bit the same: the same expressions), else
    computed."""
    veg = const["vegetated"]
    fixed = statics or surface_statics(params, const, soil, w.dtype)
    vg = fixed.vgcov
    theta = (w / (const["root_depth"] * C.RHO_WATER)).clamp(0.0, soil.porosity)
    lai = const["sla"] * cleaf * veg
    soil_alb = const["soil_albedo"] * (1.0 - 0.4 * theta / soil.porosity)
    soil_alb = torch.where(veg + const["bare"] > 0, soil_alb, const["soil_albedo"])
    alb_vis = physics.canopy_reflectance(
        params[..., 1] + photosynthesis.LEAF_TRANSMITTANCE_VIS, lai, 0.75 * soil_alb
    )
    alb_nir = physics.canopy_reflectance(params[..., 2] + params[..., 3], lai, 1.25 * soil_alb)
    albedo = vg * 0.5 * (alb_vis + alb_nir) + (1.0 - vg) * soil_alb
    theta_fc = water_content_at(photosynthesis.PSI_FIELD_CAPACITY_KPA, soil).to(w.dtype)
    f_w = photosynthesis.water_stress(theta, theta_fc, fixed.theta_cr) * veg
    return TileSurface(theta, lai, vg, albedo, fixed.z0, f_w)
