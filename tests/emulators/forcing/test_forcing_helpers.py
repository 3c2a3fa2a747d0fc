"""Closed-form checks of the pure forcing helpers (astronomy, thermodynamics, radiation)."""

from __future__ import annotations

import numpy as np
import pytest

from emulators.constants import STEFAN_BOLTZMANN
from emulators.forcing import _astro as A
from emulators.forcing import _derive as D
from emulators.forcing._references import REFERENCES, cite


def test_saturation_vapour_pressure_fao56_table() -> None:
    # FAO-56 Annex 2, Table 2.3: e°(20 °C) = 2.338 kPa, e°(1 °C) = 0.657, e°(35 °C) = 5.623
    assert D.saturation_vapour_pressure(20.0) == pytest.approx(2.338, abs=5e-4)
    assert D.saturation_vapour_pressure(1.0) == pytest.approx(0.657, abs=5e-4)
    assert D.saturation_vapour_pressure(35.0) == pytest.approx(5.623, abs=5e-4)


def test_vapour_pressure_from_dewpoint_fao56_example_5() -> None:
    # FAO-56 example 5: Tdew = 17.0 °C -> ea = 1.94 kPa
    assert D.vapour_pressure_from_dewpoint(17.0) == pytest.approx(1.94, abs=5e-3)


def test_pressure_from_elevation_fao56_example_2() -> None:
    # FAO-56 example 2: z = 1800 m -> P = 81.8 kPa; sea level 101.3 kPa
    assert D.pressure_from_elevation(1800.0) == pytest.approx(81.8e3, abs=50.0)
    assert D.pressure_from_elevation(0.0) == pytest.approx(101.3e3)


def test_specific_humidity_closed_form_and_inverse() -> None:
    eps = 287.05 / 461.5
    q = D.specific_humidity(1000.0, 100_000.0)
    assert q == pytest.approx(eps * 1000.0 / (100_000.0 - (1 - eps) * 1000.0), rel=1e-12)
    e = D.vapour_pressure_from_specific_humidity(q, 100_000.0)
    assert e == pytest.approx(1000.0, rel=1e-12)


def test_fao56_example_8_extraterrestrial_radiation() -> None:
    # FAO-56 example 8: 20°S, 3 September (J = 246): dr = 0.985, δ = 0.120 rad,
    # ωs = 1.527 rad, Ra = 32.2 MJ m-2 d-1
    assert A.inverse_distance_fao56(246) == pytest.approx(0.985, abs=5e-4)
    assert A.declination_fao56(246) == pytest.approx(0.120, abs=5e-4)
    assert A.sunset_hour_angle(-20.0, A.declination_fao56(246)) == pytest.approx(1.527, abs=5e-4)
    assert A.ra_daily_fao56(-20.0, 246) / 1e6 == pytest.approx(32.2, abs=0.05)


def test_fao56_example_9_daylight_hours() -> None:
    # FAO-56 example 9: 20°S, 3 September -> N = 11.7 hours
    assert A.daylight_hours(-20.0, A.declination_fao56(246)) == pytest.approx(11.7, abs=0.05)


def test_polar_night_and_polar_day() -> None:
    winter = A.declination_fao56(355)
    assert A.sunset_hour_angle(80.0, winter) == 0.0
    assert A.sunset_hour_angle(-80.0, winter) == pytest.approx(np.pi)
    assert A.ra_daily_fao56(80.0, 355) == pytest.approx(0.0, abs=1e-6)


def test_spencer_declination_solstices_and_equinox() -> None:
    assert np.rad2deg(A.declination(172.0)) == pytest.approx(23.44, abs=0.1)
    assert np.rad2deg(A.declination(355.0)) == pytest.approx(-23.44, abs=0.1)
    assert abs(np.rad2deg(A.declination(81.0))) < 0.8
    assert A.eccentricity_factor(3.0) == pytest.approx(1.0344, abs=1e-3)  # perihelion
    assert abs(A.equation_of_time(np.arange(1, 366))).max() < 0.28


def test_toa_interval_means_partition_the_daily_integral() -> None:
    """Hourly interval means average exactly to the daily mean with the same day's geometry,
    and match brute-force integration of the instantaneous cos(zenith)."""
    lat = np.array([-60.0, -20.0, 0.0, 36.1, 52.0, 75.0])
    lon = np.array([-150.0, -79.95, 0.0, 5.67, 100.0, 179.0])
    day = np.datetime64("2001-06-03T00:00", "ns")
    hours = day + np.arange(24) * np.timedelta64(3600, "s")
    hourly = A.toa_mean_irradiance(hours, 3600.0, lat, lon)
    daily = A.toa_mean_irradiance(np.array([day]), 86400.0, lat, lon)[0]
    np.testing.assert_allclose(hourly.mean(axis=0), daily, rtol=1e-12, atol=1e-9)
    # brute force: 10-s samples of S0 E0 cos(zenith)
    fine = day + (np.arange(24 * 360) * 10 + 5) * np.timedelta64(1, "s")
    mu = A.cos_zenith(fine, lat, lon)
    e0 = A.eccentricity_factor(A.day_of_year(day + np.timedelta64(12, "h")))
    brute = 1361.0 * e0 * mu.reshape(24, 360, lat.size).mean(axis=1)
    # differences come only from holding the geometry at its noon value for the whole day
    np.testing.assert_allclose(hourly, brute, rtol=2e-3, atol=2.0)


