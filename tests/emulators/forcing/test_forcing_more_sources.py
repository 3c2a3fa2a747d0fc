"""The forcing sources added for held-out evaluation (TMY2 Miami, PVGIS TMY, NSRDB PSM3,
SolarAnywhere, CGMS stations): values against the raw files, time conventions against solar noon,
derivations, gaps and refusals. Layout, units and ranges are checked for every source in
``test_forcing.py``."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from emulators import forcing
from emulators.forcing import ForcingError, cgms_stations
from emulators.forcing import _derive as D

NO_PR = {"missing_pr": "zero"}


def _pvlib_file(name: str) -> str:
    import pvlib

    return os.path.join(os.path.dirname(pvlib.__file__), "data", name)


def _radiation_centroid_utc(ds: xr.Dataset) -> float:
    """Circular rsds-weighted mean time of day [h UTC] of the interval midpoints."""
    dt_h = ds.attrs["timestep_seconds"] / 3600.0
    t = ds["time"].dt.hour.values + ds["time"].dt.minute.values / 60.0 + dt_h / 2.0
    angle = 2.0 * np.pi * t / 24.0
    w = ds["rsds"].values[:, 0]
    mean = math.atan2(float((w * np.sin(angle)).sum()), float((w * np.cos(angle)).sum()))
    return (mean * 24.0 / (2.0 * np.pi)) % 24.0


def _solar_noon_utc(lon: float) -> float:
    return 12.0 - lon / 15.0


@pytest.mark.parametrize(
    "name",
    [
        "tmy2-miami",
        "pvgis-tmy-italy",
        "psm3-colorado",
        "solaranywhere-burlington",
        "cgms-asturias",
        "cgms-sweden",
        "cgms-munich",
        "cgms-ronda",
    ],
)
def test_sources_without_precipitation_refuse_by_default(name: str) -> None:
    with pytest.raises(ForcingError, match=f"{name}: .*no precipitation") as e:
        forcing.load(name)
    assert (e.value.option, e.value.rule) == ("missing_pr", "no_precipitation_data")
    with pytest.raises(ForcingError) as e:
        forcing.load(name, missing_pr="maybe")
    assert (e.value.option, e.value.rule) == ("missing_pr", "choice")


@pytest.mark.parametrize(
    ("name", "timestep"),
    [
        ("tmy2-miami", 3600),
        ("pvgis-tmy-italy", 3600),
        ("psm3-colorado", 1800),
        ("solaranywhere-burlington", 3600),
    ],
)
def test_time_convention_puts_the_radiation_centroid_at_solar_noon(
    name: str, timestep: int
) -> None:
    """Measured offsets: −4, −7, −10 and 0 min; a convention off by half a step or more (30
    min) fails."""
    ds = forcing.load(name, timestep=timestep, **NO_PR)
    noon = _solar_noon_utc(float(ds["lon"].values[0]))
    assert abs(_radiation_centroid_utc(ds) - noon) < 0.25


def test_tmy2_miami_is_the_file_scaled_and_retimed() -> None:
    import pvlib

    df, meta = pvlib.iotools.read_tmy2(_pvlib_file("12839.tm2"))
    ds = forcing.load("tmy2-miami", **NO_PR)
    assert (meta["latitude"], meta["TZ"]) == (25.8, -5)
    assert ds["time"].values[0] == np.datetime64("2001-01-01T05:00", "ns")  # local midnight
    np.testing.assert_array_equal(ds["rsds"].values[:, 0], df["GHI"].to_numpy(dtype=float))
    t = df["DryBulb"].to_numpy(dtype=float) / 10.0 + 273.15  # 0.1 degC in the file
    np.testing.assert_allclose(ds["tas"].values[1:, 0], 0.5 * (t[:-1] + t[1:]))
    assert float(ds["tas"].mean()) - 273.15 == pytest.approx(24.31, abs=0.01)
    assert float(ds["sfcWind"].mean()) == pytest.approx(4.337, abs=1e-3)  # 0.1 m/s scaled
    assert ds.attrs["pr_observed"] == "no" and float(np.abs(ds["pr"]).max()) == 0.0


def test_pvgis_first_and_last_intervals_are_the_file_values_averaged() -> None:
    ds = forcing.load("pvgis-tmy-italy", **NO_PR)
    assert (float(ds["lat"][0]), float(ds["lon"][0]), float(ds["elevation"][0])) == (
        45.0,
        8.0,
        250.0,
    )
    assert ds["time"].values[0] == np.datetime64("2001-01-01T00:00", "ns")
    # file rows 2018-01-01 00:00 and 01:00: T2m 2.04, 1.98; SP 96945, 96877; IR(h) 283.58, 291.44
    v = {k: float(ds[k].values[0, 0]) for k in ("tas", "ps", "rlds")}
    assert v["tas"] == pytest.approx(0.5 * (2.04 + 1.98) + 273.15, abs=1e-9)
    assert v["ps"] == pytest.approx(0.5 * (96945.0 + 96877.0), abs=1e-9)
    assert v["rlds"] == pytest.approx(0.5 * (283.58 + 291.44), abs=1e-9)
    e = 0.9438 * D.saturation_vapour_pressure(2.04) * 1e3
    q0 = float(D.specific_humidity(e, 96945.0))
    assert 0.5 * q0 < float(ds["huss"].values[0, 0]) < 1.5 * q0
    assert ds.attrs["tmy_months_from_years"].startswith("1: 2018, 2: 2007")
    # the typical year is cyclic: the last interval ends on the first sample
    raw = pd.read_csv(_pvlib_file("tmy_45.000_8.000_2005_2023.csv"), skiprows=16, nrows=8760)
    ir = raw["IR(h)"].to_numpy(dtype=float)
    assert float(ds["rlds"].values[-1, 0]) == pytest.approx(0.5 * (ir[-1] + ir[0]), abs=1e-9)


def test_psm3_half_hours_utc_and_derived_longwave() -> None:
    ds = forcing.load("psm3-colorado", timestep=1800, **NO_PR)
    assert ds.sizes["time"] == 17520 and ds.attrs["utc_offset_hours"] == -7.0
    assert ds["time"].values[0] == np.datetime64("2017-01-01T07:00", "ns")
    # file: 2017-01-01 00:00 and 00:30 local, temperature -8.4 and -8.7 degC, pressure 779, 778
    assert float(ds["tas"].values[0, 0]) == pytest.approx(-8.55 + 273.15, abs=1e-9)
    assert float(ds["ps"].values[0, 0]) == pytest.approx(77850.0, abs=1e-9)
    assert 0.0 < ds.attrs["cloud_fraction_daily_mean"] < 1.0
    # all-sky emissivity between the clear-sky (Brutsaert) one and a black body
    t, q, p = (ds[k].values[:, 0] for k in ("tas", "huss", "ps"))
    e = D.vapour_pressure_from_specific_humidity(q, p)
    clear = D.downwelling_longwave(t, e, np.zeros_like(t))
    black = D.downwelling_longwave(t, e, np.ones_like(t))
    rlds = ds["rlds"].values[:, 0]
    assert np.mean(rlds >= clear - 2.0) > 0.99 and np.mean(rlds <= black + 2.0) > 0.99
    hourly = forcing.load("psm3-colorado", **NO_PR)
    np.testing.assert_allclose(
        hourly["rsds"].values[:, 0], ds["rsds"].values[:, 0].reshape(-1, 2).mean(1)
    )


def test_solaranywhere_period_means_pressure_from_elevation() -> None:
    import pvlib

    df, _ = pvlib.iotools.read_tmy3(
        _pvlib_file(
            "Burlington, United States SolarAnywhere Time Series 2021 Lat_44_465 Lon_-73_205 "
            "TMY3 format.csv"
        ),
        map_variables=True,
        encoding="iso-8859-1",
    )
    ds = forcing.load("solaranywhere-burlington", **NO_PR)
    assert ds["time"].values[0] == np.datetime64("2021-01-01T05:00", "ns")
    assert ds["time"].values[-1] == np.datetime64("2022-01-01T04:00", "ns")
    np.testing.assert_array_equal(ds["rsds"].values[:, 0], df["ghi"].to_numpy(dtype=float))
    np.testing.assert_array_equal(
        ds["tas"].values[:, 0], df["temp_air"].to_numpy(dtype=float) + 273.15
    )
    np.testing.assert_allclose(ds["ps"].values, D.pressure_from_elevation(41.0))
    assert float(ds["ps"].values[0, 0]) == pytest.approx(100_816, abs=1.0)


# --- CGMS stations --------------------------------------------------------------------------


def test_cgms_station_coordinates_are_pcses_except_rondas_elevation() -> None:
    from emulators.forcing.daily_sources import _quiet_pcse_import

    with _quiet_pcse_import():
        from pcse.tests import test_penmanmonteith as pm
    for st in cgms_stations.STATIONS.values():
        lat, lon, elev, _, _ = pm.stations[st.number]
        assert (st.lat, st.lon) == (lat, lon)
        assert st.elevation == (740.0 if st.number == 8443 else elev)


def test_cgms_ronda_et0_is_reproduced_with_740_m_not_3_m() -> None:
    from emulators.forcing.daily_sources import _quiet_pcse_import

    with _quiet_pcse_import():
        from pcse.util import penman_monteith
    st = cgms_stations.STATIONS["cgms-ronda"]
    dates, v = cgms_stations._read(cgms_stations._path(st))
    raw = pd.read_csv(cgms_stations._path(st), usecols=["DAY", "ET0"])
    raw["DAY"] = pd.to_datetime(raw["DAY"], format="%d-%b-%y")
    et0 = raw.set_index("DAY")["ET0"].astype(str).str.rstrip(");").astype(float)
    u2 = D.wind_speed_2m_fao56(v[:, 4], 10.0)

    def rmse(elev: float) -> float:
        err = [
            penman_monteith(pd.Timestamp(d).date(), st.lat, elev, tn, tx, rad * 1e3, vap, u)
            - et0[pd.Timestamp(d)]
            for d, (tn, tx, vap, rad, _), u in zip(dates, v, u2, strict=True)
        ]
        return float(np.sqrt(np.mean(np.square(err))))

    assert rmse(740.0) < 0.01 < 0.05 < rmse(3.0)


@pytest.mark.parametrize(
    ("name", "first", "last", "days"),
    [
        ("cgms-asturias", "2013-01-01", "2014-04-23", 478),  # 2014-04-24 is incomplete
        ("cgms-sweden", "2013-01-01", "2014-06-11", 527),  # rows out of order in the file
        ("cgms-munich", "2013-01-01", "2014-06-11", 527),
        ("cgms-ronda", "2013-03-15", "2013-06-15", 93),  # 109 days missing
    ],
)
def test_cgms_default_period_is_the_longest_gap_free_run(
    name: str, first: str, last: str, days: int
) -> None:
    ds = forcing.load(name, timestep=86400, **NO_PR)
    assert ds.sizes["time"] == days
    assert ds["time"].values[0] == np.datetime64(first, "ns")
    assert ds["time"].values[-1] == np.datetime64(last, "ns")


def test_cgms_daily_radiation_is_conserved_to_round_off() -> None:
    ds = forcing.load("cgms-asturias", timestep=1800, end="2013-01-31", **NO_PR)
    daily = ds["rsds"].values[:, 0].reshape(31, 48).mean(1) * 86400.0 / 1e3  # kJ m-2 d-1
    assert daily[0] == pytest.approx(2970.0, rel=1e-12)  # file: 01-JAN-13 RADIATION 2970
    assert daily[1] == pytest.approx(4344.0, rel=1e-12)
    assert ds.attrs["incomplete_days_in_file"] == 4


@pytest.mark.parametrize(
    ("opts", "rule"),
    [
        ({"start": "2013-01-01", "end": "2013-12-31"}, "gap_free_period"),
        ({"start": "yesterday"}, "iso_date"),
        ({"start": "2013-05-01", "end": "2013-04-01"}, "gap_free_period"),
    ],
)
def test_cgms_periods_with_gaps_are_refused_listing_the_gap_free_ones(
    opts: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ForcingError) as e:
        forcing.load("cgms-ronda", **NO_PR, **opts)
    assert (e.value.option, e.value.rule) == ("start", rule)
    if rule == "gap_free_period":
        assert "2013-03-15..2013-06-15" in str(e.value)
