"""Acceptance: a 2-rank, 96-step coupled session recorded over gRPC (a real server on
127.0.0.1:0) with the emulator backend replays bit for bit on the same emulator and gives an A/B
report with sensible skill on the reference backend; the step iterator and replay as a land
backend reproduce the record. Rank 0 sends float32 forcing (recorded as float32), rank 1
float64."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from coupler.cli import main
from coupler.client import local_client
from coupler.core import landstep, registry
from coupler.core.manager import SessionManager
from coupler.replay import RankReplay, RecordBackend, RecordSource, open_run
from coupler.replay.backend import RecordBackendError
from coupler.spec import RecordOptions
from coupler.spec.codecs import bitround
from emulators.protocol import LandBackend, LandState

from .conftest import OUTPUTS, START, forcing, grid

STEPS = 96
CELLS = (5, 4)
WIRE = (np.float32, np.float64)  # the forcing dtype each rank sends


@pytest.fixture(scope="module")
def run_prefix() -> str:
    """rank<r>.zarr records of one run: the torchscript emulator behind a gRPC server."""
    prefix = f"memory://replay-run-{uuid.uuid4().hex}"
    options = RecordOptions.compact(chunk_bytes=2048, shard_chunks=2)
    with local_client("grpc") as client:
        sessions = []
        for rank, n in enumerate(CELLS):
            g = grid(n, seed=rank)
            sessions.append(client.open_session(
                lat=g.lat, lon=g.lon, area=g.area, land_fraction=g.land_fraction,
                start=str(START), timestep=3600, outputs=list(OUTPUTS), backend="torchscript",
                land_cover=np.tile([0.3, 0.0, 0.4, 0.0, 0.3, 0.0, 0.0, 0.0], (n, 1)),
                run_id="acceptance", rank=rank, record_url=f"{prefix}/rank{rank}.zarr",
                record_options=options,
            ))  # fmt: skip
        for i in range(STEPS):
            for rank, s in enumerate(sessions):
                sent = forcing(i, CELLS[rank], seed=rank)
                s.step(i, {k: v.astype(WIRE[rank]) for k, v in sent.items()})
        for s in sessions:
            s.close()
    return prefix


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main(["replay", *args, "--json", "--no-progress"])
    return rc, json.loads(capsys.readouterr().out)


def test_same_emulator_replays_bit_for_bit(
    run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = RecordSource(f"{run_prefix}/rank0.zarr")
    assert src.torch_threads == torch.get_num_threads() == 1
    # the record options crossed the wire (OpenSessionRequest.record_options)
    assert src.keepbits["hfls"] == 10 and src.keepbits["tas"] == 0 and src.chunk_steps == 52
    assert src.options["codec"]["id"] == "pcodec"
    # forcing kept in the dtype it came on the wire, exactly; outputs float64
    for rank, wire in enumerate(WIRE):
        s = RecordSource(f"{run_prefix}/rank{rank}.zarr")
        assert all(s.dtypes[n] == wire for n in s.forcing) and s.dtypes["hfls"] == np.float64
        sent = forcing(7, CELLS[rank], seed=rank)["tas"].astype(wire)
        assert s.read(7, 8).fields["tas"][0].tobytes() == sent.tobytes()
        assert s._arrays["tas"].attrs["landcoupler_wire_dtype"] == np.dtype(wire).name
    torch.set_num_threads(
        2
    )  # the emulators' float32 results depend on it: replay uses the record's
    try:
        rc, out = _cli(capsys, run_prefix)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(1)
    assert rc == 0 and out["mode"] == "bitwise" and out["ranks"] == [0, 1]
    assert out["bitwise_equal"] is True and out["first_difference"] is None
    assert out["steps"] == [0, STEPS] and out["truncated"] == []
    skill = {row["variable"]: row for row in out["skill"]}
    assert set(skill) == set(OUTPUTS)
    assert all(row["rmse"] == 0.0 and row["n"] == STEPS * sum(CELLS) for row in skill.values())


def test_reference_backend_gives_an_ab_report(
    run_prefix: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, out = _cli(capsys, run_prefix, "--backend", "reference", "--report", str(tmp_path))
    assert rc == 0 and out["mode"] == "ab" and out["backend"] == "reference"
    assert out["bitwise_equal"] is False
    first = out["first_difference"]
    assert first["rank"] == 0 and first["step"] == 0 and first["field"] in OUTPUTS
    skill = {row["variable"]: row for row in out["skill"]}
    # the emulator was trained on the reference model: close, not identical
    for name in ("hfls", "hfss", "rns", "ts"):
        assert 0.8 < skill[name]["pearson_r"] < 1.0, (name, skill[name])
        assert 0.5 < skill[name]["std_ratio"] < 1.5, (name, skill[name])
    assert skill["ts"]["rmse"] < 5.0 and skill["hfls"]["rmse"] < 60.0
    report = json.loads((tmp_path / "replay.json").read_text())
    rows = {(r["variable"], r["region"], r["season"]) for r in report["skill_by_region_season"]}
    assert ("hfls", "all", "JJA") in rows and ("hfls", "northern extratropics", "all") in rows
    assert "Per region and season" in (tmp_path / "replay.md").read_text()
    for png in ("maps_difference.png", "taylor.png", "timeseries.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_steps_ranks_and_the_step_iterator(
    run_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = _cli(capsys, run_prefix, "--steps", "40:50", "--ranks", "1")
    assert rc == 0 and out["steps"] == [40, 50] and out["ranks"] == [1]
    assert out["bitwise_equal"] and out["skill"][0]["n"] == 10 * CELLS[1]
    src = open_run(run_prefix, [1])[0]
    results = list(RankReplay(src).steps(40, 50))
    assert [r.index for r in results] == list(range(40, 50))
    for r in results:
        assert set(r.forcing) == {"tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds"}
        for name in OUTPUTS:
            got = bitround(np.asarray(r.replayed[name]), src.keepbits[name])
            assert got.tobytes() == r.recorded[name].tobytes(), (r.index, name)


def test_bad_arguments_are_refused(run_prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", run_prefix, "--ranks", "7", "--no-progress"]) == 2
    assert "no rank(s) [7]; the run has [0, 1]" in capsys.readouterr().err
    assert main(["replay", run_prefix, "--backend", "nonesuch", "--no-progress"]) == 2
    assert "unknown backend 'nonesuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", run_prefix, "--steps", "9:3"])


def test_replay_as_a_land_backend(run_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src = RecordSource(f"{run_prefix}/rank0.zarr")
    backend = RecordBackend(src)
    assert isinstance(backend, LandBackend)
    # a session on the record backend replies with the recorded outputs
    monkeypatch.setitem(registry._FACTORIES, "record", lambda _options: RecordBackend(src))
    manager = SessionManager()
    session = manager.open(src.spec_for_replay("record"), "dev")
    block = src.read(0, STEPS)
    for i in range(STEPS):
        reply = session.step(i, {n: block.fields[n][i] for n in src.forcing})
        for name in OUTPUTS:
            assert reply[name].tobytes() == block.fields[name][i].tobytes(), (i, name)
    manager.close(session.id, "dev")
    # a developer's loop: the recorded forcing in, the recorded outputs to compare with
    static = landstep.build_static(src.spec)
    state = backend.initial_state(static, landstep.clock_for(src.spec, 0))
    assert isinstance(state, LandState) and state.tensors
    wrong = backend.forcing(5)
    wrong["tas"] = wrong["tas"] + 1.0
    with pytest.raises(RecordBackendError) as err:
        backend.step(state, static, wrong, landstep.clock_for(src.spec, 5))
    assert (err.value.field, err.value.rule) == ("tas", "record_forcing")
    assert "step 5 cell 0" in str(err.value)
