"""Session records: Zarr v3 through fsspec, reopened with xarray, equal to what was exchanged."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
from fsspec.implementations.memory import MemoryFileSystem

from coupler.core import registry
from coupler.core.manager import SessionManager
from coupler.core.recorder import Recorder, ZarrRecorder, variable_names
from coupler.metrics import ServiceMetrics
from coupler.spec import GridSpec
from emulators import variables as V

from .conftest import START, config, forcing

N = 5


def _open(url: str) -> xr.Dataset:
    """The record with time first (records store fields as (cell, time))."""
    return xr.open_zarr(url, consolidated=False).transpose("time", ...)


@pytest.fixture(params=["memory", "local", "file-url"])
def record_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://record-{uuid.uuid4().hex}.zarr"
    if request.param == "file-url":  # directories that do not exist yet are created
        return f"file://{tmp_path}/not/yet/record.zarr"
    return str(tmp_path / "record.zarr")


def test_record_round_trip(record_url: str) -> None:
    manager = SessionManager(record_chunk_steps=4)
    cfg = config(
        N,
        members=3,
        output_spread=True,
        record_url=record_url,
        grid=GridSpec(
            lat=np.linspace(0, 40, N),
            lon=np.linspace(5, 9, N),
            area=np.full(N, 2.5e8),
            land_fraction=np.full(N, 0.5),
        ),
    )
    session = manager.open(cfg, "alice")
    sent: list[dict[str, np.ndarray]] = []
    replies = []
    for i in range(10):
        f = forcing(i, N)
        if i % 2:
            f = {k: v.astype(np.float32) for k, v in f.items()}
        if i == 6:
            f["co2"] = np.full(N, 410.0)
        sent.append(f)
        replies.append(session.step(i, f))
    session.step(9, {})  # a retry is not recorded twice
    manager.close(session.id, "alice")

    ds = _open(record_url)
    assert ds.sizes == {"time": 10, "cell": N}
    assert np.array_equal(
        ds.time.values, (START + np.arange(10) * np.timedelta64(3600, "s")).astype("datetime64[ns]")
    )
    assert np.array_equal(ds.lat.values, cfg.grid.lat) and "lat" in ds.coords
    assert np.array_equal(ds.lon.values, cfg.grid.lon) and "lon" in ds.coords
    assert np.array_equal(ds.areacella.values, np.full(N, 2.5e8))
    assert np.array_equal(ds.sftlf.values, np.full(N, 50.0))
    for i in range(10):
        for name, values in sent[i].items():
            assert ds[name].dtype == np.float64
            assert np.array_equal(ds[name].values[i], values.astype(np.float64)), (i, name)
        for name, values in replies[i].items():
            assert ds[name].values[i].tobytes() == values.tobytes(), (i, name)
    co2 = ds["co2"].values
    assert np.isnan(co2[[0, 1, 5, 7, 9]]).all() and np.array_equal(co2[6], np.full(N, 410.0))
    assert set(ds.data_vars) == set(V.REQUIRED_FORCING) | {"co2"} | set(cfg.reply_names())
    # CF attributes from the registry
    assert ds.tas.attrs["units"] == "K" and ds.tas.attrs["standard_name"] == "air_temperature"
    assert ds.hfls.attrs["positive"] == "up" and ds.hfdsl.attrs["positive"] == "down"
    assert ds.hfls_spread.attrs["units"] == "W m-2"
    assert "spread" in ds.hfls_spread.attrs["long_name"]
    # provenance
    stored = json.loads(ds.attrs["session_config"])
    assert stored["outputs"] == list(cfg.outputs) and stored["members"] == 3
    assert json.loads(ds.attrs["backend"]) == registry.identity(registry.create("reference"))
    assert ds.attrs["code_version"].startswith("landcoupler")
    assert np.datetime64(ds.attrs["created"].rstrip("Z"))
    assert ds.attrs["chunk_steps"] == 4
    assert ds.hfls.encoding["chunks"] == (N, 4)


def test_partial_chunk_written_on_close_and_flush() -> None:
    url = f"memory://partial-{uuid.uuid4().hex}.zarr"
    manager = SessionManager(record_chunk_steps=24)
    session = manager.open(config(N, record_url=url), "alice")
    for i in range(3):
        session.step(i, forcing(i, N))
    session.flush()
    assert _open(url).sizes["time"] == 3
    session.step(3, forcing(3, N))
    manager.close(session.id, "alice")
    ds = _open(url)
    assert ds.sizes["time"] == 4
    assert not np.isnan(ds.hfls.values).any()


def test_a_crash_loses_at_most_the_unflushed_chunk() -> None:
    url = f"memory://crash-{uuid.uuid4().hex}.zarr"
    cfg = config(N, record_url=url)
    recorder = ZarrRecorder(url, cfg, {"name": "test"}, chunk_steps=4)
    for i in range(10):
        recorder.record(i, forcing(i, N), {"hfls": np.full(N, float(i))})
    recorder.wait_idle()  # the writer is idle; the partial chunk (steps 8, 9) is not written
    ds = _open(url)
    assert ds.sizes["time"] == 8
    assert np.array_equal(ds.hfls.values[:, 0], np.arange(8.0))
    recorder.close()
    assert _open(url).sizes["time"] == 10


def test_resumed_session_continues_its_record() -> None:
    url = f"memory://resume-{uuid.uuid4().hex}.zarr"
    prefix = f"memory://resume-ckpt-{uuid.uuid4().hex}"
    whole = f"memory://whole-{uuid.uuid4().hex}.zarr"
    ref = SessionManager(record_chunk_steps=4)
    s = ref.open(config(N, record_url=whole), "alice")
    for i in range(10):
        s.step(i, forcing(i, N))
    ref.shutdown(checkpoint=False)

    first = SessionManager(record_chunk_steps=4)
    s = first.open(config(N, record_url=url, checkpoint_url=prefix, checkpoint_every=6), "alice")
    for i in range(8):  # steps 6 and 7 are recorded but are after the checkpoint
        s.step(i, forcing(i, N))
    ckpt = f"{prefix}/{s.id}.ckpt"
    first.shutdown(checkpoint=False)
    second = SessionManager(record_chunk_steps=4)
    resumed = second.resume(ckpt, "alice")
    for i in range(6, 10):
        resumed.step(i, forcing(i, N))
    second.shutdown(checkpoint=False)
    got, want = _open(url), _open(whole)
    assert got.sizes == want.sizes
    for name in want.data_vars:
        assert np.array_equal(got[name].values, want[name].values), name
    assert "resumed at step 6" in got.attrs["history"]


class _GatedMemory(MemoryFileSystem):
    """An in-memory filesystem whose chunk writes wait for a gate: a slow object store."""

    protocol = "gatedmem"
    gate = threading.Event()

    def pipe_file(self, path: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if "/hfls/c/" in path:
            self.gate.wait()
        super().pipe_file(path, value, *args, **kwargs)


def test_full_queue_blocks_and_is_counted_never_drops() -> None:
    fsspec.register_implementation("gatedmem", _GatedMemory, clobber=True)
    _GatedMemory.gate.clear()
    url = f"gatedmem://slow-{uuid.uuid4().hex}.zarr"
    metrics = ServiceMetrics()
    rec = ZarrRecorder(
        url, config(N), {"name": "test"}, chunk_steps=1, queue_size=1, metrics=metrics
    )
    try:
        rec.record(0, forcing(0, N), {"hfls": np.zeros(N)})  # the writer blocks on this chunk
        rec.record(1, forcing(1, N), {"hfls": np.ones(N)})  # fills the queue
        third = threading.Thread(target=rec.record, args=(2, forcing(2, N), {"hfls": np.ones(N)}))
        third.start()
        third.join(timeout=0.5)
        assert third.is_alive()  # waiting for room, not dropping the step
    finally:
        _GatedMemory.gate.set()
    third.join()
    rec.close()
    blocked = metrics.registry.get_sample_value("landcoupler_recorder_queue_full_total")
    assert blocked is not None and blocked >= 1.0  # the third step waited at least
    ds = xr.open_zarr(url, consolidated=False)
    assert ds.sizes["time"] == 3 and not np.isnan(ds.hfls.values).any()


def test_unwritable_record_url_refuses_the_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    manager = SessionManager()
    from coupler.errors import FailedPrecondition

    with pytest.raises(FailedPrecondition) as err:
        manager.open(config(N, record_url=str(blocker / "rec.zarr")), "alice")
    assert (err.value.field, err.value.rule) == ("record_url", "writable")
    assert manager.open_sessions == 0


def test_recorder_protocol_and_name_collisions() -> None:
    assert isinstance(ZarrRecorder.__new__(ZarrRecorder), Recorder)
    names = variable_names(("tas", "ts"), ("ts", "hfls"))
    assert names == {"in:tas": "tas", "in:ts": "in_ts", "out:ts": "out_ts", "out:hfls": "hfls"}


def test_chunk_length_is_capped_by_the_buffer_budget() -> None:
    url = f"memory://capped-{uuid.uuid4().hex}.zarr"
    cfg = config(N)
    fields = len(V.FORCING) + len(cfg.reply_names())
    rec = ZarrRecorder(
        url, cfg, {"name": "test"}, chunk_steps=24, max_buffer_bytes=5 * 8 * N * fields
    )
    for i in range(7):
        rec.record(i, forcing(i, N), {"hfls": np.full(N, float(i))})
    rec.close()
    ds = _open(url)
    assert ds.attrs["chunk_steps"] == 5 and ds.hfls.encoding["chunks"] == (N, 5)
    assert np.array_equal(ds.hfls.values[:, 0], np.arange(7.0))


def test_resume_without_the_old_record_starts_a_new_one() -> None:
    """E.g. a memory:// record does not survive the process: the resumed session records on."""
    url = f"memory://lost-{uuid.uuid4().hex}.zarr"
    cfg = config(N, record_url=url)
    recorder = ZarrRecorder(url, cfg, {"name": "test"}, chunk_steps=4, start_index=6)
    for i in range(6, 9):
        recorder.record(i, forcing(i, N), {"hfls": np.full(N, float(i))})
    recorder.close()
    ds = _open(url)
    assert ds.sizes["time"] == 9
    assert np.isnan(ds.hfls.values[:6]).all()
    assert np.array_equal(ds.hfls.values[6:, 0], [6.0, 7.0, 8.0])
    assert ds.time.values[0] == START.astype("datetime64[ns]")
    assert "resumed at step 6" in ds.attrs["history"]
