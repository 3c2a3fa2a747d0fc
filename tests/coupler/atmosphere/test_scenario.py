"""The shipped RCMIP scenario table: provenance, coverage, values, interpolation, refusals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from coupler.atmosphere import scenario as S


def test_table_matches_its_provenance_sidecar() -> None:
    meta = S.provenance()
    assert meta["table_sha256_ok"]
    assert meta["sources"]["forcing"]["package"] == "fair==1.6.4"
    assert meta["sources"]["forcing"]["path_in_package"].endswith(
        "rcmip-radiative-forcing-annual-means-5-1-0-ssp-only.csv"
    )
    assert any(c.startswith("Nicholls") and "Model Intercomparison" in c for c in meta["citation"])
    assert meta["rows"] == {
        "historical": [1850, 2014],
        "ssp370": [2015, 2100],
        "ssp585": [2015, 2100],
    }


def test_scenarios_cover_history_then_the_ssp() -> None:
    hist, s370, s585 = (S.load(n) for n in ("historical", "ssp370", "ssp585"))
    assert (hist.first_year, hist.last_year) == (1850, 2014)
    assert (s370.first_year, s370.last_year) == (1850, 2100)
    # the SSPs share the historical years exactly
    for col in S.COLUMNS:
        np.testing.assert_array_equal(s585.columns[col][:165], hist.columns[col])
        np.testing.assert_array_equal(s370.columns[col][:165], hist.columns[col])
    # RCMIP v5.1.0 values (read from the source CSV): 2100 total ERF and CO2
    assert s585.annual("erf_total", 2100) == pytest.approx(9.92327927, abs=1e-6)
    assert s370.annual("erf_total", 2100) == pytest.approx(8.04052907, abs=1e-6)
    assert s585.annual("co2", 2100) == pytest.approx(1135.209869, abs=1e-4)
    assert hist.annual("co2", 1850) == pytest.approx(284.3169988, abs=1e-6)
    assert s585.annual("erf_total", 2100) > s370.annual("erf_total", 2100)


def test_interpolation_between_mid_years() -> None:
    s = S.load("ssp585")
    a, b = s.annual("erf_total", 2049), s.annual("erf_total", 2050)
    assert float(s.erf(2049.5)) == pytest.approx(a)
    assert float(s.erf(2050.0)) == pytest.approx(0.5 * (a + b))
    assert float(s.erf(1000.0)) == pytest.approx(s.annual("erf_total", 1850))  # held outside
    assert S.decimal_year(np.datetime64("2016-07-02T00:00:00")) == pytest.approx(2016.5)


@pytest.mark.parametrize(
    ("call", "field", "rule"),
    [
        (lambda: S.load("ssp245"), "scenario", "known_scenario"),
        (lambda: S.load("historical").check_years(2000, 2020), "years", "coverage"),
        (lambda: S.load("ssp585").check_years(2050, 2040), "years", "ordered"),
        (lambda: S.load("ssp585").value("erf_ch4", 2000.0), "column", "known_name"),
    ],
)
def test_bad_requests_name_the_field_and_rule(
    call: Callable[[], object], field: str, rule: str
) -> None:
    with pytest.raises(S.ScenarioError) as exc:
        call()
    assert (exc.value.field, exc.value.rule) == (field, rule)
