"""The observation table of a record (in-process DA sessions, real Zarr stores): a damaged table
is refused with a RecordError naming the array; requests beyond the last committed step are
ignored and reported; a resumed session keeps the requests queued before its resume step."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupler.assimilation import configio
from coupler.core import checkpoint
from coupler.core.manager import SessionManager
from coupler.core.recorder import ZarrRecorder
from coupler.core.session import Session
from coupler.replay import RecordError, RecordSource, replay
from coupler.spec import RecordOptions
from coupler.spec.observations import ObservationBatch, Parsed

from .conftest import START, forcing, grid, memory_url, record, spec

N = 3
DA = configio.from_options({"initial_leaf_carbon_sd": 0.2, "leaf_carbon_sd": 0.05, "seed": 2})


def _hfls(k: int, values: tuple[float, ...] = (50.0, 60.0, 45.0)) -> list[ObservationBatch]:
    """Daily-mean LE of the day before step ``k`` at every cell."""
    g = grid(N)
    day = (np.datetime64(START, "D") + np.timedelta64(k // 24 - 1, "D")).astype("datetime64[s]")
    return [ObservationBatch("hfls", list(values), [10.0] * N, g.lat, g.lon, [day] * N)]


def _run(session: Session, steps: range, requests: dict[int, list[ObservationBatch]]) -> None:
    for k in steps:
        if k in requests:
            assert session.assimilate(requests[k]) == N
        session.step(k, forcing(k, N))


@pytest.fixture
def da_record(tmp_path: Path) -> Path:
    path = tmp_path / "rank0.zarr"
    manager = SessionManager()
    s = manager.open(spec(N, record_url=str(path), assimilation=DA, members=4), "a")
    _run(s, range(60), {24: _hfls(24), 48: _hfls(48)})
    manager.close(s.id, "a")
    return path


def _refused(url: Path, rule: str, *words: str) -> None:
    with pytest.raises(RecordError) as err:
        replay(str(url))
    assert (err.value.field, err.value.rule) == ("record", rule), str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_a_damaged_observation_table_is_refused_naming_the_array(da_record: Path) -> None:
    assert replay(str(da_record)).bitwise_equal
    group = zarr.open_group(str(da_record), mode="a")
    table = group["observations"]
    assert isinstance(table, zarr.Group)
    table["type"][1] = 9
    _refused(da_record, "corrupt", "observations/type: a code outside its flag_meanings")
    table["type"][1] = 0
    (da_record / "observations" / "value" / "c" / "0").write_bytes(b"\x00garbage" * 8)
    _refused(da_record, "corrupt", "observations/value: rows 0..2 do not decode")
    group.attrs["observation_batches"] = 5
    _refused(da_record, "missing_data", "observations/step: 2 rows, 5 are committed")
    shutil.rmtree(da_record / "observations" / "error")
    _refused(da_record, "missing_array", "['observations/error']", "missing from the store")
    shutil.rmtree(da_record / "observations")
    _refused(da_record, "missing_array", "5 observation batches are committed",
             "table observations/ is missing")  # fmt: skip


def test_records_without_observations_have_no_table(tmp_path: Path) -> None:
    record(str(tmp_path / "plain.zarr"), 5)
    src = RecordSource(str(tmp_path / "plain.zarr"))
    assert (src.observations.n_batches, src.observations.requests(0, 5)) == (0, [])
    assert not (tmp_path / "plain.zarr" / "observations").exists()


def test_requests_beyond_the_last_committed_step_are_ignored_and_reported() -> None:
    url = memory_url("obs-cut")
    manager = SessionManager()
    s = manager.open(spec(N, record_url=url, assimilation=DA, members=4), "a")
    try:
        _run(s, range(30), {24: _hfls(24)})
        assert s.assimilate(_hfls(30)) == N
        s.flush()  # steps 0..29 and both requests committed; the writer then "stops"
        _run(s, range(30, 40), {36: _hfls(36, (40.0, 41.0, 42.0))})  # not committed
        src = RecordSource(url)
        assert (src.n_steps, src.closed, src.observations.n_batches) == (30, False, 2)
        result = replay(url)
        assert result.bitwise_equal and result.observations["requests"] == 1
        assert result.observations["ignored"] == [
            "rank 0: observation request 1 (1 batch(es), 3 observations) was queued before "
            "step 30, after the record's last committed step 29: not replayed"
        ]
    finally:
        manager.close(s.id, "a")


def test_a_resumed_session_keeps_the_requests_accepted_before_its_checkpoint() -> None:
    url, ckpt = memory_url("obs-resume"), memory_url("obs-resume-ckpt")
    manager = SessionManager()
    s = manager.open(spec(N, record_url=url, assimilation=DA, members=4), "a")
    _run(s, range(40), {24: _hfls(24)})
    assert s.assimilate(_hfls(40)) == N  # queued: the checkpoint holds it in its queue
    s.checkpoint(ckpt)
    _run(s, range(40, 60), {48: _hfls(48)})
    manager.close(s.id, "a")
    assert [r.step for r in RecordSource(url).observations.requests(0, 60)] == [24, 40, 48]
    # resumed at 40 with the same record: request 2 (before 48) is dropped and sent anew
    s = manager.resume(ckpt, "a")
    _run(s, range(40, 60), {48: _hfls(48, (70.0, 71.0, 72.0))})
    manager.close(s.id, "a")
    src = RecordSource(url)
    assert src.starts == [0, 40]
    got = src.observations.requests(0, 60)
    assert [(r.serial, r.step) for r in got] == [(0, 24), (1, 40), (2, 48)]
    assert got[2].batches[0].values.tolist() == [70.0, 71.0, 72.0]
    # from step 0, through the resume: request 1 is re-sent before step 40
    whole = replay(url)
    assert whole.bitwise_equal and whole.observations["requests"] == 3
    # from the start state at 40: request 1 is in its queue already, only 2 is re-sent
    part = replay(url, steps=(40, 60))
    assert part.bitwise_equal and part.observations["requests"] == 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), chunk_bytes=st.sampled_from([1024, 4096]),
       shard_chunks=st.integers(1, 3))  # fmt: skip
def test_random_requests_round_trip_exactly(seed: int, chunk_bytes: int, shard_chunks: int) -> None:
    """Any float64 bits, times and units survive, across chunks, shards and commits."""
    rng = np.random.default_rng(seed)
    options = RecordOptions(chunk_bytes=chunk_bytes, shard_chunks=shard_chunks)
    cfg = spec(N, record_options=options)
    url = memory_url("obs-hypo")
    blob = checkpoint.to_bytes(checkpoint.CheckpointData("h", "h", cfg, {"name": "x"}, 0, {}))
    rec = ZarrRecorder(url, cfg, {"name": "x"}, start=blob)
    sent: list[tuple[int, list[Parsed], list[str]]] = []
    steps = int(rng.integers(1, 80))
    for k in range(steps + 1):
        for _ in range(int(rng.poisson(0.7))):
            batches = [_random_batch(rng) for _ in range(int(rng.integers(1, 4)))]
            units = [str(rng.choice(["", "W m-2", "1", "K"])) for _ in batches]
            rec.observations(k, len(sent), batches, units)
            sent.append((k, batches, units))
        if k < steps:
            rec.record(k, forcing(k, N), {"hfls": np.zeros(N)})
        if rng.uniform() < 0.05:
            rec.flush()
    rec.close()
    got = RecordSource(url).observations.requests(0, steps + 1)
    assert [(r.serial, r.step) for r in got] == [(i, k) for i, (k, _, _) in enumerate(sent)]
    for r, (_, batches, units) in zip(got, sent, strict=True):
        assert [(b.type, b.units) for b in r.batches] == [
            (b.type, u) for b, u in zip(batches, units, strict=True)
        ]
        for have, want in zip(r.batches, batches, strict=True):
            for name in ("values", "errors", "lat", "lon"):
                assert have.__dict__[name].tobytes() == want.__dict__[name].tobytes(), name
            assert have.times.tobytes() == want.times.tobytes()


def _random_batch(rng: np.random.Generator) -> Parsed:
    n = int(rng.integers(1, 200))
    bits = rng.integers(0, 2**63, size=(4, n), dtype=np.int64).view(np.float64)
    bits[~np.isfinite(bits)] = -0.0  # the session never accepts non-finite values
    times = rng.integers(-(2**40), 2**40, n).astype("datetime64[s]")
    kind = str(rng.choice(["hfls", "hfss", "ts", "lai"]))
    return Parsed(kind, bits[0], bits[1], bits[2], bits[3], times)
