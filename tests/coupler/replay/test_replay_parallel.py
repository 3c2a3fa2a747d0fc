"""Parallel rank replay (``--workers N``, worker processes) gives the same results as a serial
replay: the same JSON (bitwise flag, first difference, skill, observations) but for timings, the
same first difference when a record was altered, the same error when a rank's chunk is corrupt,
and progress for every step of every rank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from coupler.cli import main
from coupler.errors import InvalidArgument
from coupler.replay import RecordError, replay

from .conftest import record

RANKS = 3
STEPS = 30
TIMING = ("seconds", "steps_per_second", "workers")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A 3-rank run (reference model), rank 1 sending float32 forcing."""
    for rank in range(RANKS):
        wire = np.float32 if rank == 1 else np.float64
        record(str(tmp_path / f"rank{rank}.zarr"), STEPS, n=3 + rank, wire=wire, rank=rank,
               run_id="parallel")  # fmt: skip
    return tmp_path


def _same(serial: dict, parallel: dict) -> None:
    assert (serial["workers"], parallel["workers"]) == (1, 2)
    strip = [{k: v for k, v in d.items() if k not in TIMING} for d in (serial, parallel)]
    assert json.dumps(strip[0], sort_keys=True) == json.dumps(strip[1], sort_keys=True)


def test_serial_and_parallel_replays_agree(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = []
    for workers in ("1", "2"):
        rc = main(["replay", str(run), "--json", "--no-progress", "--workers", workers])
        out.append(json.loads(capsys.readouterr().out))
        assert rc == 0
    _same(*out)
    assert out[1]["bitwise_equal"] is True and out[1]["ranks"] == [0, 1, 2]
    counted: list[int] = []
    result = replay(str(run), workers=2, progress=counted.append)
    assert sum(counted) == RANKS * STEPS and result.workers == 2
    assert [d.rank for d in result.data] == [0, 1, 2]


def test_a_difference_is_found_the_same_way(run: Path) -> None:
    for rank, step in ((2, 9), (1, 21)):  # the earliest step wins, whichever the rank
        hfls = zarr.open_group(str(run / f"rank{rank}.zarr"), mode="a")["hfls"]
        assert isinstance(hfls, zarr.Array)
        hfls[1, step] = float(hfls[1, step]) + 1.0
    serial, parallel = (replay(str(run), workers=w).to_dict() for w in (1, 2))
    _same(serial, parallel)
    assert parallel["bitwise_equal"] is False
    first = parallel["first_difference"]
    assert (first["rank"], first["step"], first["field"], first["cell"]) == (2, 9, "hfls", 1)


def test_a_worker_error_arrives_whole(run: Path) -> None:
    (run / "rank1.zarr" / "tas" / "c" / "0" / "0").write_bytes(b"\x00garbage" * 64)
    errors = []
    for workers in (1, 2):
        with pytest.raises(RecordError) as err:
            replay(str(run), workers=workers)
        errors.append((type(err.value), err.value.field, err.value.rule, str(err.value)))
    assert errors[0] == errors[1] and errors[1][2] == "corrupt" and "tas" in errors[1][3]


def test_bad_workers_are_refused(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", str(run), "--workers", "0"])
    assert "--workers: expected a number of processes >= 1" in capsys.readouterr().err
    with pytest.raises(InvalidArgument) as err:
        replay(str(run), workers=0)
    assert (err.value.field, err.value.rule) == ("workers", "int_range")
