"""``landcoupler serve`` as a real process: SIGTERM after step 20 checkpoints the session, a
fresh process resumes it from the checkpoint URL, and steps 21-48 are bit-identical to an
uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient

from .conftest import forcing, open_kwargs

STEPS, KILL_AFTER = 48, 20
LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"


@contextmanager
def serve(tmp: Path, name: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``landcoupler serve`` subprocess on a free port; yields (process, "127.0.0.1:PORT")."""
    log = (tmp / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, (tmp / f"{name}.log").read_text())
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()


def test_sigterm_checkpoints_and_a_fresh_process_resumes_bit_identically(tmp_path: Path) -> None:
    kwargs = open_kwargs(checkpoint_url=str(tmp_path / "checkpoints"), run_id="kill-test")
    with InProcessClient() as local, local.open_session(**kwargs) as s:
        uninterrupted = [s.step(i, forcing(i)) for i in range(STEPS)]

    # a long grace period: the idle Exchange stream must not hold the shutdown for it
    with serve(tmp_path, "first", "--grace", "600") as (proc, address):
        with CouplerClient(address, retries=0) as client:
            session = client.open_session(**kwargs, stream=True)
            for i in range(KILL_AFTER):
                reply = session.step(i, forcing(i))
                assert all(reply[k].tobytes() == uninterrupted[i][k].tobytes() for k in reply)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, (tmp_path / "first.log").read_text()
            with pytest.raises(CouplerRpcError) as info:  # the server is gone
                session.step(KILL_AFTER, forcing(KILL_AFTER))
            assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    urls = [
        line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("checkpoint ")
    ]
    assert urls == [f"{tmp_path / 'checkpoints'}/{session.id}.ckpt"]
    assert Path(urls[0]).is_file()

    with serve(tmp_path, "second") as (proc, address):
        with CouplerClient(address, retries=0) as client:
            resumed = client.open_session(resume_from=urls[0])
            assert resumed.next_index == KILL_AFTER
            for i in range(KILL_AFTER, STEPS):
                reply = resumed.step(i, forcing(i))
                assert reply.keys() == uninterrupted[i].keys()
                for k in reply:
                    np.testing.assert_array_equal(reply[k], uninterrupted[i][k])
                    assert reply[k].tobytes() == uninterrupted[i][k].tobytes(), (i, k)
            resumed.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 0


def test_serve_refuses_a_bad_configuration(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0", "--tls-cert",
         str(tmp_path / "missing.pem")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "tls_cert and tls_key" in done.stderr
