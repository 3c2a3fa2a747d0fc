"""The daily LAI step: forcing aggregates accumulated over the (UTC) day, the LAI emulator's input
features, and the update of leaf carbon (LAI = SLA × leaf carbon, as in the reference model).

An LAI artifact is called once a day, but its aggregates depend on the land step they were
accumulated over (at 86 400 s steps ``tas_max`` is the day's mean): :func:`lai_timestep` reads the
land step it was trained on, by which the emulator backend picks it per session."""

from __future__ import annotations

from collections.abc import Callable

import torch

from emulators import parameters as P
from emulators import physics
from emulators.compiled.closure import Closed
from emulators.compiled.features import Feature, doy_encoding, normalised_parameters
from emulators.compiled.flux_step import RowInputs
from emulators.manifest import Manifest
from emulators.protocol import StepClock
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor

#: daily accumulators (per tile row): sums over the day × seconds, running max, elapsed seconds
LAI_ACCUMULATORS = ("acc_tas", "acc_tmax", "acc_rsds", "acc_qdef", "acc_fw", "acc_time")

LAI_FEATURES: tuple[Feature, ...] = (
    Feature("tas_mean", "K", "daily mean near-surface air temperature"),
    Feature("tas_max", "K", "daily maximum of the step-mean air temperature"),
    Feature("rsds_mean", "W m-2", "daily mean downwelling shortwave"),
    Feature("qdef_mean", "1", "daily mean saturation deficit q_s(tas) − huss"),
    Feature("f_w_mean", "1", "daily mean soil water stress factor"),
    Feature("soil_water_rel", "1", "root-zone soil water / capacity at the end of the day"),
    Feature("lai_prev", "1", "leaf area index (vegetated part) at the start of the day"),
    Feature("lat", "degrees_north", "latitude (hemisphere and tropics set the phenological year)"),
    *(
        Feature(f"doy_{fn}{l_}", "1", f"{fn}(2^{l_}·2π·DOY/365)")
        for l_ in range(2)
        for fn in ("sin", "cos")
    ),
    *(
        Feature(f"param_{p.name}", "1", f"{p.long_name}, (value − low)/(high − low)")
        for p in P.PARAMETERS
    ),
    *(
        Feature(f"class_{lc.short}", "1", f"land-cover class is {lc.name.lower()}")
        for lc in P.LandCover
    ),
)
N_LAI_FEATURES = len(LAI_FEATURES)
LAI_OUTPUTS = (("dlai", "1", "change of leaf area index over the day"),)


def lai_timestep(manifest: Manifest) -> float:
    """The land step [s] an LAI emulator was trained on (its daily aggregates come from steps of
    this length): the training config's ``timestep``, or 3600 for artifacts trained before the
    option existed (``lai``). The manifest's ``timestep_seconds`` is the call period (a day)."""
    config = manifest.training.get("config", {})
    return float(config.get("timestep", 3600) if isinstance(config, dict) else 3600)


def accumulate(
    acc: dict[str, Tensor], inp: RowInputs, closed: Closed, soil: SoilConfig, dt: float
) -> dict[str, Tensor]:
    """Add one step of ``dt`` seconds to the daily accumulators (new dict)."""
    del soil
    tas, huss, ps = inp.forcing["tas"], inp.forcing["huss"], inp.forcing["ps"]
    qs, _ = physics.saturation_specific_humidity(tas, ps)
    return {
        "acc_tas": acc["acc_tas"] + tas * dt,
        "acc_tmax": torch.maximum(acc["acc_tmax"], tas),
        "acc_rsds": acc["acc_rsds"] + inp.forcing["rsds"] * dt,
        "acc_qdef": acc["acc_qdef"] + (qs - huss) * dt,
        "acc_fw": acc["acc_fw"] + closed.surface.f_w * dt,
        "acc_time": acc["acc_time"] + dt,
    }


def lai_features(
    *,
    tas_mean: Tensor,
    tas_max: Tensor,
    rsds_mean: Tensor,
    qdef_mean: Tensor,
    fw_mean: Tensor,
    soil_water_rel: Tensor,
    lai_prev: Tensor,
    lat: Tensor,
    doy: Tensor,
    params: Tensor,
    tile: Tensor,
) -> Tensor:
    """(row, N_LAI_FEATURES) in the order of ``LAI_FEATURES``."""
    cont = torch.stack(
        [tas_mean, tas_max, rsds_mean, qdef_mean, fw_mean, soil_water_rel, lai_prev, lat], dim=-1
    )
    onehot = torch.nn.functional.one_hot(tile, P.N_CLASSES).to(cont.dtype)
    return torch.cat(
        [cont, doy_encoding(doy.to(cont.dtype)), normalised_parameters(params), onehot], dim=-1
    )


def advance_leaf_carbon(
    net: Callable[[Tensor], Tensor],
    acc: dict[str, Tensor],
    cleaf: Tensor,
    w_end: Tensor,
    params: Tensor,
    tile: Tensor,
    lat: Tensor,
    const: dict[str, Tensor],
    clock: StepClock,
) -> Tensor:
    """New leaf carbon [kg C m-2] after the day that ends with this step: LAI' = clip(LAI + ΔLAI,
    0, LAI_max) on vegetated tiles (0 elsewhere), leaf carbon = LAI'/SLA. ``lat`` (row,) degrees."""
    period = acc["acc_time"].clamp_min(1.0)
    lai_prev = const["sla"] * cleaf * const["vegetated"]
    x = lai_features(
        tas_mean=acc["acc_tas"] / period,
        tas_max=acc["acc_tmax"],
        rsds_mean=acc["acc_rsds"] / period,
        qdef_mean=acc["acc_qdef"] / period,
        fw_mean=acc["acc_fw"] / period,
        soil_water_rel=w_end / const["capacity"],
        lai_prev=lai_prev,
        lat=lat,
        doy=torch.full_like(cleaf, float(clock.day_of_year)),
        params=params,
        tile=tile,
    )
    dlai = net(x.to(torch.float32)).to(cleaf.dtype)[:, 0]
    lai = torch.minimum((lai_prev + dlai).clamp_min(0.0), const["lai_max"]) * const["vegetated"]
    return lai / const["sla"]
