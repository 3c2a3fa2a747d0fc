"""Input features of the flux and LAI emulators, assembled identically for training and serving.

Every feature has a name and units (they go into the manifest); networks normalise them with
per-feature mean and standard deviation stored as buffers (``emulators.nets.flux.Normaliser``), so
an exported artifact takes these physical features as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from emulators import constants as C
from emulators import parameters as P
from emulators import physics

Tensor = torch.Tensor

#: day-of-year harmonics L (MdPL: sin/cos(2^l · 2π · DOY/365), l = 0..L−1)
DOY_HARMONICS = 2


@dataclass(frozen=True)
class Feature:
    name: str
    units: str
    long_name: str


def _encodings() -> tuple[Feature, ...]:
    doy = []
    for l_ in range(DOY_HARMONICS):
        for fn in ("sin", "cos"):
            doy.append(Feature(f"doy_{fn}{l_}", "1", f"{fn}(2^{l_}·2π·DOY/365)"))
    hour = (
        Feature("hour_sin", "1", "sin(2π·local solar hour/24)"),
        Feature("hour_cos", "1", "cos(2π·local solar hour/24)"),
    )
    params = tuple(
        Feature(f"param_{p.name}", "1", f"{p.long_name}, (value − low)/(high − low)")
        for p in P.PARAMETERS
    )
    classes = tuple(
        Feature(f"class_{lc.short}", "1", f"land-cover class is {lc.name.lower()}")
        for lc in P.LandCover
    )
    return (*doy, *hour, *params, *classes)


FLUX_FEATURES: tuple[Feature, ...] = (
    Feature("tas", "K", "near-surface air temperature"),
    Feature("huss", "1", "near-surface specific humidity"),
    Feature("ps", "Pa", "surface air pressure"),
    Feature("sfcWind", "m s-1", "near-surface wind speed"),
    Feature("pr_log", "log(1 + mm h-1)", "log1p of precipitation in mm h-1"),
    Feature("rsds", "W m-2", "downwelling shortwave"),
    Feature("rlds", "W m-2", "downwelling longwave"),
    Feature("rsns", "W m-2", "absorbed shortwave rsds·(1 − albedo)"),
    Feature("qdef", "1", "saturation deficit q_s(tas, ps) − huss"),
    Feature("soil_water_rel", "1", "root-zone soil water / capacity"),
    Feature("lai", "1", "leaf area index of the vegetated part"),
    Feature("ts_prev_minus_tas", "K", "previous skin temperature − tas"),
    Feature("tsl1_minus_tas", "K", "soil layer 1 temperature − tas"),
    Feature("tsl2_minus_tas", "K", "soil layer 2 temperature − tas"),
    Feature("tsl3_minus_tas", "K", "soil layer 3 temperature − tas"),
    Feature("f_w", "1", "soil water stress factor"),
    *_encodings(),
)
N_FLUX_FEATURES = len(FLUX_FEATURES)
#: appended to ``FLUX_FEATURES`` for a network trained at several measurement heights (its
#: manifest's inputs end with them): the heights of the forcing a row is driven with
HEIGHT_FEATURES: tuple[Feature, ...] = (
    Feature("log_height_wind", "ln(m)", "ln of sfcWind's height above the zero-plane displacement"),
    Feature(
        "log_height_temperature",
        "ln(m)",
        "ln of tas/huss's height above the zero-plane displacement",
    ),
)


def flux_input_features(width: int) -> tuple[Feature, ...]:
    """The features of a flux network taking ``width`` inputs: ``FLUX_FEATURES``, or those and
    ``HEIGHT_FEATURES`` (a network trained at several measurement heights)."""
    if width == N_FLUX_FEATURES:
        return FLUX_FEATURES
    if width == N_FLUX_FEATURES + len(HEIGHT_FEATURES):
        return FLUX_FEATURES + HEIGHT_FEATURES
    raise ValueError(
        f"n_features: a flux network takes {N_FLUX_FEATURES} features, or "
        f"{N_FLUX_FEATURES + len(HEIGHT_FEATURES)} with the measurement heights, got {width}"
    )


def doy_encoding(doy: Tensor) -> Tensor:
    """(…, 2L) sin/cos(2^l · 2π · DOY/365) for l = 0..L−1 (MdPL)."""
    rad = 2.0 * math.pi * doy / C.DAYS_PER_YEAR
    parts = []
    for l_ in range(DOY_HARMONICS):
        parts += [torch.sin(2.0**l_ * rad), torch.cos(2.0**l_ * rad)]
    return torch.stack(parts, dim=-1)


def hour_encoding(local_hour: Tensor | None, like: Tensor) -> Tensor:
    """(…, 2) sin/cos of the local solar hour [h]. ``None`` (steps of a day or longer, where a
    time of day means nothing: the step covers every hour) gives constant zeros shaped like
    ``like``; the daily flux emulator is trained and served that way."""
    if local_hour is None:
        return torch.zeros(*like.shape, 2, dtype=like.dtype, device=like.device)
    rad = 2.0 * math.pi * local_hour / 24.0
    return torch.stack([torch.sin(rad), torch.cos(rad)], dim=-1)


def step_local_hour(seconds_of_day: Tensor | float, lon: Tensor, dt: float) -> Tensor | None:
    """The local solar hour feature of a step of ``dt`` seconds: ``local_solar_hour`` for
    sub-daily steps, ``None`` (constant zero encoding) for steps of a day or longer."""
    if dt >= C.SECONDS_PER_DAY:
        return None
    return torch.remainder(seconds_of_day / 3600.0 + lon / 15.0, 24.0)


def local_solar_hour(seconds_of_day: float, lon: Tensor) -> Tensor:
    """Local mean solar hour [h] at longitude ``lon`` [degrees east] for UTC seconds of day."""
    return torch.remainder(seconds_of_day / 3600.0 + lon / 15.0, 24.0)


def normalised_parameters(params: Tensor) -> Tensor:
    """(…, 12) parameters mapped to [0, 1] by their published ranges."""
    low, high = P.bounds(params.dtype)
    return (params - low) / (high - low)


def flux_features(
    forcing: dict[str, Tensor],
    *,
    albedo: Tensor,
    theta_rel: Tensor,
    lai: Tensor,
    f_w: Tensor,
    ts_prev: Tensor,
    tsoil: Tensor,
    params: Tensor,
    tile: Tensor,
    doy: Tensor,
    local_hour: Tensor | None,
    static: Tensor | None = None,
    dtype: torch.dtype | None = None,
    heights: Tensor | None = None,
) -> Tensor:
    """(row, N_FLUX_FEATURES) in the order of ``FLUX_FEATURES``; with ``heights`` (row, 2)
    [m], (row, N_FLUX_FEATURES + 2) ending with ``HEIGHT_FEATURES`` (their logarithms).
    ``forcing`` holds (row,) tensors of the required forcing in registry units; ``tsoil`` is
    (row, 3); ``params`` (row, 12); ``tile`` (row,) class indices; ``doy`` (row,) day of
    year; ``local_hour`` (row,) hours, or ``None`` at steps of a day or longer
    (``hour_encoding``). ``static``: the rows' :func:`static_flux_features` if the caller keeps
    them (else computed). With ``dtype`` the features are written straight into a tensor of
    that dtype, each value rounded once from the value computed (every bit as
    ``flux_features(...).to(dtype)``, without the intermediate tensors: the serving path)."""
    tas, huss, ps = forcing["tas"], forcing["huss"], forcing["ps"]
    rsds = forcing["rsds"]
    qs, _ = physics.saturation_specific_humidity(tas, ps)
    columns = [
        tas,
        huss,
        ps,
        forcing["sfcWind"],
        torch.log1p(forcing["pr"].clamp_min(0.0) * 3600.0),
        rsds,
        forcing["rlds"],
        rsds * (1.0 - albedo),
        qs - huss,
        theta_rel,
        lai,
        ts_prev - tas,
        tsoil[:, 0] - tas,
        tsoil[:, 1] - tas,
        tsoil[:, 2] - tas,
        f_w,
    ]
    doy_enc = doy_encoding(doy.to(tas.dtype))
    hour = hour_encoding(local_hour, tas)
    if static is None:
        static = static_flux_features(params, tile, tas.dtype)
    if dtype is None:
        parts = [torch.stack(columns, dim=-1), doy_enc, hour, static.to(tas.dtype)]
        if heights is not None:
            parts.append(torch.log(heights.to(tas.dtype)))
        return torch.cat(parts, -1)
    # one float64 → dtype pass per block; stacking the columns feature-major and writing the
    # transpose is ~2× faster than stacking them row-major
    width = N_FLUX_FEATURES + (0 if heights is None else len(HEIGHT_FEATURES))
    x = torch.empty(tas.shape[0], width, dtype=dtype, device=tas.device)
    a, b = len(columns), len(columns) + 2 * DOY_HARMONICS
    x[:, :a] = torch.stack(columns, dim=0).t()
    x[:, a:b] = doy_enc
    x[:, b : b + 2] = hour
    x[:, b + 2 : N_FLUX_FEATURES] = static
    if heights is not None:
        x[:, N_FLUX_FEATURES:] = torch.log(heights.to(tas.dtype))
    return x


#: the columns of ``FLUX_FEATURES`` fixed by a row's parameters and class (the last ones)
N_STATIC_FLUX_FEATURES = len(P.PARAMETERS) + P.N_CLASSES


def static_flux_features(params: Tensor, tile: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """(row, ``N_STATIC_FLUX_FEATURES``): the normalised parameters and the class one-hot, the
    features that change only with the rows' parameters and cover (a backend keeps them between
    steps), in ``dtype`` (default: the parameters')."""
    onehot = torch.nn.functional.one_hot(tile, P.N_CLASSES).to(params.dtype)
    out = torch.cat([normalised_parameters(params), onehot], dim=-1)
    return out if dtype is None else out.to(dtype)


# ---- physically derived features (``flux_lstm`` with ``physics=True``) --------------------------
#: computed inside the network from the raw ``FLUX_FEATURES`` (so the artifact's inputs do not
#: change), each on a fixed physical scale: the terms of a Penman–Monteith-like evaporation
#: estimate, whose dependence on pressure, humidity and wind is the physics rather than learned
DERIVED_FLUX_FEATURES: tuple[Feature, ...] = (
    Feature("pm_weight", "1", "(s − 0.5)/0.25, s = ε/(ε + 1), ε = (λ/c_p) dq_s/dT"),
    Feature("rn_est", "1", "(rsns + rlds − σ T_s,prev⁴) / 200 W m-2"),
    Feature("le_equilibrium", "1", "s · rn_est: Priestley–Taylor equilibrium LE / 200 W m-2"),
    Feature(
        "le_aerodynamic", "1", "ρ λ g_a (q_s − q) / (ε + 1) / 200 W m-2 (Penman's drying term)"
    ),
    Feature("log_ga", "1", "ln(g_a / m s-1) + 5, g_a = k² u / ln(z/z0)², z/z0 = 100 (neutral)"),
)
N_DERIVED_FLUX_FEATURES = len(DERIVED_FLUX_FEATURES)
#: the columns of ``FLUX_FEATURES`` that ``derived_flux_features`` reads, in its order
DERIVED_FROM: list[int] = [
    [f.name for f in FLUX_FEATURES].index(n)
    for n in ("tas", "huss", "ps", "sfcWind", "rsns", "rlds", "qdef", "ts_prev_minus_tas")
]


def derived_flux_features(x: Tensor, columns: list[int]) -> Tensor:
    """(row, ``N_DERIVED_FLUX_FEATURES``) from raw physical features ``x`` (row,
    ``N_FLUX_FEATURES``) in the units of ``FLUX_FEATURES``, ``columns`` = ``DERIVED_FROM`` (an
    argument, for TorchScript): the Penman–Monteith terms in
    specific-humidity form (Monteith 1965; Priestley & Taylor 1972), with λ(T) [J kg-1], the
    Tetens slope dq_s/dT = q_s · 4098.2/(T − 35.85)² [K-1] (q_s = huss + qdef), ρ = p/(R_d T
    (1 + 0.608 q)) [kg m-3] and a neutral aerodynamic conductance g_a = k² u/ln(100)² [m s-1]
    (u floored at 0.1 m s-1). Continuous, differentiable and exportable."""
    tas, huss, ps, wind = x[:, columns[0]], x[:, columns[1]], x[:, columns[2]], x[:, columns[3]]
    rsns, rlds, qdef, dts = x[:, columns[4]], x[:, columns[5]], x[:, columns[6]], x[:, columns[7]]
    lam = 2.501e6 - 2361.0 * (tas - 273.15)
    dqs = (huss + qdef) * 4098.2 / (tas - 35.85) ** 2
    eps = lam * dqs / C.CP_AIR
    s = eps / (eps + 1.0)
    rn = rsns + rlds - C.STEFAN_BOLTZMANN * (tas + dts) ** 4
    rho = ps / (C.R_DRY_AIR * tas * (1.0 + 0.608 * huss))
    ga = C.VON_KARMAN**2 / math.log(100.0) ** 2 * wind.clamp_min(0.1)
    aero = rho * lam * ga * qdef / (eps + 1.0)
    return torch.stack(
        [
            (s - 0.5) / 0.25,
            rn / 200.0,
            s * rn / 200.0,
            aero / 200.0,
            torch.log(ga) + 5.0,
        ],
        dim=-1,
    )
