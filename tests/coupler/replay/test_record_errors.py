"""Bad records get precise errors, and a crashed writer's record replays up to its last complete
chunk and says so. The crashes are real: a child process records through a filesystem that
kills the process in the middle of a chunk write (or after a flush, without closing). The cut
record and the damaged ones hold float32 forcing (as sent), the unclosed one float64."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

from coupler.replay import RecordBackend, RecordError, RecordSource, open_dataset, replay

from .conftest import record

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import os, sys
import fsspec
from fsspec.implementations.local import LocalFileSystem
sys.path.insert(0, {root!r})
from coupler.core.manager import SessionManager
from tests.coupler.replay.conftest import forcing, spec

class CrashFS(LocalFileSystem):
    protocol = "crashfile"
    hfls_writes = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_mkdir=True, **kwargs)

    def pipe_file(self, path, value, *args, **kwargs):
        if "/hfls/c/" in str(path):
            CrashFS.hfls_writes += 1
            if CrashFS.hfls_writes == 2:  # hfls's second chunk: other fields hold theirs
                os._exit(3)
        super().pipe_file(path, value, *args, **kwargs)

fsspec.register_implementation("crashfile", CrashFS, clobber=True)
manager = SessionManager()
# a writer that flushed and then died without closing
s = manager.open(spec(6, record_url={unclosed!r}), "a")
for i in range(30):
    s.step(i, forcing(i, 6))
s.flush()
# a writer killed in the middle of its second chunk (chunks of 22 steps)
s = manager.open(spec(6, record_url="crashfile://" + {cut!r}), "a")
for i in range(60):
    s.step(i, {{k: v.astype("float32") for k, v in forcing(i, 6).items()}})
s.flush()
os._exit(0)  # not reached: the flush writes hfls's second chunk
"""


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    tmp = tmp_path_factory.mktemp("crash")
    unclosed, cut = str(tmp / "unclosed.zarr"), str(tmp / "cut.zarr")
    code = textwrap.dedent(CHILD.format(root=str(ROOT), unclosed=unclosed, cut=cut))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    return unclosed, cut


def test_a_record_cut_mid_chunk_replays_its_committed_steps(crashed: tuple[str, str]) -> None:
    src = RecordSource(crashed[1])
    assert (src.time_length, src.steps_complete, src.n_steps) == (44, 22, 22)
    assert src.dtypes["tas"] == np.float32 and src.dtypes["hfls"] == np.float64
    assert src.truncated is not None and "cut mid-chunk" in src.truncated
    assert "reach step 44 but only 22 steps were committed" in src.truncated
    result = replay(crashed[1])
    assert result.steps == (0, 22) and result.bitwise_equal
    assert result.truncated == [f"rank 0: {src.truncated}"]


def test_an_unclosed_record_replays_to_its_last_chunk(crashed: tuple[str, str]) -> None:
    src = RecordSource(crashed[0])
    assert (src.n_steps, src.closed) == (30, False)
    assert src.truncated is not None and "not closed" in src.truncated
    result = replay(crashed[0])
    assert result.steps == (0, 30) and result.bitwise_equal and result.truncated


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "rank0.zarr"
    record(str(path), 60, wire=np.float32)
    return path


def _refused(url: str | Path, rule: str, *words: str) -> RecordError:
    with pytest.raises(RecordError) as err:
        RecordSource(str(url))
        replay(str(url))
    assert (err.value.field, err.value.rule) == ("record", rule), str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)
    return err.value


def test_a_missing_array_is_named(good: Path) -> None:
    shutil.rmtree(good / "hfss")
    _refused(good, "missing_array", "['hfss']", "missing")


def test_a_missing_start_state_is_named(good: Path) -> None:
    shutil.rmtree(good / "starts")
    _refused(good, "missing_array", "start state")


def test_a_missing_chunk_of_committed_steps_is_named(good: Path) -> None:
    (good / "tas" / "c" / "0" / "1").unlink()  # the second shard: steps 44..59
    _refused(good, "missing_data", "tas: step 44 is committed but its chunk is missing")


def test_a_corrupted_chunk_is_named(good: Path) -> None:
    (good / "hfls" / "c" / "0" / "0").write_bytes(b"\x00garbage" * 64)
    _refused(good, "corrupt", "hfls: steps 0..21 do not decode")


def test_a_foreign_zarr_store_is_refused(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w")
    group.create_array("temperature", shape=(3,), dtype="f4")[:] = 1.0
    _refused(tmp_path / "foreign.zarr", "record_format", "not a landcoupler record",
             "temperature")  # fmt: skip


@pytest.mark.parametrize("dtype", ["f8", "f4"])
def test_a_v1_record_is_refused_with_what_it_lacks(tmp_path: Path, dtype: str) -> None:
    """The layout of records written before format 2 (coupler/core/recorder.py until then)."""
    group = zarr.open_group(str(tmp_path / "v1.zarr"), mode="w", zarr_format=3)
    group.attrs.update({"Conventions": "CF-1.10", "title": "landcoupler session record",
                        "session_config": "{}", "backend": "{}", "chunk_steps": 24})  # fmt: skip
    group.create_array("time", shape=(24,), chunks=(1024,), dtype="i8", dimension_names=["time"])
    group.create_array("tas", shape=(24, 3), chunks=(24, 3), dtype=dtype,
                       dimension_names=["time", "cell"])  # fmt: skip
    _refused(tmp_path / "v1.zarr", "record_version", "v1 record", "start state", "land-cover")


def test_a_newer_version_is_refused(good: Path) -> None:
    zarr.open_group(str(good), mode="a").attrs["record_version"] = 3
    _refused(good, "record_version", "version 3", "reads version 2")


def test_nothing_there_is_not_found(tmp_path: Path) -> None:
    _refused(tmp_path / "absent.zarr", "not_found")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(RecordError) as err:
        replay(str(tmp_path / "plain"))
    assert err.value.rule == "not_found" and "rank<r>.zarr" in str(err.value)


def _snapshot(path: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(path)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_replay_writes_nothing_to_the_source_record(good: Path) -> None:
    before = _snapshot(good)
    assert replay(str(good)).bitwise_equal
    assert replay(str(good), backend="torchscript", steps=(0, 10)).mode == "ab"
    backend = RecordBackend(str(good))
    forcing = backend.forcing(3)
    assert set(forcing) == {"tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds"}
    assert np.isfinite(open_dataset(str(good)).hfls.values).all()
    assert _snapshot(good) == before
