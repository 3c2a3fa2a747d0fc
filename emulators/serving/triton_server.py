"""Start and stop the Triton Inference Server that nvidia-pytriton bundles (Triton 2.51, python
backend only), serving a model repository on loopback: what the Triton tests and ``landcoupler
bench triton`` run against. Needs the Triton virtual environment (``make triton-venv``:
nvidia-pytriton 0.7.0, numpy < 2, torch), kept apart from the main one (pytriton pins numpy < 2).

Two things make it run here (see ../shared/PLATFORM.md): the python-backend stub for this
Python (3.11) is copied into ``backends/python``, and ``LD_LIBRARY_PATH`` starts with the Python
installation's library directory, so the stub loads the matching libpython. The stub ignores
``PYTHONPATH``; ``LANDCOUPLER_TRITON_SITE_PACKAGES`` tells ``model.py`` where torch is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

#: the Triton virtual environment ``make triton-venv`` builds (relative to the repository root)
DEFAULT_VENV = Path(__file__).resolve().parents[2] / "build" / "triton-venv"
VENV_ENV = "LANDCOUPLER_TRITON_VENV"


class TritonUnavailable(RuntimeError):
    """The Triton virtual environment is missing or its server does not start."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def venv_path() -> Path:
    """``$LANDCOUPLER_TRITON_VENV``, else ``build/triton-venv`` of this checkout."""
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def _python_info(venv: Path) -> tuple[str, str, str]:
    """(version "3.11", library directory, site-packages) of the venv's Python."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise TritonUnavailable(
            f"no Triton virtual environment at {venv}: run `make triton-venv` (or set {VENV_ENV})"
        )
    code = (
        "import sys,sysconfig;print(f'{sys.version_info[0]}.{sys.version_info[1]}');"
        "print(sysconfig.get_config_var('LIBDIR'));print(sysconfig.get_paths()['purelib'])"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    version, libdir, site = out.stdout.split("\n")[:3]
    return version, libdir, site


class TritonServer:
    """``with TritonServer(repo) as server: server.url`` — the bundled tritonserver on
    ``host``:``port`` (0: a free port; gRPC only, HTTP and metrics off), stopped (SIGTERM, then
    SIGKILL) on exit. Its log goes to ``log`` (default: ``repo``/../tritonserver.log)."""

    def __init__(
        self,
        repo: str | Path,
        venv: str | Path | None = None,
        host: str = "127.0.0.1",
        log: str | Path | None = None,
        port: int = 0,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.venv = Path(venv) if venv is not None else venv_path()
        self.host = host
        self.log = Path(log) if log is not None else self.repo.parent / "tritonserver.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.requested_port = port
        self.port = port

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        version, libdir, site = _python_info(self.venv)
        dist = Path(site) / "pytriton" / "tritonserver"
        server = dist / "bin" / "tritonserver"
        if not server.exists():
            raise TritonUnavailable(f"{server} is missing: reinstall with `make triton-venv`")
        stub = dist / "backends" / "python" / "triton_python_backend_stub"
        if not stub.exists():
            shutil.copy(dist / "python_backend_stubs" / version / stub.name, stub)
        self.port = self.requested_port or _free_port(self.host)
        cmd = [
            str(server),
            f"--model-repository={self.repo}",
            f"--backend-directory={dist / 'backends'}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.port}",
            "--allow-http=false",
            "--allow-metrics=false",
            "--exit-timeout-secs=5",
            "--strict-readiness=true",
        ]
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p
        )
        # the embedded interpreter finds its prefix through PATH: the venv's python3 first
        env["PATH"] = os.pathsep.join([str(self.venv.resolve() / "bin"), env.get("PATH", "")])
        env["LANDCOUPLER_TRITON_SITE_PACKAGES"] = site
        return cmd, env

    def start(self, timeout: float = 120.0) -> str:
        """Start the server and wait until it and every model are ready; returns the URL."""
        import tritonclient.grpc as grpcclient

        cmd, env = self.command()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        client = grpcclient.InferenceServerClient(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise TritonUnavailable(
                        f"tritonserver exited with {self.process.returncode}: {self._tail()}"
                    )
                try:
                    if client.is_server_ready():
                        return self.url
                except Exception:
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        self.stop()
        raise TritonUnavailable(f"tritonserver not ready after {timeout:g} s: {self._tail()}")

    def _tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m emulators.serving.triton_server REPO [--port N]``: serve REPO until SIGTERM or
    Ctrl-C, printing ``triton listening on HOST:PORT``."""
    import argparse
    import signal
    import threading

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("repo", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with TritonServer(args.repo, host=args.host, log=args.log, port=args.port) as server:
        print(f"triton listening on {server.url} (log: {server.log})", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
