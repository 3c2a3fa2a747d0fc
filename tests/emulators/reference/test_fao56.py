"""Acceptance: FAO-56 reference ET of the model's reference grass over a real station year."""

from __future__ import annotations

import xarray as xr

from coupler.cli import main
from emulators import forcing
from emulators.reference.fao56 import compare


def test_fao56_reference_et_over_tmy3_greensboro(tmp_path) -> None:
    out = tmp_path / "fao56.zarr"
    code = main(
        [
            "reference",
            "--forcing",
            "tmy3-greensboro",
            "--surface",
            "fao56-grass",
            "--spinup-days",
            "0",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    model = xr.open_zarr(out, consolidated=False).load()
    hourly = forcing.load("tmy3-greensboro")
    result = compare(model, hourly, forcing.daily_summary(hourly))
    print("\n" + result.summary())
    assert result.days == 365
    assert abs(result.relative_difference_daily) <= 0.05
    assert result.daily_r >= 0.95
