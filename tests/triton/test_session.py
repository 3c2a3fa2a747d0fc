"""A coupled run through ``landcoupler serve --triton-url``: the simplified atmosphere (column
model) steps land sessions whose backend is ``triton`` over gRPC, and matches the same coupled
run with the in-process TorchScript backend to 1e-5; on SIGTERM the server closes the backend,
which unregisters its shared memory from Triton."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from coupler.atmosphere import experiment
from coupler.atmosphere.column import ColumnModel, Forcing
from coupler.atmosphere.driver import OceanMode, integrate
from coupler.atmosphere.grid import split_land
from coupler.atmosphere.runconfig import RunConfig
from coupler.atmosphere.service_land import ServiceLand, SessionOptions
from coupler.client import Client, CouplerClient, InProcessClient

RES, STEPS, DAY = 30.0, 20, 86_400
LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def setup() -> experiment.Setup:
    return experiment.prepare_setup(
        RunConfig(resolution=RES, years=(2015, 2015), spinup_years=1, standalone_years=1)
    )


def _coupled(
    client: Client, setup: experiment.Setup, backend: str
) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    grid = setup.grid
    cfg = RunConfig(resolution=RES, years=(2015, 2015), timestep=DAY)
    model = ColumnModel(grid, cfg.column)
    replies: list[dict[str, np.ndarray]] = []

    def hook(prep: Any, state: Any, budget: Any, fields: Any, land: Any) -> None:
        replies.append({k: np.array(v) for k, v in land.items()})

    options = SessionOptions(start=setup.state.time, timestep=DAY, backend=backend)
    land = ServiceLand(client, grid, split_land(grid, 2), setup.cover, options)
    try:
        res = integrate(
            model, setup.state.copy(), land, STEPS, lambda t: Forcing(2.0, 400.0), OceanMode(),
            hook=hook,
        )  # fmt: skip
    finally:
        land.close()
    return replies, res.state.tas


def _regions(url: str) -> set[str]:
    with grpcclient.InferenceServerClient(url) as client:
        status = client.get_system_shared_memory_status(as_json=True)
    return {r["name"] for r in status.get("regions", {}).values()} if status else set()


def test_coupled_run_on_triton_matches_in_process(
    setup: experiment.Setup, triton_url: str, tmp_path: Path
) -> None:
    with InProcessClient() as local:
        expected, expected_tas = _coupled(local, setup, "torchscript")
    before = _regions(triton_url)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0",
         "--triton-url", triton_url, "--grace", "20"],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, (tmp_path / "serve.log").read_text())
        with CouplerClient(line.split()[-1], client_name="triton", retries=0) as client:
            assert client.describe()["details"]["backends"]["triton"] == "available"
            got, got_tas = _coupled(client, setup, "triton")
            assert _regions(triton_url) - before  # the server's backend uses shared memory
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
    assert _regions(triton_url) - before == set()  # unregistered when the server stopped
    assert len(got) == len(expected) == STEPS
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            scale = max(float(np.abs(b[name]).max()), 1e-30)
            assert float(np.abs(a[name] - b[name]).max()) / scale <= 1e-5, name
    assert float(np.abs(got_tas - expected_tas).max()) <= 1e-5 * float(np.abs(expected_tas).max())
