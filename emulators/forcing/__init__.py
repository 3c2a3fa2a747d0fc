"""Land forcing from real station data shipped inside installed packages, or synthesised, in ONE
layout for every source (see ``_layout``): an ``xr.Dataset`` with dims ("time", "cell"), float64
``tas huss ps sfcWind pr rsds rlds`` as interval means over [time, time + dt), registry units and
CF attributes, coordinates ``lat``/``lon``/``elevation`` per cell, provenance in attrs.

    >>> from emulators import forcing
    >>> ds = forcing.load("tmy3-greensboro", timestep=3 * 3600)
    >>> daily = forcing.daily_summary(ds)

Sources are imported lazily (pvlib and PCSE are only imported by the loaders that need them).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import xarray as xr

from emulators.forcing._layout import (
    FORCING_VARIABLES,
    ForcingError,
    aggregate,
    validate,
)
from emulators.forcing.summary import daily_summary

__all__ = [
    "FORCING_VARIABLES",
    "SOURCES",
    "ForcingError",
    "aggregate",
    "daily_summary",
    "load",
    "options",
    "validate",
]

#: name -> (one-line description, "module:function" of the loader)
_REGISTRY: dict[str, tuple[str, str]] = {
    "tmy3-greensboro": (
        "TMY3 typical year, Greensboro NC (36.1N, 79.95W, 273 m), hourly; rlds derived",
        "typical_year:load_tmy3",
    ),
    "tmy3-sandpoint": (
        "TMY3 typical year, Sand Point AK (55.3N, 160.5W, 7 m), hourly; rlds derived; "
        "precipitation mostly missing (set to 0, counted in attrs)",
        "typical_year:load_tmy3",
    ),
    "epw-amsterdam": (
        "IWEC typical year (EPW), Amsterdam (52.3N, 4.77E), hourly; no precipitation in the file "
        "(needs missing_pr='zero')",
        "typical_year:load_epw",
    ),
    "tmy2-miami": (
        "TMY2 typical year (1961-1990), Miami FL (25.8N, 80.27W, 2 m), hourly; rlds derived; no "
        "precipitation in TMY2 (needs missing_pr='zero')",
        "typical_year:load_tmy2",
    ),
    "pvgis-tmy-italy": (
        "PVGIS typical year 2005-2023 at 45N 8E (Piedmont, 250 m), hourly UTC; satellite rsds, "
        "ERA5 tas/RH/ps/wind/rlds; no precipitation (needs missing_pr='zero')",
        "satellite_years:load_pvgis_tmy",
    ),
    "psm3-colorado": (
        "NSRDB PSM3 2017 at 40.53N 108.54W (2168 m), half-hourly; satellite rsds, MERRA-2 "
        "meteorology; rlds derived; no precipitation (needs missing_pr='zero')",
        "satellite_years:load_psm3",
    ),
    "solaranywhere-burlington": (
        "SolarAnywhere 2021 (TMY3 format), Burlington VT (44.47N, 73.2W, 41 m), hourly; ps and "
        "rlds derived; no precipitation (needs missing_pr='zero')",
        "satellite_years:load_solaranywhere",
    ),
    "bsrn-payerne": (
        "BSRN Payerne (46.8N, 6.9E, 491 m), June 2016, 1-minute measured rsds/rlds/T/RH/p; "
        "wind constant, no precipitation (needs missing_pr='zero')",
        "bsrn:load_bsrn",
    ),
    "pcse-wageningen": (
        "CABO daily weather, Wageningen NL1 1976-1999 (PCSE), disaggregated to the step; "
        "option years=(start, end)",
        "daily_sources:load_pcse_wageningen",
    ),
    "cgms-grid": (
        "CGMS grid weather (PCSE demo database), daily, disaggregated; grid 31031 "
        "(1999-12..2001-11) or grid 1 (1965), option grids=(...)",
        "daily_sources:load_cgms_grid",
    ),
    "cgms-asturias": (
        "CGMS daily station weather, Asturias ES (43.57N, 6.04W, 130 m), 2013-01..2014-04, "
        "disaggregated; no precipitation (needs missing_pr='zero'); options start, end",
        "cgms_stations:load_cgms_station",
    ),
    "cgms-sweden": (
        "CGMS daily station weather, northern Sweden (64.48N, 21.58E, 37 m), 2013-01..2014-06, "
        "disaggregated; no precipitation (needs missing_pr='zero'); options start, end",
        "cgms_stations:load_cgms_station",
    ),
    "cgms-munich": (
        "CGMS daily station weather, Munich airport DE (48.37N, 11.8E, 453 m), 2013-01..2014-06, "
        "disaggregated; no precipitation (needs missing_pr='zero'); options start, end",
        "cgms_stations:load_cgms_station",
    ),
    "cgms-ronda": (
        "CGMS daily station weather, Ronda ES (36.75N, 5.17W, 740 m), 2013-14, 109 days missing "
        "(default: longest gap-free run), disaggregated; no precipitation (missing_pr='zero')",
        "cgms_stations:load_cgms_station",
    ),
    "synthetic": (
        "Stochastic weather generator for any cells: load('synthetic', lat=..., lon=..., "
        "start='2001-01-01', days=365, seed=0, land=None, elevation=None)",
        "synthetic:load_synthetic",
    ),
}

#: Source name -> short description.
SOURCES: Mapping[str, str] = MappingProxyType({k: v[0] for k, v in _REGISTRY.items()})


def _loader(name: str) -> Callable[..., xr.Dataset]:
    module, func = _REGISTRY[name][1].split(":")
    fn: Callable[..., xr.Dataset] = getattr(
        importlib.import_module(f"emulators.forcing.{module}"), func
    )
    return fn


def options(name: str) -> dict[str, Any]:
    """The options ``load(name, ...)`` accepts, with their defaults (required ones: None)."""
    if name not in _REGISTRY:
        raise ForcingError("name", "known_source", _unknown(name))
    sig = inspect.signature(_loader(name))
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _unknown(name: object) -> str:
    return f"unknown forcing source {name!r}; known: {', '.join(sorted(_REGISTRY))}"


def load(name: str, *, timestep: int = 3600, **opts: Any) -> xr.Dataset:
    """Forcing from source ``name`` (see ``SOURCES``) at ``timestep`` seconds.

    Raises ``ForcingError`` (a ``ValueError``) naming the option and the rule for an unknown
    source, an option the source does not accept, or a bad option value.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ForcingError("name", "known_source", _unknown(name))
    accepted = options(name)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise ForcingError(
            unknown[0],
            "known_option",
            f"{unknown[0]}: not an option of source {name!r}; accepted: "
            f"{', '.join(sorted(accepted))}",
        )
    return _loader(name)(name, timestep=timestep, **opts)
