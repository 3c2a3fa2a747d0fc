"""Daily → sub-daily disaggregation and time aggregation: conservation to round-off, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from emulators import forcing
from emulators.forcing._disaggregate import DailyWeather, disaggregate
from emulators.forcing._layout import ForcingError, aggregate


def _daily(
    lat: list[float], lon: list[float], start: str = "2001-06-01", days: int = 6
) -> DailyWeather:
    rng = np.random.default_rng(7)
    n = len(lat)
    tmin = rng.uniform(-5.0, 15.0, (days, n))
    return DailyWeather(
        dates=np.arange(np.datetime64(start), np.datetime64(start) + days),
        lat=np.asarray(lat, dtype=float),
        lon=np.asarray(lon, dtype=float),
        elevation=np.full(n, 100.0),
        tmin=tmin,
        tmax=tmin + rng.uniform(2.0, 15.0, (days, n)),
        vapour_pressure=rng.uniform(0.3, 1.2, (days, n)),
        wind=rng.uniform(0.5, 6.0, (days, n)),
        precipitation=rng.gamma(0.6, 6.0, (days, n)) * (rng.random((days, n)) < 0.6),
        radiation=rng.uniform(2e6, 25e6, (days, n)),
    )


@pytest.mark.parametrize("timestep", [600, 1800, 3600, 3 * 3600, 86400])
@pytest.mark.parametrize("pr_hours", [24.0, 5.0, 0.5])
def test_daily_totals_of_pr_and_rsds_are_conserved_exactly(timestep: int, pr_hours: float) -> None:
    daily = _daily([51.97, -33.9, 0.0, 64.0], [5.67, 151.2, -170.0, -20.0])
    times, data, _ = disaggregate(daily, timestep, pr_hours=pr_hours)
    spd = 86400 // timestep
    assert times.shape == (daily.dates.size * spd,)
    assert times[0] == np.datetime64("2001-06-01T00:00", "ns")
    pr_day = data["pr"].reshape(-1, spd, 4).sum(axis=1) * timestep  # kg m-2 d-1 = mm d-1
    rs_day = data["rsds"].reshape(-1, spd, 4).sum(axis=1) * timestep  # J m-2 d-1
    np.testing.assert_allclose(pr_day, daily.precipitation, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rs_day, daily.radiation, rtol=1e-12)


def test_shortwave_follows_the_sun_and_is_zero_at_night() -> None:
    daily = _daily([51.97], [5.67])
    _, data, _ = disaggregate(daily, 3600)
    rs = data["rsds"][:, 0].reshape(-1, 24)
    assert np.all(rs[:, :2] == 0.0) and np.all(rs[:, 22:] == 0.0)  # June nights at 52°N
    assert set(np.argmax(rs, axis=1)) <= {11}  # solar noon 11:38 UTC at 5.67°E


def test_polar_night_radiation_is_spread_uniformly_and_conserved() -> None:
    daily = _daily([80.0], [0.0], start="2001-12-20", days=3)
    times, data, _ = disaggregate(daily, 3600)
    rs = data["rsds"][:, 0].reshape(-1, 24)
    np.testing.assert_allclose(rs, np.repeat(daily.radiation / 86400.0, 24, axis=1), rtol=1e-12)
    assert times.size == 72


def test_temperature_peaks_mid_afternoon_and_stays_within_daily_extremes() -> None:
    base = _daily([45.0], [0.0], days=8)
    rng = np.random.default_rng(3)
    daily = DailyWeather(
        **{
            **base.__dict__,
            "tmin": rng.uniform(0.0, 5.0, (8, 1)),
            "tmax": rng.uniform(15.0, 25.0, (8, 1)),
        }
    )
    _, data, _ = disaggregate(daily, 600)
    t = data["tas"][:, 0] - 273.15
    assert t.min() >= daily.tmin.min() - 1e-9 and t.max() <= daily.tmax.max() + 1e-9
    days = t.reshape(-1, 144)[1:-1]  # interior days: both neighbours known
    peak_hours = np.argmax(days, axis=1) / 6.0
    np.testing.assert_allclose(peak_hours, 14.0, atol=0.2)
    # each interior day's 10-min maximum is within 0.05 K of its Tmax
    np.testing.assert_allclose(days.max(axis=1), daily.tmax[1:-1, 0], atol=0.05)


def test_humidity_is_capped_at_saturation_and_counted() -> None:
    daily = _daily([45.0], [0.0])
    wet = DailyWeather(**{**daily.__dict__, "vapour_pressure": np.full_like(daily.tmin, 5.0)})
    _, data, diag = disaggregate(wet, 3600)
    assert diag["huss_supersaturated_steps_capped"] > 0
    assert data["huss"].max() < 0.06


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tmax", -50.0, "tmin: must be <= tmax"),
        ("precipitation", -1.0, "precipitation: must be >= 0"),
        ("radiation", np.nan, "radiation: contains non-finite"),
    ],
)
def test_daily_weather_validates_its_fields(field: str, value: float, message: str) -> None:
    daily = _daily([45.0], [0.0])
    bad = getattr(daily, field).copy()
    bad[2, 0] = value
    with pytest.raises(ValueError, match=message):
        DailyWeather(**{**daily.__dict__, field: bad})


def test_daily_weather_rejects_non_consecutive_dates() -> None:
    daily = _daily([45.0], [0.0])
    dates = daily.dates.copy()
    dates[3:] += 1
    with pytest.raises(ValueError, match="dates: must be consecutive"):
        DailyWeather(**{**daily.__dict__, "dates": dates})


def test_disaggregate_rejects_bad_step_and_spell() -> None:
    daily = _daily([45.0], [0.0])
    with pytest.raises(ValueError, match="timestep"):
        disaggregate(daily, 7000)
    with pytest.raises(ValueError, match="pr_hours"):
        disaggregate(daily, 3600, pr_hours=25.0)


def test_aggregate_conserves_totals_and_labels_block_starts() -> None:
    ds = forcing.load("synthetic", lat=[10.0, -40.0], lon=[20.0, -60.0], days=4, seed=1)
    for ts in (3 * 3600, 86400):
        agg = aggregate(ds, ts)
        factor = ts // 3600
        assert agg.attrs["timestep_seconds"] == ts
        assert agg["time"].values[1] - agg["time"].values[0] == np.timedelta64(ts, "s")
        for name in ("pr", "rsds", "tas"):
            np.testing.assert_allclose(
                agg[name].values.sum(axis=0) * factor, ds[name].values.sum(axis=0), rtol=1e-12
            )
    two_days = aggregate(ds, 2 * 86400)
    assert two_days.sizes["time"] == 2
    three_days = aggregate(ds, 3 * 86400)  # 4 days: one block, the trailing day dropped
    assert three_days.sizes["time"] == 1 and "dropped" in three_days.attrs["history"]
    with pytest.raises(ForcingError, match="longer than the whole record") as err:
        aggregate(ds, 5 * 86400)
    assert err.value.option == "timestep" and err.value.rule == "shorter_than_record"
