"""Checkpoints: atomic writes to fsspec URLs, and resume continues bit-identically."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

from coupler.core import checkpoint
from coupler.core.manager import SessionManager
from coupler.errors import FailedPrecondition, InvalidArgument, NotFound
from emulators.reference.classes import leaf_cn

from .conftest import assert_replies_identical, assert_unchanged, config, forcing, snapshot

N = 5
ROOT = Path(__file__).resolve().parents[3]


def _uninterrupted(steps: int = 10) -> list[dict[str, np.ndarray]]:
    manager = SessionManager()
    session = manager.open(config(N, members=2, output_spread=True), "alice")
    replies = [session.step(i, forcing(i, N)) for i in range(steps)]
    manager.shutdown(checkpoint=False)
    return replies


@pytest.fixture(params=["memory", "local"])
def prefix(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://ckpt-{uuid.uuid4().hex}"
    return str(tmp_path / "checkpoints")


def test_resume_continues_bit_identically(prefix: str) -> None:
    expected = _uninterrupted(10)
    first = SessionManager()
    cfg = config(N, members=2, output_spread=True, checkpoint_url=prefix, checkpoint_every=5)
    session = first.open(cfg, "alice")
    for i in range(7):  # steps 5 and 6 happen after the periodic checkpoint and are lost
        session.step(i, forcing(i, N))
    url = checkpoint.default_url(prefix, session.id)
    session_id = session.id
    del session
    first.shutdown(checkpoint=False)  # "crash": no shutdown checkpoint

    fresh = SessionManager()
    resumed = fresh.resume(url, "alice")
    assert resumed.id == session_id and resumed.next_index == 5
    assert_replies_identical(resumed.step(4, {}), expected[4])  # retry of the last step
    for i in range(5, 10):
        assert_replies_identical(resumed.step(i, forcing(i, N)), expected[i])
    fresh.shutdown(checkpoint=False)


def test_explicit_checkpoint_url_and_prefix(tmp_path: Path) -> None:
    manager = SessionManager()
    session = manager.open(config(N), "alice")
    session.step(0, forcing(0, N))
    target = str(tmp_path / "one" / "exact.ckpt")
    assert session.checkpoint(target) == target
    under = session.checkpoint(f"{tmp_path}/dir/")
    assert under == f"{tmp_path}/dir/{session.id}.ckpt"
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted([f"{session.id}.ckpt", "exact.ckpt"])  # no temporary files left
    with pytest.raises(FailedPrecondition) as err:
        session.checkpoint()  # no URL and none configured
    assert (err.value.field, err.value.rule) == ("checkpoint_url", "configured")
    resumed = manager.resume(target, "bob")
    assert resumed.id != session.id  # the original is still open here
    assert resumed.owner == "bob" and resumed.next_index == 1
    manager.shutdown(checkpoint=False)


def test_periodic_checkpoint_failure_refuses_the_step(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    manager = SessionManager()
    session = manager.open(config(N, checkpoint_url=str(blocker), checkpoint_every=2), "alice")
    session.step(0, forcing(0, N))
    before = snapshot(session)
    with pytest.raises(FailedPrecondition) as err:
        session.step(1, forcing(1, N))
    assert (err.value.field, err.value.rule) == ("checkpoint_url", "writable")
    assert_unchanged(session, before)
    manager.shutdown(checkpoint=False)


def test_shutdown_checkpoints_open_sessions() -> None:
    prefix = f"memory://shutdown-{uuid.uuid4().hex}"
    manager = SessionManager()
    a = manager.open(config(N, checkpoint_url=prefix), "alice")
    b = manager.open(config(N, checkpoint_url=prefix), "bob")
    for i in range(3):
        a.step(i, forcing(i, N))
    b.step(0, forcing(0, N))
    urls = manager.shutdown(checkpoint=True)
    assert sorted(urls) == sorted(checkpoint.default_url(prefix, s.id) for s in (a, b))
    assert {checkpoint.load(u).next_index for u in urls} == {3, 1}


def test_missing_and_corrupt_checkpoints(tmp_path: Path) -> None:
    manager = SessionManager()
    with pytest.raises(NotFound) as missing:
        manager.resume(str(tmp_path / "nothing.ckpt"), "alice")
    assert (missing.value.field, missing.value.rule) == ("resume_from", "exists")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InvalidArgument) as corrupt:
        manager.resume(str(junk), "alice")
    assert (corrupt.value.field, corrupt.value.rule) == ("resume_from", "checkpoint_format")
    assert manager.open_sessions == 0


def _saved(tmp_path: Path) -> checkpoint.CheckpointData:
    manager = SessionManager()
    session = manager.open(config(N), "alice")
    session.step(0, forcing(0, N))
    data = checkpoint.load(session.checkpoint(str(tmp_path / "s.ckpt")))
    manager.shutdown(checkpoint=False)
    return data


def test_backend_identity_must_match(tmp_path: Path) -> None:
    data = _saved(tmp_path)
    data.backend = {**data.backend, "version": "some other build"}
    url = checkpoint.save(f"memory://{uuid.uuid4().hex}.ckpt", data)
    with pytest.raises(FailedPrecondition) as err:
        SessionManager().resume(url, "alice")
    assert (err.value.field, err.value.rule) == ("resume_from", "backend_identity")


def test_state_must_fit_the_backend(tmp_path: Path) -> None:
    data = _saved(tmp_path)
    data.state = {k: v for k, v in data.state.items() if k != "w"}
    url = checkpoint.save(f"memory://{uuid.uuid4().hex}.ckpt", data)
    manager = SessionManager()
    with pytest.raises(InvalidArgument) as err:
        manager.resume(url, "alice")
    assert (err.value.field, err.value.rule) == ("resume_from", "state_shape")
    assert manager.open_sessions == 0


def test_checkpoint_written_by_another_process(tmp_path: Path) -> None:
    """A checkpoint written by a separate Python process resumes here bit-identically."""
    url = str(tmp_path / "other-process.ckpt")
    script = textwrap.dedent(f"""
        from coupler.core.manager import SessionManager
        from tests.coupler.core.conftest import config, forcing
        m = SessionManager()
        s = m.open(config({N}, members=2, output_spread=True), "alice")
        for i in range(5):
            s.step(i, forcing(i, {N}))
        print(s.checkpoint({url!r}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == url
    expected = _uninterrupted(10)
    resumed = SessionManager().resume(url, "alice")
    for i in range(5, 10):
        assert_replies_identical(resumed.step(i, forcing(i, N)), expected[i])
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.exists(path)


def test_checkpoint_without_leaf_nitrogen_resumes(tmp_path: Path) -> None:
    """A checkpoint written before the leaf nitrogen pool existed (no ``nleaf``) resumes: the
    pool is derived from leaf carbon, and the replies continue bit-identically."""
    expected = _uninterrupted(10)
    manager = SessionManager()
    session = manager.open(config(N, members=2, output_spread=True), "alice")
    for i in range(5):
        session.step(i, forcing(i, N))
    data = checkpoint.load(session.checkpoint(str(tmp_path / "s.ckpt")))
    manager.shutdown(checkpoint=False)
    assert "nleaf" in data.state
    data.state = {k: v for k, v in data.state.items() if k != "nleaf"}
    url = checkpoint.save(f"memory://{uuid.uuid4().hex}.ckpt", data)
    resumed = SessionManager().resume(url, "alice")
    state = resumed.state.tensors
    assert torch.equal(state["nleaf"], state["cleaf"] / leaf_cn())
    for i in range(5, 10):
        assert_replies_identical(resumed.step(i, forcing(i, N)), expected[i])
