"""Training datasets: perturbed parameters in range, Zarr v3 round trip, provenance."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import xarray as xr

from coupler.cli import main
from emulators import parameters as P
from emulators.datasets import DatasetConfig, generate
from emulators.io import write_zarr


def test_synthetic_dataset_round_trips_through_zarr_with_provenance() -> None:
    cfg = DatasetConfig(forcing="synthetic", cells=6, days=3, seed=3, spinup_days=1)
    ds = generate(cfg, progress=False)
    url = f"memory://{uuid.uuid4().hex}/train.zarr"
    write_zarr(ds, url, time_chunk=24)
    back = xr.open_zarr(url, consolidated=False).load()
    assert back.sizes == {"time": 72, "cell": 6, "landcover": 8, "parameter": 12}
    for name in ("tas", "rsds", "hfls", "hfss", "lai", "mrso", "parameters", "landCoverFrac"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back["hfls"].attrs["units"] == "W m-2" and back["hfls"].attrs["positive"] == "up"
    assert json.loads(back.attrs["dataset_config"])["seed"] == 3
    assert back.attrs["source"].startswith("landcoupler")
    low, high = P.bounds()
    params = back["parameters"].values
    assert (params >= low.numpy()).all() and (params <= high.numpy()).all()
    # one class per cell by default, and energy closes in what was written
    assert np.allclose(back["landCoverFrac"].sum("landcover"), 100.0)
    resid = back["rns"] - back["hfls"] - back["hfss"] - back["hfdsl"]
    assert float(abs(resid).max()) < 1e-9


def test_same_seed_same_dataset_other_seed_differs() -> None:
    a = generate(DatasetConfig(cells=3, days=1, seed=1, spinup_days=0), progress=False)
    b = generate(DatasetConfig(cells=3, days=1, seed=1, spinup_days=0), progress=False)
    c = generate(DatasetConfig(cells=3, days=1, seed=2, spinup_days=0), progress=False)
    np.testing.assert_array_equal(a["hfls"].values, b["hfls"].values)
    assert not np.array_equal(a["parameters"].values, c["parameters"].values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cells": 0}, "cells"),
        ({"perturbation": 1.5}, "perturbation"),
        ({"timestep": 7}, "timestep"),
    ],
)
def test_bad_dataset_config_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DatasetConfig(**kwargs)


def test_dataset_cli_writes_a_store(tmp_path, capsys) -> None:
    out = tmp_path / "d.zarr"
    assert main(["dataset", "--cells", "2", "--days", "1", "--out", str(out)]) == 0
    assert "wrote 24 steps x 2 cells" in capsys.readouterr().out
    assert xr.open_zarr(out, consolidated=False).sizes["cell"] == 2
