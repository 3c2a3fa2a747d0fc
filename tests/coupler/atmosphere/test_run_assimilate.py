"""``landcoupler run --assimilate OBS.zarr``: the feedback run's sessions assimilate a Zarr
observation file end to end (a tiny run: 30° grid, one spin-up year and 2015, daily steps,
3 members, 2 ranks), and bad files or settings are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from coupler.atmosphere import grid as G
from coupler.atmosphere.observations import match_km, split_by_rank
from coupler.atmosphere.runconfig import RunConfig, RunConfigError
from coupler.cli import main
from tests.coupler.da_helpers import write_observations

RES = 30.0


def land_cells() -> tuple[np.ndarray, np.ndarray]:
    grid = G.regular(RES, 0.05)
    return grid.lat[grid.land_index], grid.lon[grid.land_index]


def test_run_assimilates_an_observation_file(tmp_path: Path) -> None:
    lat, lon = land_cells()
    rows = []
    for la, lo in zip(lat, lon, strict=True):  # every land cell, inside the cell (off-centre)
        rows.append(("lai", 1.5, 0.3, la + 3.0, lo - 3.0, "2015-06-01"))
        rows.append(("hfls", 40.0, 10.0, la, lo, "2015-06-10"))
    obs = tmp_path / "obs.zarr"
    write_observations(obs, rows)
    out = tmp_path / "run"
    rc = main([
        "run", "--years", "2015:2015", "--resolution", str(RES), "--spinup-years", "1",
        "--ranks", "2", "--members", "3", "--no-land-feedback", "--assimilate", str(obs),
        "--out", str(out), "--no-progress",
    ])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    da = summary["assimilation"]
    assert da["observations"] == len(rows) and sum(da["per_rank"]) == len(rows)
    assert all(n > 0 for n in da["per_rank"])
    # every observation reached its rank's session and was analysed (used or screened out)
    n_obs = n_used = 0.0
    for rank in range(2):
        assert (out / "observations" / f"rank{rank}.zarr").exists()
        rec = xr.open_zarr(out / "record" / "dynamic" / f"rank{rank}.zarr", consolidated=False)
        n_obs += float(np.nansum(rec["assim_n_obs"].values))
        n_used += float(np.nansum(rec["assim_n_used"].values))
        # the analyses at the steps after 2015-06-08 (LAI) and 2015-06-10 (LE) moved the
        # observed ensembles toward the observations
        for var in ("lai", "hfls"):
            prior = rec[f"assim_{var}_innovation_rms"].values
            post = rec[f"assim_{var}_posterior_innovation_rms"].values
            ok = np.isfinite(prior)
            if ok.any():
                assert (post[ok] < prior[ok]).all(), var
    assert n_obs == len(rows)
    assert n_used > 0 and da["experiments"]["dynamic"]["used"] == n_used
    assert "observations from" in (out / "summary.md").read_text()


def test_observations_outside_the_land_are_refused(tmp_path: Path) -> None:
    lat, lon = land_cells()
    obs = tmp_path / "obs.zarr"
    write_observations(obs, [
        ("lai", 2.0, 0.3, float(lat[0]), float(lon[0]), "2015-06-01"),
        ("lai", 2.0, 0.3, 0.0, -150.0, "2015-06-01"),  # the open Pacific
    ])  # fmt: skip
    grid = G.regular(RES, 0.05)
    with pytest.raises(RunConfigError) as err:
        split_by_rank(str(obs), grid, G.split_land(grid, 2), tmp_path / "o", match_km(RES))
    assert (err.value.field, err.value.rule) == ("assimilate.lat", "in_domain")
    assert not (tmp_path / "o").exists()
    bad = tmp_path / "bad.zarr"
    xr.Dataset({"value": ("obs", np.ones(2))}).to_zarr(bad, mode="w", consolidated=False)
    with pytest.raises(RunConfigError) as err:
        split_by_rank(str(bad), grid, G.split_land(grid, 2), tmp_path / "o", match_km(RES))
    assert (err.value.field, err.value.rule) == ("assimilate", "layout")


def test_assimilation_needs_an_ensemble(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RunConfigError) as err:
        RunConfig(years=(2015, 2015), assimilate="obs.zarr")
    assert (err.value.field, err.value.rule) == ("members", "ensemble")
    rc = main(["run", "--years", "2015:2015", "--assimilate", "obs.zarr", "--members", "1"])
    assert rc == 2
    assert "members: assimilation needs an ensemble" in capsys.readouterr().err
