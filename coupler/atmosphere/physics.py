"""The equations of the simplified atmosphere, as pure numpy functions (no state, no time loop).

Every function documents its units and its source. Arrays broadcast; temperatures in K, fluxes
in W m-2 (positive in the direction the name says), humidities in kg kg-1, pressures in Pa.
The time stepper (``column``) composes these; tests check them one by one.
"""

from __future__ import annotations

import numpy as np

from emulators import constants as C
from emulators.forcing import _astro

Array = np.ndarray
#: latent heat used for the atmosphere's moisture-energy bookkeeping (J kg-1, at 0 degC)
L_V = C.LATENT_HEAT_VAPORISATION
TWO_PI = 2.0 * np.pi


# ---- solar geometry ---------------------------------------------------------------------------
def solar_declination(day_of_year: Array | float) -> Array:
    """Solar declination δ [rad] for day of year (1 = 1 Jan, fractional allowed); Spencer (1971)
    Fourier series, max error ~0.0006 rad — the forcing generator's own function."""
    return _astro.declination(day_of_year)


def earth_sun_distance_factor(day_of_year: Array | float) -> Array:
    """(r̄/r)² [1], the eccentricity correction of insolation, Spencer (1971) — the forcing
    generator's own function."""
    return _astro.eccentricity_factor(day_of_year)


def hour_angle(utc_hours: Array | float, lon_deg: Array) -> Array:
    """Hour angle h [rad] = (local solar time − 12 h) · 15° h-1, local solar time = UTC + lon/15°
    (mean solar time; the equation of time, ≤ 16 min, is left out)."""
    return np.deg2rad((np.asarray(utc_hours) + np.asarray(lon_deg) / 15.0 - 12.0) * 15.0)


def _cos_zenith_integral(h: Array, a: Array, b: Array, h0: Array) -> Array:
    """∫₀^h max(0, a + b cos s) ds for any h, with h0 ∈ [0, π] the sunset hour angle."""
    turns = np.floor((h + np.pi) / TWO_PI)
    r = h - turns * TWO_PI  # in [-π, π)
    clipped = np.clip(r, -h0, h0)
    per_turn = 2.0 * (a * h0 + b * np.sin(h0))
    return turns * per_turn + a * clipped + b * np.sin(clipped)


def mean_cos_zenith(lat_deg: Array, declination: Array | float, h1: Array, h2: Array) -> Array:
    """Time mean of max(0, cos θ) [1] over the hour-angle interval [h1, h2] (h2 > h1, radians),
    cos θ = sin φ sin δ + cos φ cos δ cos h (e.g. Hartmann 2016, Global Physical Climatology,
    eq. 2.15), integrated analytically between sunrise and sunset (h0 = arccos(−tan φ tan δ)).
    A whole day (h2 − h1 = 2π) gives the classical daily mean (Hartmann eq. 2.17 / π)."""
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    a = np.sin(phi) * np.sin(declination)
    b = np.cos(phi) * np.cos(declination)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 1e-12, -a / np.where(b > 1e-12, b, 1.0), np.where(a > 0, -2.0, 2.0))
    h0 = np.arccos(np.clip(ratio, -1.0, 1.0))
    span = np.asarray(h2) - np.asarray(h1)
    total = _cos_zenith_integral(np.asarray(h2), a, b, h0) - _cos_zenith_integral(
        np.asarray(h1), a, b, h0
    )
    return np.maximum(total / span, 0.0)


def daylight_cos_zenith(lat_deg: Array, declination: Array | float, h1: Array, h2: Array) -> Array:
    """Insolation-weighted mean cos θ over [h1, h2] [1] (the effective slant of the beam for
    path-length dependent absorption), approximated by the daylight mean: mean(max(0, cos θ))
    divided by the sunlit fraction of the interval; 0.5 where there is no sun."""
    mean = mean_cos_zenith(lat_deg, declination, h1, h2)
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    a = np.sin(phi) * np.sin(declination)
    b = np.cos(phi) * np.cos(declination)
    # sunlit fraction: mean of the indicator, i.e. the same integral with a step integrand
    ones = mean_cos_zenith_fraction(a, b, np.asarray(h1), np.asarray(h2))
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(ones > 1e-9, mean / np.where(ones > 1e-9, ones, 1.0), 0.5)
    return np.clip(mu, 0.01, 1.0)


