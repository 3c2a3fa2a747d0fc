"""Coupled runs through the service: gRPC and in-process give bit-identical land outputs, the
energy budget closes, and ``landcoupler run`` leaves a record, diagnostics, tables and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from coupler.atmosphere import experiment
from coupler.atmosphere.column import ColumnModel, Forcing
from coupler.atmosphere.driver import OceanMode, integrate
from coupler.atmosphere.grid import split_land
from coupler.atmosphere.report import ENERGY_RESIDUAL_BOUND
from coupler.atmosphere.runconfig import RunConfig
from coupler.atmosphere.service_land import ServiceLand, SessionOptions
from coupler.cli import main

RES = 30.0  # 6 x 12 cells: the smallest grid with a few land cells on each continent
STEPS = 24


@pytest.fixture(scope="module")
def setup() -> experiment.Setup:
    return experiment.prepare_setup(
        RunConfig(resolution=RES, years=(2015, 2015), spinup_years=1, standalone_years=1)
    )


def _short_run(
    setup: experiment.Setup, transport: str, backend: str = "reference", timestep: int = 21_600
) -> tuple[list[dict[str, np.ndarray]], list[float], np.ndarray]:
    grid = setup.grid
    cfg = RunConfig(resolution=RES, years=(2015, 2015), transport=transport, timestep=timestep)
    model = ColumnModel(grid, cfg.column)
    replies: list[dict[str, np.ndarray]] = []

    def hook(prep: Any, state: Any, budget: Any, fields: Any, land: Any) -> None:
        replies.append({k: np.array(v) for k, v in land.items()})

    options = SessionOptions(start=setup.state.time, timestep=cfg.timestep, backend=backend)
    forcing = Forcing(2.0, 400.0)
    with experiment.open_client(transport) as client:
        land = ServiceLand(client, grid, split_land(grid, 3), setup.cover, options)
        try:
            res = integrate(
                model, setup.state.copy(), land, STEPS, lambda t: forcing, OceanMode(), hook=hook
            )
        finally:
            land.close()
    return replies, [b.residual for b in res.budgets], res.state.tas


@pytest.mark.parametrize(
    ("backend", "timestep"), [("reference", 21_600), ("torchscript", 86_400)],
    ids=["reference-6h", "emulator-daily"],
)  # fmt: skip
def test_grpc_and_in_process_give_bit_identical_land_outputs(
    setup: experiment.Setup, backend: str, timestep: int
) -> None:
    grpc_replies, grpc_res, grpc_tas = _short_run(setup, "grpc", backend, timestep)
    local_replies, _local_res, local_tas = _short_run(setup, "inprocess", backend, timestep)
    shm_replies, _shm_res, shm_tas = _short_run(setup, "shm", backend, timestep)
    assert len(grpc_replies) == len(local_replies) == len(shm_replies) == STEPS
    for a, b, c in zip(grpc_replies, local_replies, shm_replies, strict=True):
        assert a.keys() == b.keys() == c.keys()
        for name in a:
            assert np.array_equal(a[name], b[name]), name  # bit for bit
            assert a[name].tobytes() == c[name].tobytes(), name
    assert np.array_equal(grpc_tas, local_tas) and np.array_equal(grpc_tas, shm_tas)
    assert max(abs(r) for r in grpc_res) < ENERGY_RESIDUAL_BOUND
    assert np.isfinite(grpc_replies[-1]["hfls"]).all()


def test_landcoupler_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rc = main([
        "run", "--scenario", "ssp585", "--years", "2015:2015", "--resolution", str(RES),
        "--spinup-years", "1", "--ranks", "2", "--out", str(out), "--no-progress",
    ])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["experiments"]) == {"dynamic", "frozen"}
    for exp in summary["experiments"].values():
        assert exp["energy"]["within_bound"]
    assert set(summary["land_feedback"]["regions"]) == {
        "tropical forest",
        "drylands",
        "high latitudes",
    }
    for png in ("tas_global.png", "maps_change.png", "maps_land_feedback.png", "energy_budget.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Land feedback" in (out / "summary.md").read_text()
    # the Zarr record of the exchange: one store per rank, every step, forcing in and land out
    rec = xr.open_zarr(out / "record" / "dynamic" / "rank1.zarr", consolidated=False)
    assert rec.sizes["time"] == 2 * 365  # spin-up year and 2015
    assert {"tas", "pr", "rsds", "hfls", "lai"} <= set(rec.data_vars)
    # the atmosphere sends float32 forcing by default, and the record keeps it as sent
    assert rec.tas.dtype == np.float32 and rec.tas.attrs["landcoupler_wire_dtype"] == "float32"
    assert rec.hfls.dtype == np.float64
    diag = xr.open_zarr(out / "dynamic" / "diagnostics.zarr", consolidated=False)
    assert list(diag["year"].values) == [2015]
    assert float(diag["tas_global"][0]) == pytest.approx(288.0, abs=4.0)


def test_bad_flags_are_refused_with_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc = main(["run", "--scenario", "historical", "--years", "2010:2020", "--out", str(tmp_path)])
    assert rc == 2
    assert "years: years: 2010:2020 is outside scenario 'historical'" in capsys.readouterr().err


def test_bench_run_measures_throughput() -> None:
    from coupler.bench import coupled as bench

    payload = bench.run(resolutions=(RES,), transports=("inprocess",), days=3, emulator_days=0)
    reference, emulator = payload["cases"]
    assert (reference["backend"], emulator["backend"]) == ("reference", "torchscript")
    for case in (reference, emulator):
        assert case["timestep_s"] == 86_400
        assert case["steps"] == 3 and case["years_per_hour"] > 0 and case["land_cells"] > 0
    assert f"| {RES:g}° |" in bench.markdown(payload)
