"""Land-use change in coupled runs: the stylised trajectory, the U-Net downscaling to run cells,
and a short coupled run whose "luc" experiment sends a new cover to every session through the
client API, conserving water, heat and leaf carbon, with its feedback in the summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coupler.atmosphere import coupled, experiment, landcover, report
from coupler.atmosphere import grid as G
from coupler.atmosphere.landuse import LandUseError, Trajectory, check
from coupler.atmosphere.runconfig import RunConfig, RunConfigError
from emulators.parameters import LandCover

L = LandCover


def small_grid() -> G.CellGrid:
    """Twelve 10° cells of tropical and southern Africa (30° S – 10° N, 10–40° E) as a cell list
    (no map): land, but for two southern cells of the first column made ocean so that the slab
    ocean exists (the global mask takes seconds to aggregate; the U-Net's own features still
    see the real coasts)."""
    lat, lon = (
        a.ravel()
        for a in np.meshgrid(
            np.arange(-25.0, 10.0, 10.0), np.arange(15.0, 40.0, 10.0), indexing="ij"
        )
    )
    land = np.where((lon == 15.0) & (lat < -10.0), 0.0, 1.0)
    return G.CellGrid(lat, lon, G.regular_area(lat, 10.0), land, resolution=10.0)


def test_trajectory_keeps_fractions_and_is_seeded() -> None:
    cover = landcover.cover_fractions(np.array([5, 6, 7, 0]))
    biome = np.array([5, 6, 7, 0])
    a = Trajectory("ssp370", 2015, cover, biome, blocks=3, seed=1)
    b = Trajectory("ssp370", 2015, cover, biome, blocks=3, seed=1)
    p = a.land_part(2045)
    assert np.array_equal(p, b.land_part(2045))
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-14)
    assert (p >= 0).all()
    assert np.array_equal(a.land_part(2015), np.broadcast_to(cover[:, None, None], p.shape))
    crop = p[..., int(L.CROPLAND)].mean(axis=(1, 2)) - cover[:, int(L.CROPLAND)]
    assert crop[0] > crop[2] > 0  # tropical forest converts faster than temperate land
    assert np.array_equal(p[3], a.land_part(2015)[3])  # ice sheets never change


def _one_cell(resolution: float | None) -> G.CellGrid:
    one = np.array([0.0])
    return G.CellGrid(one, one, one + 1.0, one + 1.0, resolution=resolution)


def test_refusals() -> None:
    with pytest.raises(LandUseError) as info:
        check("historical", _one_cell(10.0))
    assert (info.value.field, info.value.rule) == ("scenario", "land_use_trajectory")
    for res in (5.0, None):  # 60 px: not whole 40′ blocks; a cell list without a resolution
        with pytest.raises(LandUseError) as info:
            check("ssp585", _one_cell(res))
        assert (info.value.field, info.value.rule) == ("resolution", "whole_blocks")
    cfg = RunConfig(land_use_change=True, experiments=("frozen",))
    assert cfg.experiments == ("dynamic", "frozen", "luc")
    with pytest.raises(RunConfigError) as err:
        RunConfig(experiments=("luc",))
    assert (err.value.field, err.value.rule) == ("experiments", "choice")
    for kw, named in (({"resolution": 5.0}, ("resolution", "whole_blocks")),
                      ({"scenario": "historical", "years": (2000, 2010)},
                       ("scenario", "land_use_trajectory"))):  # fmt: skip
        with pytest.raises(RunConfigError) as err:
            RunConfig(land_use_change=True, **kw)  # type: ignore[arg-type]
        assert (err.value.field, err.value.rule) == named


def test_short_coupled_run_with_land_use_change(tmp_path: Path) -> None:
    cfg = RunConfig(
        scenario="ssp370",
        years=(2015, 2016),
        spinup_years=1,
        standalone_years=1,
        resolution=10.0,
        land_use_change=True,
        experiments=("dynamic",),
        ranks=2,
        out=tmp_path,
        progress=False,
        jobs=1,
        transport="inprocess",
    )  # fmt: skip  (the update call over gRPC: tests/coupler/wire/test_land_cover.py)
    setup = experiment.prepare_setup(cfg, small_grid())
    results = {n: experiment.run_experiment(cfg, setup, n) for n in ("dynamic", "luc")}
    rows = results["luc"].land_use
    assert [(r["year"], r["rank"]) for r in rows] == [(2016, 0), (2016, 1)]
    assert sum(r["cells_changed"] for r in rows) > 0
    for r in rows:
        assert r["water_residual_kg_m-2"] <= 1e-10
        assert r["energy_residual_J_m-2"] <= 1e-4  # of ~1e8 J m-2 of soil heat
        assert r["carbon_residual_kgC_m-2"] <= 1e-13
    assert not results["dynamic"].land_use

    import xarray as xr

    datasets = {n: xr.open_zarr(r.path, consolidated=False).load() for n, r in results.items()}
    final = datasets["luc"]["land_cover_final"].values
    np.testing.assert_allclose(final.sum(1), 1.0, atol=1e-12)
    crop = int(L.CROPLAND)
    assert (final[:, crop] >= setup.cover[:, crop]).all()
    assert (final[:, crop] > setup.cover[:, crop]).any()
    periods = ((2015, 2015), (2016, 2016))
    summary = report.summarise(datasets, setup.biome, periods, cfg.scenario)
    summary["land_use"] = coupled.land_use_summary(setup, datasets["luc"], rows)
    fb = summary["land_use_feedback"]
    assert set(fb["regions"]) == set(report.REGIONS)
    assert np.isfinite(fb["global_dT_K"])
    assert summary["land_use"]["cover_change_pct_points"]["global"]["crop"] > 0
    md = report.markdown(summary)
    assert "Land-use feedback (luc − dynamic)" in md and "Conservation through every" in md
    # the dynamic run and the luc run agree until the first change (same start cover)
    a, b = datasets["dynamic"], datasets["luc"]
    assert float(a["tas_global"].sel(year=2015)) == float(b["tas_global"].sel(year=2015))
