"""End to end: 48 hourly steps of real station forcing (TMY3 Greensboro, shipped with pvlib) over
gRPC — unary and stream — equal the reference land model stepped directly in-process bit for bit;
energy closes to 1e-3 W m-2 in every reply; the session's Zarr record equals what crossed the wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr

from coupler.client import CouplerClient, InProcessClient
from coupler.wire.server import Service
from emulators import forcing as forcing_sources
from emulators import parameters as P
from emulators.protocol import LandStatic, StepClock
from emulators.reference import ReferenceBackend

STEPS = 48
START = np.datetime64("2001-06-08T00:00:00", "s")  # 8 wet hours in the next 48
OUTPUTS = ("hfls", "hfss", "hfdsl", "rns", "ts", "albedo", "rsus", "rlus", "evspsbl", "mrso", "lai")
FORCING = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")
N_CLASSES = P.N_CLASSES


@pytest.fixture(scope="module")
def station() -> dict[str, np.ndarray]:
    """48 h of Greensboro forcing from START, broadcast to one cell per land-cover class."""
    ds = forcing_sources.load("tmy3-greensboro", timestep=3600)
    window = ds.sel(time=slice(START, START + np.timedelta64(STEPS - 1, "h")))
    assert window.sizes["time"] == STEPS
    assert np.datetime64(window.time.values[0], "s") == START
    assert float(window.pr.max()) > 0.0 and float(window.rsds.max()) > 500.0
    out = {name: np.repeat(window[name].values, N_CLASSES, axis=1) for name in FORCING}
    out["lat"] = np.full(N_CLASSES, float(ds.lat.values[0]))
    out["lon"] = np.full(N_CLASSES, float(ds.lon.values[0]))
    return out


def _step_fields(station: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {name: station[name][i] for name in FORCING}


def _open(
    client: CouplerClient | InProcessClient, station: dict[str, np.ndarray], **kw: Any
) -> Any:
    return client.open_session(
        lat=station["lat"], lon=station["lon"], start=str(START), timestep=3600,
        outputs=list(OUTPUTS), land_cover=np.eye(N_CLASSES), run_id="e2e", **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def direct(station: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The reference model stepped directly (no coupler): LandStatic + ReferenceBackend."""
    backend = ReferenceBackend()
    static = LandStatic.from_cover(
        torch.from_numpy(station["lat"]), torch.from_numpy(station["lon"]),
        torch.eye(N_CLASSES, dtype=torch.float64),
    )  # fmt: skip
    clock = StepClock(0, START, 3600.0)
    state = backend.initial_state(static, clock)
    replies = []
    for i in range(STEPS):
        forcing = {k: torch.from_numpy(v).unsqueeze(0) for k, v in _step_fields(station, i).items()}
        state, outputs = backend.step(state, static, forcing, clock)
        replies.append({k: outputs[k].mean(dim=0).numpy() for k in OUTPUTS})
        clock = clock.advance()
    return replies


def _assert_bitwise(reply: dict[str, np.ndarray], want: dict[str, np.ndarray], i: int) -> None:
    assert reply.keys() == want.keys()
    for k in reply:
        assert reply[k].dtype == np.float64 and reply[k].shape == (N_CLASSES,)
        assert reply[k].tobytes() == want[k].tobytes(), (i, k, reply[k] - want[k])


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream-per-field"])
def test_48_steps_over_grpc_equal_the_reference_model(
    service: Service, station: dict[str, np.ndarray], direct: list[dict[str, np.ndarray]],
    stream: bool, tmp_path: Path,
) -> None:  # fmt: skip
    record = tmp_path / "record.zarr"
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="e2e") as client:
        session = _open(client, station, stream=stream, split_bytes=0, record_url=str(record))
        replies = []
        for i in range(STEPS):
            reply = session.step(i, _step_fields(station, i))
            _assert_bitwise(reply, direct[i], i)
            residual = reply["rns"] - reply["hfls"] - reply["hfss"] - reply["hfdsl"]
            assert np.abs(residual).max() <= 1e-3, (i, residual)
            replies.append(reply)
        session.close()
    # the record reopens with xarray and holds exactly what crossed the wire, both ways
    ds = xr.open_zarr(record, consolidated=False).transpose("time", ...)  # stored (cell, time)
    assert ds.sizes["time"] == STEPS
    assert np.datetime64(ds.time.values[0], "s") == START
    for name in FORCING:
        np.testing.assert_array_equal(ds[name].values, station[name])
    for name in OUTPUTS:
        np.testing.assert_array_equal(ds[name].values, np.stack([r[name] for r in replies]))


def test_in_process_transport_gives_the_same_bytes(
    station: dict[str, np.ndarray], direct: list[dict[str, np.ndarray]]
) -> None:
    with InProcessClient() as client, _open(client, station) as session:
        for i in range(STEPS):
            _assert_bitwise(session.step(i, _step_fields(station, i)), direct[i], i)
