"""Acceptance: a session with online assimilation fed through Assimilate (the Python client over
a real gRPC server on 127.0.0.1:0), recorded to a local Zarr store, replays bit for bit: the
record holds every accepted request (and no refused one) and replay re-sends them before the
steps they preceded. Without its observation table the same record does not replay bitwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from coupler.cli import main
from coupler.client import CouplerRpcError, ObservationBatch, local_client
from coupler.replay import RecordSource, replay

from .conftest import START, forcing, grid
from .test_record_errors import _snapshot

STEPS = 240  # ten days: the 8-day LAI composite of the first days is complete from step 192
N = 3
DA: dict[str, Any] = {"initial_leaf_carbon_sd": 0.2, "leaf_carbon_sd": 0.05, "seed": 1}
DAY = np.timedelta64(1, "D")


def _batch(kind: str, k: int, units: str = "") -> ObservationBatch:
    """An observation batch at every cell, sent before step ``k``."""
    g = grid(N)
    day = (np.datetime64(START, "D") + (k // 24 - 1) * DAY).astype("datetime64[s]")
    if kind == "lai":  # the composite of the 8 days before the previous one
        day = day - 7 * DAY
    if kind == "ts":  # the overpass in the previous step
        day = np.datetime64(START, "s") + np.timedelta64(3600 * (k - 1) + 1800, "s")
    value = {"hfls": [55.0, 70.0, 40.0], "hfss": [20.0, 35.0, 15.0], "lai": [1.2, 2.5, 0.8],
             "ts": [291.0, 295.5, 289.25]}[kind]  # fmt: skip
    error = {"hfls": 10.0, "hfss": 8.0, "lai": 0.2, "ts": 1.0}[kind]
    times = [str(day)] * N if k % 48 else [day] * N  # RFC 3339 strings and datetime64
    return ObservationBatch(kind, value, [error] * N, g.lat, g.lon, times, units)


#: (step, request) in the order sent; a request is accepted or refused whole
REQUESTS: list[tuple[int, list[ObservationBatch]]] = sorted(
    [(k, [_batch("hfls", k, "W m-2" if k % 72 == 0 else "")]) for k in range(24, STEPS + 1, 24)]
    + [(120, [_batch("ts", 120), _batch("hfss", 120, "W m-2")])]
    + [(k, [_batch("lai", k, "1")]) for k in (192, 216)],
    key=lambda r: r[0],
)  # fmt: skip


@pytest.fixture(scope="module", params=["reference", "torchscript"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-cell, 4-member DA session over gRPC, observations sent with Assimilate."""
    path = tmp_path_factory.mktemp("da") / "rank0.zarr"
    g = grid(N)
    with local_client("grpc") as client:
        s = client.open_session(
            lat=g.lat, lon=g.lon, area=g.area, land_fraction=g.land_fraction, start=str(START),
            timestep=3600, outputs=["hfls", "hfss", "ts", "lai"], backend=request.param,
            land_cover="grassland", members=4, assimilation=dict(DA), run_id="da", rank=0,
            record_url=str(path),
        )  # fmt: skip
        pending = list(REQUESTS)
        for k in range(STEPS + 1):
            while pending and pending[0][0] == k:
                batches = pending.pop(0)[1]
                assert s.assimilate_batches(batches) == N * len(batches)
            if k == 100:  # refused (a cell far from the domain): not recorded
                far = _batch("hfls", 96)
                far = ObservationBatch(**{**far.__dict__, "lat": [0.0, 0.0, 89.0]})
                with pytest.raises(CouplerRpcError) as err:
                    s.assimilate_batches([_batch("hfss", 96), far])
                assert (err.value.field, err.value.rule) == ("batches[1].lat", "in_domain")
            if k < STEPS:
                s.step(k, forcing(k, N))
        s.close()
    return path


def test_the_record_holds_every_accepted_request_exactly(recorded: Path) -> None:
    src = RecordSource(str(recorded))
    table = src.observations
    assert (table.n_requests, table.n_batches, table.n_obs) == (13, 14, 42)
    got = table.requests(0, STEPS + 1)
    assert [r.step for r in got] == [k for k, _ in REQUESTS]
    for r, (k, sent) in zip(got, REQUESTS, strict=True):
        assert [b.type for b in r.batches] == [b.type for b in sent]
        for have, want in zip(r.batches, sent, strict=True):
            assert have.units == want.units
            for name in ("values", "errors", "lat", "lon"):
                assert (
                    have.__dict__[name].tobytes()
                    == np.asarray(want.__dict__[name], dtype=np.float64).tobytes()
                ), (k, name)
            times = np.array([np.datetime64(str(t).rstrip("Z"), "s") for t in want.times])
            assert np.array_equal(have.times, times)
    # the observations were analysed at the steps they preceded
    n_obs = np.asarray(zarr.open_group(str(recorded), mode="r")["assim_n_obs"][:])
    assert np.flatnonzero(np.isfinite(n_obs)).tolist() == [k for k in range(24, STEPS, 24)]
    assert n_obs[120] == 9.0 and n_obs[192] == 6.0


def test_a_da_session_fed_by_assimilate_replays_bit_for_bit(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(recorded)
    result = replay(str(recorded))
    assert result.mode == "bitwise" and result.bitwise_equal, result.first_difference
    assert result.observations["requests"] == 12 and result.observations["observations"] == 39
    (ignored,) = result.observations["ignored"]
    assert "queued before step 240, after the record's last committed step 239" in ignored
    assert main(["replay", str(recorded), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["bitwise_equal"] is True and out["first_difference"] is None
    assert out["observations"]["requests"] == 12
    assert "observation request 12 (1 batch(es), 3 observations)" in captured.err
    # from the start state only: steps 150..199 replay with the requests of 192
    part = replay(str(recorded), steps=(150, 200))
    assert part.bitwise_equal and part.observations["requests"] == 10
    assert _snapshot(recorded) == before  # replay wrote nothing to the record


def test_without_its_observation_table_the_record_differs(recorded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(recorded, copy)
    shutil.rmtree(copy / "observations")
    group = zarr.open_group(str(copy), mode="a")
    group.attrs["observation_batches"] = 0
    result = replay(str(copy))
    assert result.mode == "bitwise" and not result.bitwise_equal
    assert result.first_difference is not None and result.first_difference.step == 24


def test_ab_replay_on_the_other_backend_sends_the_same_observations(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded_on = RecordSource(str(recorded)).spec.backend
    other = "torchscript" if recorded_on == "reference" else "reference"
    args = ["replay", str(recorded), "--backend", other, "--report", str(tmp_path)]
    assert main([*args, "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "ab" and out["backend"] == other and not out["bitwise_equal"]
    assert out["observations"]["requests"] == 12
    markdown = (tmp_path / "replay.md").read_text()
    assert "observation requests re-sent: 12 (39 observations)" in markdown
    assert "- not replayed: rank 0: observation request 12" in markdown