def mean_cos_zenith_fraction(a: Array, b: Array, h1: Array, h2: Array) -> Array:
    """Sunlit fraction [1] of the hour-angle interval [h1, h2] for cos θ = a + b cos h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 1e-12, -a / np.where(b > 1e-12, b, 1.0), np.where(a > 0, -2.0, 2.0))
    h0 = np.arccos(np.clip(ratio, -1.0, 1.0))

    def integral(h: Array) -> Array:
        turns = np.floor((h + np.pi) / TWO_PI)
        r = h - turns * TWO_PI
        return turns * 2.0 * h0 + np.clip(r, -h0, h0)

    return (integral(h2) - integral(h1)) / (h2 - h1)


def toa_insolation(mean_mu: Array, distance_factor: Array | float, solar_constant: float) -> Array:
    """Step-mean insolation at the top of the atmosphere [W m-2] = S₀ (r̄/r)² mean(max(0, cos θ))."""
    return solar_constant * np.asarray(distance_factor) * mean_mu


# ---- moisture ---------------------------------------------------------------------------------
def saturation_vapour_pressure(t: Array) -> Array:
    """e_s(T) [Pa] over water, Tetens form of FAO-56 eq. 11 (Allen et al. 1998), the same form as
    the land models use (``emulators.physics``)."""
    tc = np.asarray(t) - C.T_FREEZE
    return 610.8 * np.exp(17.27 * tc / (tc + 237.3))


def saturation_specific_humidity(t: Array, p: Array | float) -> Array:
    """q_s [kg kg-1] = ε e_s / (p − (1 − ε) e_s)."""
    es = saturation_vapour_pressure(t)
    return C.EPSILON * es / (np.asarray(p) - (1.0 - C.EPSILON) * es)


def vapour_pressure(q: Array, p: Array | float) -> Array:
    """e [Pa] from specific humidity: e = q p / (ε + (1 − ε) q)."""
    q = np.asarray(q)
    return q * np.asarray(p) / (C.EPSILON + (1.0 - C.EPSILON) * q)


def relative_humidity(q: Array, t: Array, p: Array | float) -> Array:
    """RH [1] = e / e_s(T), not clipped (supersaturation shows as > 1)."""
    return vapour_pressure(q, p) / saturation_vapour_pressure(t)


def precipitation_relaxation(
    q: Array, q_sat: Array, rh_threshold: float, water_mass: float, tau: float, dt: float
) -> Array:
    """Precipitation [kg m-2 s-1] by relaxation of the humidity excess over a saturation threshold,
    the large-scale analogue of Betts (1986) / Betts & Miller (1986) adjustment as simplified by
    Frierson (2007, JAS 64, 1959): the excess (q − RH_c q_s) decays with time scale τ; integrated
    exactly over the step, P = max(0, q − RH_c q_s) M (1 − e^(−dt/τ)) / dt, with M [kg m-2] the
    effective air mass holding the column's water (so P·dt never exceeds the excess)."""
    excess = np.maximum(np.asarray(q) - rh_threshold * np.asarray(q_sat), 0.0)
    return excess * water_mass * (-np.expm1(-dt / tau)) / dt


def cloud_fraction(rh: Array, rh_crit: float) -> Array:
    """Cloud fraction [1] from relative humidity, Sundqvist et al. (1989, MWR 117, 1641):
    c = 1 − sqrt((1 − RH) / (1 − RH_c)) for RH > RH_c, else 0 (1 at saturation)."""
    rh = np.clip(np.asarray(rh), 0.0, 1.0)
    return np.where(rh > rh_crit, 1.0 - np.sqrt((1.0 - rh) / (1.0 - rh_crit)), 0.0)


# ---- shortwave --------------------------------------------------------------------------------
def water_vapour_absorptance(precipitable_water: Array, mu: Array | float) -> Array:
    """Fraction of insolation absorbed by water vapour [1], Lacis & Hansen (1974, JAS 31, 118,
    eq. 17): A = 2.9 y / ((1 + 141.5 y)^0.635 + 5.925 y) with y the slant water path in cm,
    y = w M, w [cm] = precipitable water [kg m-2] / 10, magnification M = 35 / sqrt(1224 μ² + 1)."""
    m = 35.0 / np.sqrt(1224.0 * np.asarray(mu) ** 2 + 1.0)
    y = np.asarray(precipitable_water) / 10.0 * m
    return 2.9 * y / ((1.0 + 141.5 * y) ** 0.635 + 5.925 * y)


def rayleigh_reflectance(mu: Array) -> Array:
    """Clear-sky (Rayleigh) reflectance of the atmosphere [1], Lacis & Hansen (1974, eq. 18):
    R = 0.28 / (1 + 6.43 μ)."""
    return 0.28 / (1.0 + 6.43 * np.asarray(mu))


def shortwave_down(
    s_toa: Array, rayleigh: Array, absorptance: Array, cloud: Array, cloud_albedo: float
) -> tuple[Array, Array, Array]:
    """The downward beam [W m-2]: Rayleigh reflection R S and gaseous absorption A S first, then
    clouds (fraction c, albedo α_c) reflect c α_c of the rest: returns (rsds, reflected to space,
    absorbed in the atmosphere). Exactly S = reflected + absorbed + rsds. A single-pass scheme in
    the spirit of Lacis & Hansen (1974)."""
    s_toa = np.asarray(s_toa)
    reflected_clear = rayleigh * s_toa
    absorbed = absorptance * s_toa
    below = s_toa - reflected_clear - absorbed
    reflected_cloud = cloud * cloud_albedo * below
    rsds = below - reflected_cloud
    return rsds, reflected_clear + reflected_cloud, absorbed


def upward_transmission(cloud: Array, cloud_albedo: float, diffuse_absorptance: Array) -> Array:
    """Fraction [1] of the surface-reflected shortwave (rsus) that escapes to space: it crosses
    the clouds (1 − c α_c) and the water vapour (1 − A_diffuse); the rest is absorbed in the
    column (no second reflection back down, a simplification that conserves energy)."""
    return (1.0 - np.asarray(cloud) * cloud_albedo) * (1.0 - np.asarray(diffuse_absorptance))


