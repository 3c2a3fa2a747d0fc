"""Scenario forcing: global effective radiative forcing (ERF) and CO2 from the shipped RCMIP table.

``data/rcmip_erf_co2.csv`` (with its provenance sidecar ``rcmip_erf_co2.json``) holds annual
means of the CMIP6 historical period (1850-2014) and of SSP3-7.0 and SSP5-8.5 (2015-2100), from
the RCMIP v5.1.0 files that fair 1.6.4 ships (Nicholls et al. 2020, GMD 13, 5175; Nicholls et al.
2021, Earth's Future 9, e2020EF001900); ``scripts/extract_rcmip.py`` made it. A scenario here is
the historical series followed by the SSP's, so a run may start before 2015 and cross into the
scenario. Annual means are placed at mid-year and interpolated linearly in time (before the first
mid-year and after the last the first/last value is held).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
TABLE = DATA / "rcmip_erf_co2.csv"
SIDECAR = DATA / "rcmip_erf_co2.json"
SCENARIOS: tuple[str, ...] = ("historical", "ssp370", "ssp585")
COLUMNS: tuple[str, ...] = (
    "erf_total",
    "erf_co2",
    "erf_aerosols",
    "erf_land_use",
    "erf_natural",
    "co2",
)
#: ERF of a doubling of CO2, W m-2: IPCC AR6 WGI ch. 7 assessed value (Forster et al. 2021, 7.3.2)
F2X_AR6 = 3.93


class ScenarioError(ValueError):
    """A scenario request outside what the table holds; ``field`` and ``rule`` say what."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


@dataclass(frozen=True, eq=False)
class Scenario:
    """One scenario's annual series. ``years`` (n,) int; ``columns`` name -> (n,) float64
    (ERF in W m-2 relative to 1750, ``co2`` in ppm)."""

    name: str
    years: np.ndarray
    columns: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if self.years.ndim != 1 or self.years.size < 2 or np.any(np.diff(self.years) != 1):
            raise ScenarioError(
                f"{self.name}: years must be consecutive", field="years", rule="consecutive"
            )
        for key, col in self.columns.items():
            if col.shape != self.years.shape or not np.isfinite(col).all():
                raise ScenarioError(
                    f"{self.name}: column {key} has missing values", field=key, rule="complete"
                )

    @property
    def first_year(self) -> int:
        return int(self.years[0])

    @property
    def last_year(self) -> int:
        return int(self.years[-1])

    def check_years(self, start: int, end: int) -> None:
        """Refuse a run [start, end] (inclusive calendar years) the table does not cover."""
        if start > end:
            raise ScenarioError(
                f"years: start {start} is after end {end}", field="years", rule="ordered"
            )
        if start < self.first_year or end > self.last_year:
            raise ScenarioError(
                f"years: {start}:{end} is outside scenario {self.name!r}, which covers "
                f"{self.first_year}:{self.last_year}",
                field="years",
                rule="coverage",
            )

    def value(self, column: str, year: float | np.ndarray) -> np.ndarray:
        """``column`` at decimal year(s) ``year`` (2015.0 = 1 Jan 2015), linear between mid-years;
        the first/last annual mean is held outside. Raises for an unknown column."""
        if column not in self.columns:
            raise ScenarioError(
                f"unknown column {column!r}; known: {', '.join(self.columns)}",
                field="column",
                rule="known_name",
            )
        return np.interp(np.asarray(year, dtype=np.float64), self.years + 0.5, self.columns[column])

    def erf(self, year: float | np.ndarray) -> np.ndarray:
        """Total ERF [W m-2] at decimal year(s)."""
        return self.value("erf_total", year)

    def co2(self, year: float | np.ndarray) -> np.ndarray:
        """CO2 concentration [ppm] at decimal year(s)."""
        return self.value("co2", year)

    def annual(self, column: str, year: int) -> float:
        """The annual mean of ``column`` in calendar year ``year`` (must be covered)."""
        self.check_years(year, year)
        return float(self.columns[column][year - self.first_year])


@cache
def _table() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, list[float]]] = {}
    with TABLE.open(newline="") as fh:
        for row in csv.DictReader(fh):
            scen = rows.setdefault(row["scenario"], {"year": [], **{c: [] for c in COLUMNS}})
            scen["year"].append(float(row["year"]))
            for c in COLUMNS:
                scen[c].append(float(row[c]))
    return {
        name: {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
        for name, cols in rows.items()
    }


def load(name: str) -> Scenario:
    """``historical`` (1850-2014), or an SSP (``ssp370``, ``ssp585``) preceded by the historical
    years (1850-2100)."""
    if name not in SCENARIOS:
        raise ScenarioError(
            f"scenario: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}",
            field="scenario",
            rule="known_scenario",
        )
    table = _table()
    parts = [table["historical"]] + ([table[name]] if name != "historical" else [])
    years = np.concatenate([p["year"] for p in parts]).astype(np.int64)
    cols = {c: np.concatenate([p[c] for p in parts]) for c in COLUMNS}
    for arr in cols.values():
        arr.flags.writeable = False
    years.flags.writeable = False
    return Scenario(name, years, cols)


def provenance() -> dict[str, Any]:
    """The sidecar's provenance, with ``table_sha256_ok`` saying whether the shipped CSV still
    hashes to the recorded value."""
    meta: dict[str, Any] = json.loads(SIDECAR.read_text())
    meta["table_sha256_ok"] = hashlib.sha256(TABLE.read_bytes()).hexdigest() == meta.get(
        "table_sha256"
    )
    return meta


def as_seconds(time: Any) -> np.datetime64:
    """``time`` (datetime64 of any unit, or an ISO 8601 string) at seconds resolution."""
    return np.datetime64(time, "s")


def decimal_year(time: np.datetime64) -> float:
    """Calendar year plus the elapsed fraction of it (Gregorian, UTC)."""
    t = as_seconds(time)
    y0 = t.astype("datetime64[Y]")
    start = y0.astype("datetime64[s]")
    end = (y0 + np.timedelta64(1, "Y")).astype("datetime64[s]")
    frac = (t - start).astype(np.int64) / (end - start).astype(np.int64)
    return float(y0.astype(np.int64) + 1970 + frac)
