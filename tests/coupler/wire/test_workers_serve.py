"""``landcoupler serve --workers 2`` as a real process tree: SIGTERM checkpoints the sessions of
every worker and exits 0, and each checkpoint resumes bit-identically; a worker killed with
SIGKILL makes its sessions UNAVAILABLE (rule worker_lost, naming the worker) at once while the
other worker's sessions go on; a front killed with SIGKILL takes its workers with it (no
orphans: they see their stdin close, checkpoint and exit)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.spec import SessionSpec
from coupler.wire import spec_proto

from .conftest import forcing, grid, open_kwargs

LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"


def _gone(pid: int) -> bool:
    """The process has ended (reaped, or a zombie waiting for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _socket(pid: int) -> Path:
    """The Unix socket a worker listens on (from its command line)."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return Path(args[args.index(b"--address") + 1].decode().removeprefix("unix:"))


def _all_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@contextmanager
def serve_workers(tmp: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[int]]]:
    """``landcoupler serve --workers 2`` on a free port: (process, address, worker pids)."""
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0", "--workers", "2",
         *args],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, (tmp / "serve.log").read_text())
        workers = proc.stdout.readline()
        assert workers.startswith("workers "), workers
        pids = [int(p) for p in workers.split()[1:]]
        assert len(pids) == 2
        yield proc, line.split()[-1], pids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for pid in pids:  # never leave a worker behind, whatever failed
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _owner_in_utf8(client: CouplerClient) -> None:
    """A caller named in UTF-8 (``x-landcoupler-client-bin``) owns its session through the
    front; another name is refused."""
    name = (("x-landcoupler-client-bin", "Jürgen Ø".encode()),)
    request = spec_proto.to_request(SessionSpec.of(**open_kwargs()))
    opened = client.stub.OpenSession(request, metadata=name, timeout=60)
    close = pb.CloseSessionRequest(session_id=opened.session_id)
    with pytest.raises(grpc.RpcError) as info:
        client.stub.CloseSession(close, metadata=client.metadata, timeout=60)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    client.stub.CloseSession(close, metadata=name, timeout=60)


def test_sigterm_checkpoints_every_workers_sessions(tmp_path: Path) -> None:
    sizes = (5, 6, 7, 8)
    kws = [open_kwargs(**grid(n), checkpoint_url=str(tmp_path / "ckpt")) for n in sizes]
    with InProcessClient() as local:
        reference = []
        for kw, n in zip(kws, sizes, strict=True):
            with local.open_session(**kw) as s:
                reference.append([s.step(i, forcing(i, n)) for i in range(6)])
    with serve_workers(tmp_path, "--grace", "30") as (proc, address, pids):
        with CouplerClient(address, client_name="ranks", retries=0) as client:
            sessions = [client.open_session(**kw, stream=k % 2 == 0) for k, kw in enumerate(kws)]
            for i in range(3):
                for s, n, ref in zip(sessions, sizes, reference, strict=True):
                    assert s.step(i, forcing(i, n))["hfls"].tobytes() == ref[i]["hfls"].tobytes()
            _owner_in_utf8(client)
            sockets = [_socket(pid) for pid in pids]
            assert sockets[0].parent == sockets[1].parent and sockets[0].is_socket()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
        assert _all_gone(pids, 30.0)
        assert not sockets[0].parent.exists()  # the front removed its socket folder
    urls = sorted(line.split()[1] for line in out.splitlines() if line.startswith("checkpoint "))
    assert urls == sorted(f"{tmp_path / 'ckpt'}/{s.id}.ckpt" for s in sessions)
    with InProcessClient() as local:
        for s, n, ref in zip(sessions, sizes, reference, strict=True):
            with local.open_session(resume_from=f"{tmp_path / 'ckpt'}/{s.id}.ckpt") as r:
                assert r.next_index == 3
                for i in range(3, 6):
                    reply = r.step(i, forcing(i, n))
                    for name in reply:
                        np.testing.assert_array_equal(reply[name], ref[i][name])
                        assert reply[name].tobytes() == ref[i][name].tobytes()


def test_a_dead_worker_is_unavailable_and_a_dead_front_takes_its_workers(tmp_path: Path) -> None:
    with serve_workers(tmp_path, "--grace", "10") as (proc, address, pids):
        with CouplerClient(address, client_name="ranks", retries=2, backoff=0.01) as client:
            sessions = [
                client.open_session(**open_kwargs(checkpoint_url=str(tmp_path)), stream=k < 2)
                for k in range(4)
            ]
            for s in sessions:
                s.step(0, forcing(0))
            sockets = [_socket(pid) for pid in pids]
            os.kill(pids[0], signal.SIGKILL)
            assert _all_gone(pids[:1], 30.0)
            lost, alive = [], []
            for s in sessions:
                try:
                    s.step(1, forcing(1))
                    alive.append(s)
                except CouplerRpcError as err:
                    assert err.code() is grpc.StatusCode.UNAVAILABLE, err
                    assert (err.field, err.rule) == ("session_id", "worker_lost")
                    assert f"worker 0 (pid {pids[0]})" in err.details()
                    assert "killed by SIGKILL" in err.details()
                    assert s.id in err.details()
                    lost.append(s)
            assert len(lost) == len(alive) == 2  # the fewest-sessions worker: 0, 1, 0, 1
            for s in alive:  # the other worker goes on, new sessions go there
                s.step(2, forcing(2))
            fresh = client.open_session(**open_kwargs())
            fresh.step(0, forcing(0))
            assert client.describe()["details"]["workers"] == 1
        proc.kill()  # the front dies without a word: the worker ends by itself
        proc.wait(30)
        assert _all_gone(pids, 60.0), "a worker outlived its front"
        # the surviving worker removed its socket; the killed one could not
        assert not sockets[1].exists() and sockets[0].exists()
        assert "Traceback" not in (tmp_path / "serve.log").read_text()
        shutil.rmtree(sockets[0].parent)
    # it drained as on SIGTERM: its sessions with a checkpoint_url were checkpointed
    for s in alive:
        assert (tmp_path / f"{s.id}.ckpt").is_file()


@pytest.mark.parametrize("flag", ["--workers=0", "--workers=-1"])
def test_bad_worker_counts_are_refused(flag: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0", flag],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "workers: must be an integer >= 1" in run.stderr