# ---- longwave ---------------------------------------------------------------------------------
def clear_sky_emissivity(vapour_pressure_pa: Array, t: Array) -> Array:
    """Clear-sky atmospheric emissivity [1], Brutsaert (1975, WRR 11, 742):
    ε = 1.24 (e / T)^(1/7), e in hPa, T in K."""
    return 1.24 * (np.maximum(np.asarray(vapour_pressure_pa), 0.0) / 100.0 / np.asarray(t)) ** (
        1.0 / 7.0
    )


def all_sky_emissivity(clear: Array, cloud: Array) -> Array:
    """All-sky emissivity [1] = c + (1 − c) ε_clear, Crawford & Duchon (1999, JAM 38, 474)."""
    cloud = np.asarray(cloud)
    return cloud + (1.0 - cloud) * np.asarray(clear)


def downwelling_longwave(emissivity: Array, t: Array) -> Array:
    """rlds [W m-2] = ε σ T⁴ (T: the near-surface air temperature)."""
    return np.asarray(emissivity) * C.STEFAN_BOLTZMANN * np.asarray(t) ** 4


def outgoing_longwave(t: Array, a: float, b: float, erf: Array | float) -> Array:
    """OLR [W m-2] = A + B (T − 273.15) − F: the linear law of Budyko (1969, Tellus 21, 611) as in
    North et al. (1981, Rev. Geophys. 19, 91; A = 203.3 W m-2, B = 2.09 W m-2 K-1 fitted to
    observations), with the scenario's effective radiative forcing F entering as reduced
    emission to space. Here B is the climate feedback parameter chosen for an equilibrium climate
    sensitivity of ~3 K per CO2 doubling (IPCC AR6 best estimate, Forster et al. 2021) and A
    closes the global energy balance of the control climate (see docs/atmosphere.md)."""
    return a + b * (np.asarray(t) - C.T_FREEZE) - np.asarray(erf)


def upwelling_longwave(t_surface: Array, rlds: Array, emissivity: float) -> Array:
    """rlus [W m-2] = ε σ T_s⁴ + (1 − ε) rlds (emission plus reflected downwelling longwave)."""
    return emissivity * C.STEFAN_BOLTZMANN * np.asarray(t_surface) ** 4 + (
        1.0 - emissivity
    ) * np.asarray(rlds)


# ---- bulk surface fluxes (ocean, and the standalone bucket land) ------------------------------
def air_density(t: Array, q: Array, p: Array | float) -> Array:
    """ρ [kg m-3] = p / (R_d T (1 + 0.608 q)) (virtual temperature)."""
    return np.asarray(p) / (C.R_DRY_AIR * np.asarray(t) * (1.0 + 0.608 * np.asarray(q)))


def bulk_sensible_heat(rho: Array, wind: Array, t_surface: Array, t_air: Array, ch: float) -> Array:
    """H [W m-2, up] = ρ c_p C_H U (T_s − T_a), bulk aerodynamic formula (e.g. Large & Yeager
    2004, NCAR/TN-460, eq. 4; C_H ≈ 1.0-1.3e-3 over the ocean)."""
    return rho * C.CP_AIR * ch * np.asarray(wind) * (np.asarray(t_surface) - np.asarray(t_air))


def bulk_evaporation(rho: Array, wind: Array, q_surface: Array, q_air: Array, ce: float) -> Array:
    """E [kg m-2 s-1, up] = ρ C_E U (q_s − q_a) (Large & Yeager 2004, eq. 4; C_E ≈ 1.2e-3)."""
    return rho * ce * np.asarray(wind) * (np.asarray(q_surface) - np.asarray(q_air))


# ---- ocean ------------------------------------------------------------------------------------
def mixed_layer_tendency(
    net_surface: Array,
    qflux: Array,
    gamma: float,
    anomaly: Array,
    deep_anomaly: Array,
    heat_cap: float,
) -> Array:
    """dT/dt of the ocean mixed layer [K s-1] = (F_s + Q − γ (T' − T'_d)) / C: a slab ocean with
    prescribed heat transport convergence Q (the "q-flux", Hansen et al. 1984; Bitz et al. 2012)
    losing heat to the deep ocean in proportion to the anomaly difference, the two-layer model of
    Held et al. (2010, J. Clim. 23, 2418) and Geoffroy et al. (2013, J. Clim. 26, 1841)."""
    return (
        np.asarray(net_surface)
        + np.asarray(qflux)
        - gamma * (np.asarray(anomaly) - np.asarray(deep_anomaly))
    ) / heat_cap


def deep_ocean_tendency(
    gamma: float, anomaly: Array, deep_anomaly: Array, heat_cap: float
) -> Array:
    """dT'_d/dt [K s-1] = γ (T' − T'_d) / C_d, the deep layer of the two-layer model."""
    return gamma * (np.asarray(anomaly) - np.asarray(deep_anomaly)) / heat_cap
