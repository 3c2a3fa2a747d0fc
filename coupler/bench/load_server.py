"""The server side of ``make bench-load``: a ``landcoupler serve`` process (its own GIL) on a
free loopback port — with ``--workers N``, a front process and its N worker processes, all
counted — its resident memory and CPU time from ``/proc``, and its Prometheus counters (steps,
retries, batches, phase times) scraped from its exporter (the front's: the workers' merged)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import coupler

LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


@dataclass
class Server:
    proc: subprocess.Popen[str]
    address: str
    metrics_url: str
    workers: tuple[int, ...] = ()  # worker pids (``--workers N``)

    @property
    def pids(self) -> tuple[int, ...]:
        """The server's processes: the front (or the only one) first."""
        return (self.proc.pid, *self.workers)

    def rss_mib(self) -> float:
        """Resident set size now (MiB, all the server's processes)."""
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids) / 1024.0

    def peak_rss_mib(self) -> float:
        """Peak resident set size so far (MiB; the sum of each process's peak)."""
        return sum(_status_kib(pid, "VmHWM") for pid in self.pids) / 1024.0

    def cpu_seconds(self, front_only: bool = False) -> float:
        """User + system CPU time of the server's processes (all threads) so far."""
        pids = self.pids[:1] if front_only else self.pids
        return sum(_stat_cpu(Path(f"/proc/{pid}/stat")) for pid in pids)

    def system_seconds(self) -> float:
        """System (kernel) CPU time of the server's processes so far."""
        total = 0.0
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[12]) / os.sysconf("SC_CLK_TCK")
        return total

    def context_switches(self) -> int:
        """Voluntary context switches of all the server's threads so far (a thread that
        blocks, e.g. on the GIL, switches voluntarily)."""
        return sum(_switches(pid) for pid in self.pids)

    def metrics(self) -> dict[str, float]:
        """The exporter's samples, ``name{labels}`` -> value."""
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m and not line.startswith("#"):
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out


def _switches(pid: int) -> int:
    """Voluntary context switches of all of ``pid``'s threads so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds of a process from its ``/proc/PID/stat``."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise KeyError(key)  # pragma: no cover


@contextmanager
def serve(args: Sequence[str], log: Path) -> Iterator[Server]:
    """``landcoupler serve --address 127.0.0.1:0 --metrics-port 0 ARGS`` of this source tree in
    a subprocess; stopped with SIGTERM (then killed) on exit."""
    root = str(Path(coupler.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0",
             "--metrics-port", "0", *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=root,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            second = proc.stdout.readline()
            if not first.startswith("listening on ") or not second.startswith("metrics on "):
                raise RuntimeError(f"serve did not start: {first!r} {second!r}: {log.read_text()}")
            metrics = second.split()[-1]
            workers: tuple[int, ...] = ()
            if any(a.startswith("--workers") for a in args):
                third = proc.stdout.readline()
                if not third.startswith("workers "):
                    raise RuntimeError(f"serve did not list its workers: {third!r}")
                workers = tuple(int(pid) for pid in third.split()[1:])
            yield Server(proc, first.split()[-1], f"http://{metrics}/metrics", workers)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    proc.kill()
                    proc.wait(30)


ECHO = "import sys; from coupler.bench.load_server import echo_main; echo_main(int(sys.argv[1]))"


def echo_main(reply_bytes: int) -> None:
    """A raw-bytes unary echo server (no protobuf, no model) answering ``reply_bytes`` bytes;
    prints ``listening on 127.0.0.1:PORT`` and serves until killed."""
    from coupler.bench.echo import echo_server

    reply = bytes(reply_bytes)
    server, port = echo_server(lambda _request: reply, workers=16)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


def step_sizes(cells: int, outputs: tuple[str, ...]) -> tuple[int, int]:
    """Serialized bytes of a step request (the 7 required float64 forcing fields) and of its
    reply (``outputs``, float64) for ``cells`` cells."""
    import numpy as np

    from coupler.wire import phases
    from emulators.variables import REQUIRED_FORCING

    values = np.zeros(cells)
    request, reply_bytes = phases.sizes(
        {name: values for name in REQUIRED_FORCING}, {name: values for name in outputs}
    )
    return len(request), reply_bytes


def echo_floor(
    threads: int, calls: int, cells: int, outputs: tuple[str, ...], logs: Path
) -> dict[str, float]:
    """Calls per second of ``threads`` threads of this process, each making ``calls`` unary
    calls of a step's request size to the echo server process answering a step's reply size:
    what Python gRPC alone allows on this machine (the floor of a step's per-call cost)."""
    import threading
    import time

    import grpc

    from coupler.bench.echo import METHOD

    request_bytes, reply_bytes = step_sizes(cells, outputs)
    root = str(Path(coupler.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with (logs / "echo.log").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", ECHO, str(reply_bytes)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=root,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            address = proc.stdout.readline().split()[-1]
            channels = [grpc.insecure_channel(address) for _ in range(threads)]
            stubs = [ch.unary_unary(METHOD) for ch in channels]
            payload = bytes(request_bytes)
            for stub in stubs:
                stub(payload, timeout=60)
            start = threading.Barrier(threads + 1)

            def work(t: int) -> None:
                start.wait()
                for _ in range(calls):
                    stubs[t](payload, timeout=60)

            pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            for th in pool:
                th.start()
            stat = Path(f"/proc/{proc.pid}/stat")
            start.wait()
            t0, cpu0 = time.perf_counter(), _stat_cpu(stat)
            for th in pool:
                th.join()
            wall, cpu = time.perf_counter() - t0, _stat_cpu(stat) - cpu0
            for ch in channels:
                ch.close()
        finally:
            proc.kill()
            proc.wait(30)
    return {"calls_per_s": threads * calls / wall, "request_bytes": request_bytes,
            "server_cpu_ms_per_call": 1e3 * cpu / (threads * calls),
            "reply_bytes": reply_bytes, "threads": threads, "calls": threads * calls}  # fmt: skip
