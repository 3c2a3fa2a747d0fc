"""The synthetic weather generator: reproducibility, independence, smoothness, climatology."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr

from emulators import forcing
from emulators import variables as V
from emulators.forcing import _astro as A
from emulators.forcing import synthetic as S

LATS = [-75.0, -45.0, -25.0, 0.0, 25.0, 45.0, 60.0, 80.0]


@pytest.fixture(scope="module")
def year() -> xr.Dataset:
    return forcing.load("synthetic", lat=LATS, lon=[0.0] * len(LATS), days=365, seed=11)


def test_same_seed_same_bytes_and_prefix_stable() -> None:
    lat, lon = [10.0, 50.0, -30.0], [0.0, 8.0, 140.0]
    kw: dict[str, Any] = {"lat": lat, "lon": lon, "days": 20}
    a = forcing.load("synthetic", seed=5, **kw)
    b = forcing.load("synthetic", seed=5, **kw)
    for var in forcing.FORCING_VARIABLES:
        assert a[var].values.tobytes() == b[var].values.tobytes()
    # cell i depends only on (seed, i, its coordinates): more cells (here two chunks: 20 days
    # hourly -> 1092 cells per chunk) leave the first ones unchanged
    assert S.CHUNK_ELEMENTS // (20 * 24) < 1203
    many = forcing.load(
        "synthetic", seed=5, lat=lat + [0.0] * 1200, lon=lon + [0.0] * 1200, days=20
    )
    for var in forcing.FORCING_VARIABLES:
        np.testing.assert_array_equal(many[var].values[:, :3], a[var].values)


def test_different_seed_different_weather() -> None:
    kw: dict[str, Any] = {"lat": [50.0], "lon": [8.0], "days": 60}
    a = forcing.load("synthetic", seed=1, **kw)["tas"].values[:, 0]
    b = forcing.load("synthetic", seed=2, **kw)["tas"].values[:, 0]
    assert not np.array_equal(a, b)
    da, db = a.reshape(-1, 24).mean(1), b.reshape(-1, 24).mean(1)
    assert abs(np.corrcoef(da - da.mean(), db - db.mean())[0, 1]) < 0.6


def test_cells_at_the_same_place_are_independent_but_share_the_climate() -> None:
    ds = forcing.load("synthetic", lat=[45.0] * 2, lon=[7.0] * 2, days=365, seed=0)
    w = ds["sfcWind"].values
    hour = np.arange(w.shape[0]) % 24
    anom = w - np.array([w[hour == h].mean(0) for h in range(24)])[hour]
    assert abs(np.corrcoef(anom[:, 0], anom[:, 1])[0, 1]) < 0.15
    annual = ds["tas"].values.mean(axis=0)
    assert abs(annual[0] - annual[1]) < 1.5  # same climatology, different weather


def test_smooth_in_time(year: xr.Dataset) -> None:
    ps = year["ps"].values[:, 5]
    assert np.corrcoef(ps[:-1], ps[1:])[0, 1] > 0.97  # AR(1), e-folding 2 days: φ = 0.979
    daily = forcing.daily_summary(year)["tas"].values[:, 5]
    anom = daily - np.convolve(daily, np.ones(31) / 31, mode="same")
    lag1 = np.corrcoef(anom[15:-16][:-1], anom[15:-16][1:])[0, 1]
    assert 0.5 < lag1 < 0.95  # persistent synoptic anomalies, not white noise


def test_all_values_in_the_registry_range_even_in_extreme_corners() -> None:
    ds = forcing.load(
        "synthetic",
        lat=[90.0, -90.0, 0.0, 25.0, 0.0],
        lon=[0.0, 0.0, 0.0, 30.0, -160.0],
        elevation=[6000.0, 3000.0, 0.0, -400.0, 0.0],
        land=[1.0, 1.0, 1.0, 1.0, 0.0],
        days=365,
        seed=3,
    )
    for var in forcing.FORCING_VARIABLES:
        V.check(var, ds[var].values)
    counts = {k: v for k, v in ds.attrs.items() if k.startswith("clipped_values_")}
    assert set(counts) == {f"clipped_values_{v}" for v in forcing.FORCING_VARIABLES}


def test_no_clipping_for_ordinary_cells(year: xr.Dataset) -> None:
    assert all(year.attrs[f"clipped_values_{v}"] == 0 for v in forcing.FORCING_VARIABLES)


def test_climatology_by_latitude(year: xr.Dataset) -> None:
    t = year["tas"].values.mean(axis=0)
    i = {lat: k for k, lat in enumerate(LATS)}
    assert 297.0 < t[i[0.0]] < 303.0  # ≈ 300 K at the equator
    assert t[i[0.0]] > t[i[25.0]] > t[i[45.0]] > t[i[60.0]] > t[i[80.0]]
    jan, jul = year["tas"].values[:744].mean(0), year["tas"].values[4344:5088].mean(0)
    assert jul[i[60.0]] - jan[i[60.0]] > 20.0 and abs(jul[i[0.0]] - jan[i[0.0]]) < 3.0
    assert jan[i[-45.0]] > jul[i[-45.0]]  # southern summer in January
    p = year["pr"].values.mean(axis=0) * 86400 * 365  # mm per year
    assert p[i[0.0]] > 1200 and p[i[25.0]] < 700 and p[i[45.0]] > p[i[25.0]]
    daily = forcing.daily_summary(year)
    dtr = (daily["tasmax"] - daily["tasmin"]).values.mean(axis=0)
    assert dtr[i[25.0]] > dtr[i[0.0]] > dtr[i[80.0]]  # larger over dry land
    w = year["sfcWind"].values.mean(axis=0)
    assert np.all((w > 2.0) & (w < 6.0))


def test_shortwave_is_astronomical_and_zero_at_night(year: xr.Dataset) -> None:
    toa = A.toa_mean_irradiance(year["time"].values, 3600.0, LATS, [0.0] * len(LATS))
    rs = year["rsds"].values
    assert np.all(rs[toa == 0.0] == 0.0)
    assert np.all(rs <= 0.76 * toa + 1e-9)  # clear-sky transmissivity at sea level
    assert np.all(rs[toa > 200.0] >= 0.18 * toa[toa > 200.0])  # overcast: 0.25 x 0.75


def test_daily_precipitation_does_not_depend_on_the_timestep() -> None:
    kw: dict[str, Any] = {"lat": [5.0, 50.0], "lon": [20.0, -3.0], "days": 30, "seed": 9}
    hourly = forcing.daily_summary(forcing.load("synthetic", **kw))["pr"].values
    for ts in (1800, 3 * 3600, 86400):
        ds = forcing.load("synthetic", timestep=ts, **kw)
        assert ds.attrs["timestep_seconds"] == ts
        np.testing.assert_allclose(forcing.daily_summary(ds)["pr"].values, hourly, rtol=1e-12)
    wet = hourly > 0
    assert 0.1 < wet.mean() < 0.95
    spd = 24
    pr = forcing.load("synthetic", **kw)["pr"].values.reshape(-1, spd, 2)
    wet_hours = (pr > 0).sum(axis=1)[wet]
    assert wet_hours.min() >= 2 and wet_hours.max() <= 22  # one spell of 2-22 h per wet day


def test_multi_day_timestep_aggregates() -> None:
    ds = forcing.load("synthetic", lat=0.0, lon=0.0, days=10, timestep=5 * 86400)
    assert ds.sizes["time"] == 2 and ds.attrs["timestep_seconds"] == 5 * 86400


def test_ar1_is_stationary_with_unit_variance() -> None:
    z = np.random.default_rng(0).standard_normal((4, 200_000))
    x = S._ar1(z, 3600.0, 24.0)
    assert np.abs(x.var(axis=1) - 1.0).max() < 0.05
    phi = np.exp(-1.0 / 24.0)
    lag1 = np.mean([np.corrcoef(r[:-1], r[1:])[0, 1] for r in x])
    assert lag1 == pytest.approx(phi, abs=0.01)


def test_wind_scale_humidity_offset_and_elevation_act_per_cell() -> None:
    """``wind_scale`` scales the wind exactly (the same random streams), ``rh_offset`` dries the
    air, ``elevation`` lowers pressure and temperature; the other fields stay as they were."""
    kw: dict[str, Any] = {"lat": [40.0, 40.0], "lon": [0.0, 0.0], "days": 30, "seed": 3}
    base = forcing.load("synthetic", **kw)
    calm = forcing.load("synthetic", wind_scale=[0.4, 1.0], **kw)
    np.testing.assert_allclose(calm["sfcWind"].values[:, 0], 0.4 * base["sfcWind"].values[:, 0])
    np.testing.assert_array_equal(calm["sfcWind"].values[:, 1], base["sfcWind"].values[:, 1])
    for var in ("tas", "huss", "ps", "rsds", "rlds", "pr"):
        np.testing.assert_array_equal(calm[var].values, base[var].values)
    dry = forcing.load("synthetic", rh_offset=[-0.3, 0.0], **kw)
    assert dry["huss"].values[:, 0].mean() < 0.8 * base["huss"].values[:, 0].mean()
    assert dry["rlds"].values[:, 0].mean() < base["rlds"].values[:, 0].mean()
    np.testing.assert_array_equal(dry["huss"].values[:, 1], base["huss"].values[:, 1])
    np.testing.assert_array_equal(dry["tas"].values, base["tas"].values)
    high = forcing.load("synthetic", elevation=[2500.0, 0.0], **kw)
    assert high["ps"].values[:, 0].mean() < 0.8 * base["ps"].values[:, 0].mean()
    dt = base["tas"].values[:, 0].mean() - high["tas"].values[:, 0].mean()
    assert dt == pytest.approx(6.5e-3 * 2500.0, rel=1e-6)  # the lapse rate, same anomalies
    np.testing.assert_array_equal(high["ps"].values[:, 1], base["ps"].values[:, 1])


def test_pr_scale_scales_the_rain_of_its_cell_only() -> None:
    """``pr_scale`` multiplies a cell's precipitation exactly (0: none at all; 1: bit for bit the
    default) and leaves every other field, and the other cells, as they were: the wet days (and
    their clouds) are the same draws."""
    kw: dict[str, Any] = {"lat": [50.0, 50.0, 5.0], "lon": [0.0, 0.0, 20.0], "days": 60, "seed": 3}
    base = forcing.load("synthetic", **kw)
    assert (base["pr"].values.sum(0) > 0).all()
    one = forcing.load("synthetic", pr_scale=1.0, **kw)
    scaled = forcing.load("synthetic", pr_scale=[0.0, 2.5, 1.0], **kw)
    for var in forcing.FORCING_VARIABLES:
        assert one[var].values.tobytes() == base[var].values.tobytes(), var
        if var != "pr":
            assert scaled[var].values.tobytes() == base[var].values.tobytes(), var
    pr, pr0 = scaled["pr"].values, base["pr"].values
    assert not pr[:, 0].any()
    np.testing.assert_allclose(pr[:, 1], 2.5 * pr0[:, 1], rtol=1e-15)
    np.testing.assert_array_equal(pr[:, 2], pr0[:, 2])
