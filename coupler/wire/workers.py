"""The worker processes of a multi-process server (``landcoupler serve --workers N``).

Each worker is an ordinary ``landcoupler serve`` subprocess — the single-process server, its
session manager, batching, checkpoints and drain unchanged — listening on a Unix-domain socket
in a private directory (mode 0700: only this user can reach a worker, which trusts the
front's ``x-landcoupler-client`` as the caller). Workers run without TLS or tokens (the front
authenticates), in their own process group (a terminal's Ctrl-C reaches the front only, which
fans the shutdown out), and with ``--exit-with-stdin``: the front holds their stdin, so if the
front dies for any reason (even SIGKILL) their stdin closes and they drain, checkpoint and exit
by themselves — no orphans.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

import coupler

log = logging.getLogger(__name__)

LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"


class Worker:
    """One worker subprocess and the channel the front forwards its calls on."""

    def __init__(self, index: int, address: str, proc: subprocess.Popen[str]) -> None:
        self.index = index
        self.address = address
        self.proc = proc
        self.channel: grpc.Channel | None = None
        self.metrics_port: int | None = None
        self.checkpoints: list[str] = []
        self._ready = threading.Event()
        self._lines: list[str] = []
        self._reader = threading.Thread(
            target=self._read, name=f"worker-{index}-stdout", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            self._lines.append(line)
            if line.startswith("listening on "):
                self._ready.set()
            elif line.startswith("metrics on "):
                self.metrics_port = int(line.rsplit(":", 1)[1])
            elif line.startswith("checkpoint "):
                self.checkpoints.append(line.split(maxsplit=1)[1])
        self._ready.set()  # the process ended: wait_ready looks at it

    def wait_ready(self, timeout: float, max_message_bytes: int) -> None:
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            code = self.proc.poll()
            raise RuntimeError(
                f"worker {self.index} did not start within {timeout:.0f} s"
                + ("" if code is None else f" (exit code {code})")
            )
        self.channel = grpc.insecure_channel(
            self.address,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_description(self, wait: float = 0.0) -> str | None:
        """How the process ended (None while it runs; waits up to ``wait`` s for it to end)."""
        try:
            code = self.proc.wait(wait) if wait > 0 else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"


class WorkerPool:
    """``n`` worker processes: started together, stopped together."""

    def __init__(
        self, n: int, serve_args: Sequence[str], max_message_bytes: int, start_timeout: float
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="landcoupler-workers-"))  # mode 0700
        self.workers: list[Worker] = []
        # the workers run the front's own code (a source tree, or whatever is installed)
        root = str(Path(coupler.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
        try:
            for i in range(n):
                address = f"unix:{self._dir / f'w{i}.sock'}"
                proc = subprocess.Popen(
                    [sys.executable, "-c", LAUNCH, "serve", "--address", address,
                     "--exit-with-stdin", *serve_args],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                    start_new_session=True,
                )  # fmt: skip
                self.workers.append(Worker(i, address, proc))
            for worker in self.workers:
                worker.wait_ready(start_timeout, max_message_bytes)
        except BaseException:
            self.kill()
            raise
        log.info("%d workers ready: pids %s", n, ", ".join(str(w.proc.pid) for w in self.workers))

    def stop(self, timeout: float) -> list[str]:
        """SIGTERM every worker (each drains and checkpoints its sessions as a single server
        does), wait up to ``timeout`` s, kill what is left. Returns the checkpoint URLs written,
        in worker order."""
        for worker in self.workers:
            if worker.alive:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop within %.3g s: killed", worker.index, timeout)
                worker.proc.kill()
                worker.proc.wait()
        urls = []
        for worker in self.workers:
            worker._reader.join(5.0)
            urls.extend(worker.checkpoints)
        self._close()
        return urls

    def kill(self) -> None:
        """Kill every worker now (no checkpoints)."""
        for worker in self.workers:
            if worker.alive:
                worker.proc.kill()
            worker.proc.wait()
        self._close()

    def _close(self) -> None:
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.close()
            for stream in (worker.proc.stdin, worker.proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        shutil.rmtree(self._dir, ignore_errors=True)
