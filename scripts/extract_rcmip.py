"""Extract the scenario forcing table of the simplified atmosphere from the RCMIP files in fair.

fair 1.6.4 ships the RCMIP v5.1.0 SSP files (Nicholls et al. 2020, 2021) but needs numpy < 2,
so this script is run ONCE, in a throwaway virtual environment, and its small output is
committed. From the repository root:

    python3 -m venv /tmp/fairvenv && /tmp/fairvenv/bin/pip install fair==1.6.4 'numpy<2' pandas \
        && /tmp/fairvenv/bin/python scripts/extract_rcmip.py

It needs only the standard library (fair is located, not imported) and writes

- ``coupler/atmosphere/data/rcmip_erf_co2.csv``: one row per (scenario, year): ``historical``
  1850-2014, ``ssp370`` and ``ssp585`` 2015-2100; columns ``erf_total``, ``erf_co2``,
  ``erf_aerosols``, ``erf_land_use`` (RCMIP "Albedo Change"), ``erf_natural`` (solar +
  volcanic), all W m-2 relative to 1750, and ``co2`` (ppm, annual mean);
- ``coupler/atmosphere/data/rcmip_erf_co2.json``: provenance (source files inside fair and their
  SHA-256, fair version, RCMIP variable names, citations, this command, the CSV's SHA-256).

Before 2015 the RCMIP SSP rows carry the shared CMIP6 historical series; the script checks
that ssp370 and ssp585 agree there exactly and stores those years once, as ``historical``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "coupler" / "atmosphere" / "data"
FAIR_VERSION = "1.6.4"
FORCING_FILE = "SSPs/data/rcmip-radiative-forcing-annual-means-5-1-0-ssp-only.csv"
CONCENTRATION_FILE = "SSPs/data/rcmip-concentrations-annual-means-5-1-0-ssp-only.csv"
FIRST_YEAR, LAST_HISTORICAL, LAST_YEAR = 1850, 2014, 2100
SCENARIOS = ("ssp370", "ssp585")

#: output column -> (source file key, RCMIP variable, expected unit)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "erf_total": ("forcing", "Effective Radiative Forcing", "W/m^2"),
    "erf_co2": ("forcing", "Effective Radiative Forcing|Anthropogenic|CO2", "W/m^2"),
    "erf_aerosols": ("forcing", "Effective Radiative Forcing|Anthropogenic|Aerosols", "W/m^2"),
    "erf_land_use": (
        "forcing",
        "Effective Radiative Forcing|Anthropogenic|Albedo Change",
        "W/m^2",
    ),
    "erf_natural": ("forcing", "Effective Radiative Forcing|Natural", "W/m^2"),
    "co2": ("concentrations", "Atmospheric Concentrations|CO2", "ppm"),
}

CITATIONS = (
    "Nicholls, Z. R. J., et al. (2020): Reduced Complexity Model Intercomparison Project Phase 1:"
    " introduction and evaluation of global-mean temperature response, Geosci. Model Dev., 13,"
    " 5175-5190, doi:10.5194/gmd-13-5175-2020.",
    "Nicholls, Z., et al. (2021): Reduced Complexity Model Intercomparison Project Phase 2:"
    " Synthesizing Earth System Knowledge for Probabilistic Climate Projections, Earth's Future,"
    " 9, e2020EF001900, doi:10.1029/2020EF001900.",
    "Smith, C. J., et al. (2018): FAIR v1.3: a simple emissions-based impulse response and carbon"
    " cycle model, Geosci. Model Dev., 11, 2273-2297, doi:10.5194/gmd-11-2273-2018"
    " (the package that ships the files).",
)


def _fair_dir() -> Path:
    spec = importlib.util.find_spec("fair")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fair is not installed here; see this script's docstring for the venv commands")
    version = importlib.metadata.version("fair")
    if version != FAIR_VERSION:
        sys.exit(f"fair {version} is installed; this extraction is pinned to {FAIR_VERSION}")
    return Path(next(iter(spec.submodule_search_locations)))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _series(rows: list[dict[str, str]], scenario: str, variable: str, unit: str) -> list[float]:
    found = [r for r in rows if r["Scenario"] == scenario and r["Variable"] == variable]
    if len(found) != 1:
        raise SystemExit(f"{scenario} / {variable}: {len(found)} rows, expected 1")
    row = found[0]
    if row["Unit"] != unit or row["Region"] != "World":
        raise SystemExit(f"{scenario} / {variable}: unit {row['Unit']!r} region {row['Region']!r}")
    values = [float(row[str(y)]) for y in range(FIRST_YEAR, LAST_YEAR + 1)]
    if any(v != v for v in values):
        raise SystemExit(f"{scenario} / {variable}: missing values in {FIRST_YEAR}-{LAST_YEAR}")
    return values


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    fair = _fair_dir()
    sources = {"forcing": fair / FORCING_FILE, "concentrations": fair / CONCENTRATION_FILE}
    tables = {key: _rows(path) for key, path in sources.items()}
    data = {
        scen: {col: _series(tables[src], scen, var, u) for col, (src, var, u) in COLUMNS.items()}
        for scen in SCENARIOS
    }
    n_hist = LAST_HISTORICAL - FIRST_YEAR + 1
    for col in COLUMNS:
        a, b = data["ssp370"][col][:n_hist], data["ssp585"][col][:n_hist]
        if a != b:
            raise SystemExit(f"{col}: ssp370 and ssp585 differ before {LAST_HISTORICAL + 1}")

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scenario", "year", *COLUMNS])
    for scen, first, last in (
        ("historical", FIRST_YEAR, LAST_HISTORICAL),
        *((s, LAST_HISTORICAL + 1, LAST_YEAR) for s in SCENARIOS),
    ):
        source = data["ssp370" if scen == "historical" else scen]
        for year in range(first, last + 1):
            i = year - FIRST_YEAR
            writer.writerow([scen, year, *(repr(source[col][i]) for col in COLUMNS)])
    text = buf.getvalue().encode()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    csv_path = OUT_DIR / "rcmip_erf_co2.csv"
    csv_path.write_bytes(text)
    provenance = {
        "description": "Global annual-mean effective radiative forcing (W m-2, relative to 1750) "
        "and CO2 concentration (ppm) for the CMIP6 historical period and SSP3-7.0 / SSP5-8.5, "
        "extracted from the RCMIP v5.1.0 files shipped inside fair.",
        "table": csv_path.name,
        "table_sha256": _sha256(text),
        "rows": {
            "historical": [FIRST_YEAR, LAST_HISTORICAL],
            **{s: [LAST_HISTORICAL + 1, LAST_YEAR] for s in SCENARIOS},
        },
        "columns": {
            col: {"rcmip_variable": var, "rcmip_unit": unit, "source": src}
            for col, (src, var, unit) in COLUMNS.items()
        },
        "units": {col: ("ppm" if col == "co2" else "W m-2") for col in COLUMNS},
        "sources": {
            key: {
                "package": f"fair=={FAIR_VERSION}",
                "path_in_package": f"fair/{rel}",
                "sha256": _sha256(sources[key].read_bytes()),
            }
            for key, rel in (("forcing", FORCING_FILE), ("concentrations", CONCENTRATION_FILE))
        },
        "rcmip_version": "5.1.0",
        "historical_check": "ssp370 and ssp585 rows are identical for 1850-2014 (checked)",
        "citation": list(CITATIONS),
        "command": "python3 -m venv /tmp/fairvenv && /tmp/fairvenv/bin/pip install fair==1.6.4 "
        "'numpy<2' pandas && /tmp/fairvenv/bin/python scripts/extract_rcmip.py",
        "extracted": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    json_path = OUT_DIR / "rcmip_erf_co2.json"
    json_path.write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {csv_path} ({len(text)} bytes) and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
