"""Run configuration (file and flags), land cover, regions and the summary's feedback logic."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from coupler.atmosphere import landcover, report
from coupler.atmosphere import runconfig as R
from coupler.cli import build_parser
from coupler.cli.run import config_from_args


def test_years_and_periods() -> None:
    assert R.parse_years("2015:2045") == (2015, 2045)
    assert R.parse_years([1990, 2000]) == (1990, 2000)
    assert R.parse_years("2020") == (2020, 2020)
    long = R.RunConfig(scenario="ssp370", years=(1990, 2100))
    assert long.periods() == ((1995, 2014), (2081, 2100))  # AR6's periods when covered
    short = R.RunConfig(years=(2015, 2034))
    assert short.periods() == ((2015, 2024), (2025, 2034))
    assert R.RunConfig(years=(2015, 2015)).periods() == ((2015, 2015), (2015, 2015))


@pytest.mark.parametrize(
    ("kw", "field", "rule"),
    [
        ({"years": "2015-2045"}, "years", "format"),
        ({"years": (2050, 2040)}, "years", "ordered"),
        ({"scenario": "ssp126"}, "scenario", "known_scenario"),
        ({"scenario": "historical", "years": (2000, 2030)}, "years", "coverage"),
        ({"transport": "http"}, "transport", "choice"),
        ({"forcing_dtype": "float16"}, "forcing_dtype", "choice"),
        ({"experiments": ("dynamic", "static")}, "experiments", "choice"),
        ({"ranks": 0}, "ranks", "int_range"),
        ({"timestep": 7000}, "timestep", "divides_day"),
        ({"baseline": (2000, 2010)}, "baseline", "inside_run"),
        ({"years": (1851, 1860), "spinup_years": 3}, "reference_year", "before_start"),
    ],
)
def test_bad_values_name_the_field_and_rule(kw: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(R.RunConfigError) as exc:
        R.RunConfig(**kw)  # type: ignore[arg-type]
    assert (exc.value.field, exc.value.rule) == (field, rule)


def test_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "scenario: ssp370\nyears: '2020:2030'\nresolution: 5\nranks: 3\ncolumn: {rh_precip: 0.85}\n"
    )
    args = build_parser().parse_args(
        ["run", "--config", str(path), "--years", "2021:2025", "--frozen-land", "--record", "none"]
    )
    assert isinstance(args, argparse.Namespace)
    cfg = config_from_args(args)
    assert (cfg.scenario, cfg.years, cfg.resolution, cfg.ranks) == ("ssp370", (2021, 2025), 5, 3)
    assert cfg.experiments == ("frozen",) and cfg.record is None
    assert cfg.column.rh_precip == 0.85 and cfg.forcing_dtype == "float32"  # the default
    args = build_parser().parse_args(["run", "--config", str(path), "--forcing-dtype", "float64"])
    assert config_from_args(args).forcing_dtype == "float64"
    path.write_text("scenario: ssp370\nresolutoin: 5\n")
    with pytest.raises(R.RunConfigError, match="resolutoin: unknown key"):
        R.from_mapping(R.load_file(path))
    path.write_text("column: {rh_precip: 1.5}\n")
    with pytest.raises(R.RunConfigError, match="column: rh_precip: must lie in"):
        R.from_mapping(R.load_file(path))


def test_biomes_follow_the_whittaker_rules() -> None:
    lat = np.array([-75.0, 70.0, 65.0, 25.0, 15.0, 0.0, 5.0, 45.0])
    lon = np.array([0.0, 100.0, 30.0, 10.0, 20.0, -60.0, 20.0, 10.0])
    tas = 273.15 + np.array([-30.0, -12.0, -2.0, 26.0, 26.0, 26.0, 26.0, 12.0])
    pr = np.array([100.0, 300.0, 600.0, 100.0, 400.0, 2000.0, 900.0, 800.0])
    names = np.asarray(landcover.BIOME_NAMES)[landcover.classify(lat, lon, tas, pr)]
    assert list(names) == [
        "ice sheet", "tundra", "boreal forest", "desert", "dryland", "tropical forest",
        "savanna", "temperate",
    ]  # fmt: skip
    cover = landcover.cover_fractions(landcover.classify(lat, lon, tas, pr))
    np.testing.assert_allclose(cover.sum(axis=1), 1.0)
    assert cover[5, 0] == 0.8  # tropical forest: mostly evergreen broadleaf


def _dataset(warming: float, lai_change: float) -> xr.Dataset:
    years = np.arange(2000, 2004)
    n = 4
    tas = 288.0 + np.outer(years - 2000 >= 2, np.full(n, warming))
    lai = 2.0 + np.outer(years - 2000 >= 2, np.full(n, lai_change))
    zeros = np.zeros((4, n))
    return xr.Dataset(
        {
            "tas": (("year", "cell"), tas), "tas_global": (("year",), tas.mean(1)),
            "tas_land": (("year",), tas.mean(1)),
            "land_hfls": (("year", "land_cell"), 50.0 + zeros),
            "land_evspsbl": (("year", "land_cell"), 2e-5 + zeros),
            "land_lai": (("year", "land_cell"), lai),
            "land_albedo": (("year", "land_cell"), 0.2 + zeros),
            **{f"budget_{t}": (("year",), np.zeros(4))
               for t in ("toa", "surface", "atmosphere", "ocean", "qflux", "land")},
            "budget_residual": (("year",), np.full(4, 1e-12)),
            "budget_residual_step_max": (("year",), np.full(4, 3e-11)),
        },
        coords={
            "year": years, "lat": ("cell", [0.0, 10.0, 60.0, 70.0]), "lon": ("cell", np.zeros(n)),
            "areacella": ("cell", np.ones(n)), "sftlf": ("cell", np.full(n, 100.0)),
            "land_cell_index": ("land_cell", np.arange(n)),
        },
    )  # fmt: skip


def test_feedback_is_dynamic_minus_frozen_per_region() -> None:
    biome = np.array([5, 4, 2, 0])  # tropical forest, dryland, boreal forest, ice sheet
    data = {"dynamic": _dataset(3.0, -0.2), "frozen": _dataset(2.5, 0.0)}
    summary = report.summarise(data, biome, ((2000, 2001), (2002, 2003)), "ssp585")
    assert summary["experiments"]["dynamic"]["warming_K"] == pytest.approx(3.0)
    fb = summary["land_feedback"]
    assert fb["global_dT_K"] == pytest.approx(0.5)
    assert fb["regions"]["drylands"]["dT_K"] == pytest.approx(0.5)
    assert fb["regions"]["drylands"]["dLAI_pct_points"] == pytest.approx(-10.0)
    assert fb["regions"]["high latitudes"]["sign"] == "positive (amplifies)"
    assert summary["experiments"]["frozen"]["energy"]["within_bound"]
    masks = report.region_masks(np.array([0.0, 10.0, 60.0, 70.0]), biome)
    assert masks["high latitudes"].tolist() == [False, False, True, False]  # ice sheet excluded
    assert "ar6" not in summary  # periods are not AR6's


def test_empty_region_is_reported_as_missing_not_as_a_number(tmp_path: Path) -> None:
    biome = np.array([5, 7, 2, 0])  # no drylands on this grid
    data = {"dynamic": _dataset(3.0, -0.2), "frozen": _dataset(2.5, 0.0)}
    summary = report.summarise(data, biome, ((2000, 2001), (2002, 2003)), "ssp585")
    assert summary["land_feedback"]["regions"]["drylands"]["sign"] == "n/a"
    report.write_tables(tmp_path, data, summary)
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text and "null" in text
    assert "| drylands | n/a |" in report.markdown(summary)