def test_toa_daily_mean_is_the_closed_form_daily_integral() -> None:
    """Daily mean = (S0 E0 / π)(ωs sinφ sinδ + cosφ cosδ sin ωs) (the FAO-56 eq. 21 form) with
    Spencer's δ and E0; and within 3 % of FAO-56 Ra, whose eq. 24 declination is ~1° off
    Spencer's in early September."""
    lat = np.array([-20.0, 0.0, 45.0, 60.0])
    day = np.datetime64("2001-09-03T00:00", "ns")  # J = 246
    daily = A.toa_mean_irradiance(
        np.array([day]), 86400.0, lat, np.zeros(4), solar_constant=A.SOLAR_CONSTANT_FAO56
    )[0]
    doy = A.day_of_year(day + np.timedelta64(12, "h"))
    d, e0 = A.declination(doy), A.eccentricity_factor(doy)
    phi = np.deg2rad(lat)
    ws = A.sunset_hour_angle(lat, d)
    closed = (
        A.SOLAR_CONSTANT_FAO56
        * e0
        / np.pi
        * (ws * np.sin(phi) * np.sin(d) + np.cos(phi) * np.cos(d) * np.sin(ws))
    )
    np.testing.assert_allclose(daily, closed, rtol=1e-12)
    np.testing.assert_allclose(daily, A.ra_daily_fao56(lat, 246) / 86400.0, rtol=0.03)


def test_toa_is_zero_at_night_and_bounded() -> None:
    t = np.datetime64("2001-03-21T00:00", "ns") + np.arange(24) * np.timedelta64(3600, "s")
    toa = A.toa_mean_irradiance(t, 3600.0, [0.0], [0.0])[:, 0]
    assert np.all(toa[:5] == 0.0) and np.all(toa[19:] == 0.0)
    assert toa.max() < 1361.0 * 1.035
    assert int(np.argmax(toa)) in (11, 12)


def test_brutsaert_and_crawford_duchon() -> None:
    eps = D.clear_sky_emissivity_brutsaert(1000.0, 283.15)  # e = 10 hPa
    assert eps == pytest.approx(1.24 * (10.0 / 283.15) ** (1 / 7), rel=1e-12)
    assert D.all_sky_emissivity_crawford_duchon(eps, 1.0) == 1.0
    assert D.all_sky_emissivity_crawford_duchon(eps, 0.0) == pytest.approx(eps)
    assert D.all_sky_emissivity_crawford_duchon(eps, 0.5) == pytest.approx(0.5 + 0.5 * eps)
    assert D.downwelling_longwave(283.15, 1000.0, 1.0) == pytest.approx(
        STEFAN_BOLTZMANN * 283.15**4
    )
    lw = D.downwelling_longwave(283.15, 1000.0, 0.0)
    assert 270.0 < lw < 290.0  # ≈ 0.769 σT⁴ = 281 W m-2


def test_cloud_fraction_and_kasten_czeplak() -> None:
    np.testing.assert_allclose(
        D.cloud_fraction_from_transmissivity([0.0, 5.0, 10.0, 12.0, 1.0], [10.0] * 4 + [0.0]),
        [1.0, 0.5, 0.0, 0.0, 0.0],
    )
    assert D.cloud_attenuation_kasten_czeplak(1.0) == pytest.approx(0.25)
    assert D.cloud_attenuation_kasten_czeplak(0.0) == 1.0
    assert D.clear_sky_transmissivity_fao56(100.0) == pytest.approx(0.752)


def test_wind_2m_fao56_example_14() -> None:
    # FAO-56 example 14: 3.2 m/s at 10 m -> 2.4 m/s at 2 m
    assert D.wind_speed_2m_fao56(3.2, 10.0) == pytest.approx(2.4, abs=0.01)
    with pytest.raises(ValueError, match="z_m"):
        D.wind_speed_2m_fao56(3.0, 0.05)


def test_cite_is_ordered_unique_and_rejects_unknown_keys() -> None:
    text = cite(["FAO56", "BRUTSAERT1975", "FAO56"])
    assert text.count("[FAO56]") == 1 and text.index("[FAO56]") < text.index("[BRUTSAERT1975]")
    assert all(len(v) > 40 for v in REFERENCES.values())
    with pytest.raises(KeyError, match="NOPE"):
        cite(["NOPE"])
