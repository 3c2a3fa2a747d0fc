"""Physical constants, SI units, one place. Sources: WMO/CODATA values as used by FAO-56
(Allen et al. 1998, Annex 3) and common land-surface models (CLM5 technical note, ch. 2)."""

from __future__ import annotations

STEFAN_BOLTZMANN = 5.670374419e-8  # W m-2 K-4 (CODATA 2018)
T_FREEZE = 273.15  # K, 0 degC
GRAVITY = 9.80665  # m s-2
VON_KARMAN = 0.41  # 1, FAO-56 eq. 4 and most LSMs
R_DRY_AIR = 287.05  # J kg-1 K-1, specific gas constant of dry air
R_WATER_VAPOUR = 461.5  # J kg-1 K-1
EPSILON = R_DRY_AIR / R_WATER_VAPOUR  # 0.622, ratio of molecular weights water/dry air
CP_AIR = 1004.64  # J kg-1 K-1, specific heat of dry air at constant pressure
LATENT_HEAT_VAPORISATION = 2.501e6  # J kg-1 at 0 degC (temperature dependence in physics.py)
LATENT_HEAT_FUSION = 3.337e5  # J kg-1
RHO_WATER = 1000.0  # kg m-3
GAS_CONSTANT = 8.314462618  # J mol-1 K-1
SOLAR_CONSTANT = 1361.0  # W m-2 (Kopp & Lean 2011)
MOLAR_MASS_C = 0.012011  # kg mol-1 of carbon
MOLAR_MASS_AIR = 0.0289647  # kg mol-1

# Time. SECONDS_PER_DAY is an int: timestep arithmetic (``SECONDS_PER_DAY % dt``,
# ``SECONDS_PER_DAY // dt``, datetime64[s] offsets) stays exact integer arithmetic, and mixed with
# a float it gives the same float as 86400.0 would (86400 converts to float64 exactly).
SECONDS_PER_DAY = 86_400  # s
DAYS_PER_YEAR = 365.0  # the land model's year (no leap days)
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY  # s, 31 536 000.0
DAYS_PER_LEAP_YEAR = 366  # length of per-day-of-year tables
DAYS_PER_JULIAN_YEAR = 365.25  # climate-model "year" of annual means and W yr m-2 K-1 units
SECONDS_PER_JULIAN_YEAR = DAYS_PER_JULIAN_YEAR * SECONDS_PER_DAY  # s, 31 557 600.0

# The Earth. Two radii are in use and both are kept (changing either would move results): the
# rounded 6371 km of the atmosphere's grid and the land-cover features, and the IUGG mean radius
# R1 = 6371.0088 km of the assimilation's great-circle localisation.
EARTH_RADIUS_KM = 6371.0  # km
EARTH_RADIUS = EARTH_RADIUS_KM * 1000.0  # m, 6.371e6
EARTH_MEAN_RADIUS_IUGG_KM = 6371.0088  # km (Moritz 2000, IUGG mean radius R1)

#: the forcing's measurement heights of a session that names none [m above the zero-plane
#: displacement]: wind 10 m, temperature and humidity 2 m (the WMO anemometer and screen heights)
DEFAULT_HEIGHT_WIND = 10.0  # m
DEFAULT_HEIGHT_TEMPERATURE = 2.0  # m
DEFAULT_HEIGHTS = (DEFAULT_HEIGHT_WIND, DEFAULT_HEIGHT_TEMPERATURE)  # (wind, temperature)
#: the highest forcing height a session may name [m]: the surface layer's log profile (Monin-
#: Obukhov similarity) holds up to about a tenth of the boundary layer's depth
MAX_HEIGHT = 200.0  # m
