"""FAO-56 reference-ET comparison: the model's reference grass against an independent FAO-56
implementation (``refet``, ASCE-EWRI 2005 standardized ETo; a test/check dependency only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from emulators import constants as C
from emulators.physics import vapour_pressure_from_specific_humidity


@dataclass(frozen=True)
class Fao56Comparison:
    model_annual_mm: float
    refet_daily_annual_mm: float
    refet_hourly_annual_mm: float
    relative_difference_daily: float  # model / refet_daily − 1
    daily_r: float  # Pearson R of daily totals
    days: int

    def summary(self) -> str:
        return (
            f"FAO-56 reference ET over {self.days} days: model {self.model_annual_mm:.1f} mm, "
            f"refet daily ASCE {self.refet_daily_annual_mm:.1f} mm "
            f"({100 * self.relative_difference_daily:+.2f} %), refet hourly ASCE "
            f"{self.refet_hourly_annual_mm:.1f} mm; daily R = {self.daily_r:.4f}"
        )


def _vapour_pressure_kpa(huss: np.ndarray, ps: np.ndarray) -> np.ndarray:
    e = vapour_pressure_from_specific_humidity(torch.as_tensor(huss), torch.as_tensor(ps))
    return e.numpy() / 1000.0


def compare(model: xr.Dataset, forcing: xr.Dataset, daily: xr.Dataset) -> Fao56Comparison:
    """``model``: reference-model output on the FAO-56 surface (one cell); ``forcing``: its hourly
    forcing; ``daily``: ``emulators.forcing.daily_summary(forcing)``."""
    import pandas as pd
    import refet

    dt = float(forcing.attrs.get("timestep_seconds", 3600))
    cell = {"cell": 0}
    # model days in the same local days as ``daily`` (FAO-56 takes Tmin/Tmax per local day)
    offset = np.timedelta64(int(3600 * float(daily.attrs.get("utc_offset_hours", 0.0))), "s")
    et = model["evspsbl"].isel(cell) * dt  # mm per step
    et = et.assign_coords(time=et["time"] + offset)
    steps_per_day = round(C.SECONDS_PER_DAY / dt)
    counts = et.resample(time="1D").count()
    et_model_da = et.resample(time="1D").sum().where(counts == steps_per_day, drop=True)
    daily = daily.sel(time=et_model_da["time"].values)
    et_model = et_model_da.values  # mm d-1, whole local days only
    d = daily.isel(cell)
    elev, lat = float(forcing["elevation"][0]), float(forcing["lat"][0])
    zw = float(forcing.attrs.get("height_wind_m", 10.0))
    et_daily = np.asarray(
        refet.Daily(
            tmin=d["tasmin"].values - C.T_FREEZE,
            tmax=d["tasmax"].values - C.T_FREEZE,
            rs=d["rsds"].values * 0.0864,
            uz=d["sfcWind"].values,
            zw=zw,
            elev=elev,
            lat=lat,
            doy=d["time"].dt.dayofyear.values,
            ea=_vapour_pressure_kpa(d["huss"].values, d["ps"].values),
            method="asce",
            input_units={"lat": "deg"},
        ).eto()
    )
    h = forcing.isel(cell)
    start = pd.DatetimeIndex(h["time"].values)
    et_hourly = np.asarray(
        refet.Hourly(
            tmean=h["tas"].values - C.T_FREEZE,
            rs=h["rsds"].values * dt * 1e-6,
            uz=h["sfcWind"].values,
            zw=zw,
            elev=elev,
            lat=lat,
            lon=float(forcing["lon"][0]),
            doy=start.day_of_year.values,
            time=start.hour.values,
            ea=_vapour_pressure_kpa(h["huss"].values, h["ps"].values),
            method="asce",
            input_units={"lat": "deg", "lon": "deg"},
        ).eto()
    )
    n = min(len(et_model), len(et_daily))
    m, r = et_model[:n], et_daily[:n]
    return Fao56Comparison(
        model_annual_mm=float(m.sum()),
        refet_daily_annual_mm=float(r.sum()),
        refet_hourly_annual_mm=float(np.nansum(et_hourly)),
        relative_difference_daily=float(m.sum() / r.sum() - 1.0),
        daily_r=float(np.corrcoef(m, r)[0, 1]),
        days=n,
    )
