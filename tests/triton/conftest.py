"""A real Triton Inference Server for the whole module: the server nvidia-pytriton bundles
(build/triton-venv, ``make triton-venv``), serving the repository ``landcoupler emulators export
--triton`` writes, on a free loopback port. A missing venv fails (these tests run only under
``make test-triton``, which builds it first); it is never a skip."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.serving.triton_server import TritonServer, TritonUnavailable, venv_path


@pytest.fixture(scope="session")
def triton_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("triton") / "repo"
    code = "from coupler.cli import main; raise SystemExit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "emulators", "export", "--triton", str(repo)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return repo


@pytest.fixture(scope="session", autouse=True)
def triton_url(triton_repo: Path) -> Iterator[str]:
    """The server's gRPC URL; also ``$LANDCOUPLER_TRITON_URL`` for the backends built without
    one (the contract suite's ``make_backend``) and the ``landcoupler serve`` subprocess."""
    server = TritonServer(triton_repo, log=triton_repo.parent / "tritonserver.log")
    try:
        url = server.start(timeout=180.0)
    except TritonUnavailable as exc:
        pytest.fail(f"Triton server unavailable ({venv_path()}): {exc}", pytrace=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("LANDCOUPLER_TRITON_URL", url)
    try:
        yield url
    finally:
        mp.undo()
        server.stop()
