"""48 steps of real station forcing (TMY3 Greensboro, pvlib's data) through a session: replies
equal the in-process reference model bit for bit, energy closes, and the record equals what was
exchanged."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
import xarray as xr

from coupler.core import landstep
from coupler.core.manager import SessionManager
from coupler.spec import GridSpec, SessionSpec
from emulators import forcing as station
from emulators import parameters as P
from emulators.reference import ReferenceBackend

from .conftest import OUTPUTS

STEPS = 48


@pytest.fixture(scope="module")
def greensboro() -> xr.Dataset:
    ds = station.load("tmy3-greensboro")
    return ds.sel(time=slice("2001-07-01T00:00", None)).isel(time=slice(0, STEPS))


def _steps(ds: xr.Dataset, n: int) -> list[dict[str, np.ndarray]]:
    """The station's forcing repeated over ``n`` cells (cells differ by land cover)."""
    names = [v for v in ds.data_vars if v in ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")]
    return [{k: np.repeat(ds[k].values[i], n) for k in names} for i in range(ds.sizes["time"])]


def test_station_forcing_through_a_session(greensboro: xr.Dataset) -> None:
    classes = [
        P.LandCover.GRASSLAND,
        P.LandCover.CROPLAND,
        P.LandCover.DECIDUOUS_FOREST_WOODLAND,
        P.LandCover.BARE,
    ]
    n = len(classes)
    cover = np.zeros((n, P.N_CLASSES))
    cover[np.arange(n), [int(c) for c in classes]] = 1.0
    lat = float(greensboro.lat.values[0])
    lon = float(greensboro.lon.values[0])
    record = f"memory://greensboro-{uuid.uuid4().hex}.zarr"
    cfg = SessionSpec(
        grid=GridSpec(lat=np.full(n, lat), lon=np.full(n, lon)),
        start=np.datetime64(greensboro.time.values[0], "s"),
        timestep=int(greensboro.attrs["timestep_seconds"]),
        outputs=OUTPUTS,
        land_cover=cover,
        record_url=record,
    )
    manager = SessionManager(record_chunk_steps=24)
    session = manager.open(cfg, "alice")
    backend = ReferenceBackend()
    static = landstep.build_static(cfg)
    state = backend.initial_state(static, landstep.clock_for(cfg, 0))
    sent = _steps(greensboro, n)
    replies = []
    for i, f in enumerate(sent):
        reply = session.step(i, f)
        replies.append(reply)
        tensors = {k: torch.from_numpy(v).unsqueeze(0) for k, v in f.items()}
        state, out = backend.step(state, static, tensors, landstep.clock_for(cfg, i))
        for name in cfg.outputs:
            assert reply[name].tobytes() == out[name][0].numpy().tobytes(), (i, name)
        closure = reply["rns"] - reply["hfls"] - reply["hfss"] - reply["hfdsl"]
        assert np.abs(closure).max() < 1e-3, i
    assert session.state.equal(state)
    hfls = np.array([r["hfls"] for r in replies])
    assert hfls.max() > 50.0  # July days evaporate: the fluxes are not trivially zero
    manager.close(session.id, "alice")

    ds = xr.open_zarr(record, consolidated=False).transpose("time", ...)  # stored (cell, time)
    assert ds.sizes == {"time": STEPS, "cell": n}
    assert np.array_equal(ds.time.values, greensboro.time.values)
    for i in range(STEPS):
        for k, v in sent[i].items():
            assert ds[k].values[i].tobytes() == v.tobytes()
        for k, v in replies[i].items():
            assert ds[k].values[i].tobytes() == v.tobytes()
