"""Where a batched server's CPU goes per step: ``python -m coupler.bench.load_probe``.

A probe, not a section of ``make bench-load``: it starts ``landcoupler serve`` (batched,
``--torch-threads 1``) with thread-CPU accumulators wrapped around the step's pieces — the
gRPC handler in its pool thread, the servicer, the session's transaction, the batcher, the
leader's joined backend step, validation, the forcing tensors, the reply statistics — drives
it with ``coupler.bench.load.drive`` (S sessions × N steps from T threads, unary or stream),
and prints each piece's CPU per step (``time.thread_time`` of the thread running it, so a
wait costs nothing; nested pieces include what they call) beside the whole process's CPU per
step from ``/proc``. A wrapper costs ≈ 1 µs per call, about 20 calls per step.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: (module, attribute path, label) of each timed piece
PIECES: tuple[tuple[str, str, str], ...] = (
    ("grpc._server", "_unary_response_in_pool", "gRPC unary call in its pool thread"),
    ("grpc._server", "_process_event_and_continue", "gRPC serving thread: events"),
    ("grpc._server", "_handle_call", "gRPC serving thread: new call, interceptors"),
    ("coupler.wire.reader", "parse", "request parse (reader)"),
    ("coupler.wire.servicer", "LandCouplerServicer.Step", "servicer Step (unary)"),
    ("coupler.core.session", "Session.step", "session step (transaction)"),
    ("coupler.core.validation", "validate_forcing", "validation"),
    ("coupler.core.landstep", "forcing_tensors", "forcing tensors"),
    ("coupler.core.batching", "StepBatcher.step_means", "batcher (all of it)"),
    ("coupler.core.batching", "StepBatcher.step", "batcher (all of it)"),  # trees before step_means
    ("coupler.core.batching", "batch_key", "batch key"),
    ("coupler.core.batching", "_Batch.run", "joined backend step (leader)"),
    ("coupler.core.landstep", "reply_fields", "reply statistics"),
    ("coupler.core.landstep", "energy_residual", "energy residual"),
    ("coupler.core.landstep", "water_residual", "water residual"),
)
LAUNCH = "import sys; from coupler.bench.load_probe import serve_main; serve_main(sys.argv[1:])"


def _install(acc: dict[str, list[float]], lock: threading.Lock) -> None:
    for module, path, label in PIECES:
        owner: Any = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        original = getattr(owner, name, None)
        if original is None:  # not in this version of the code
            continue

        def timed(*args: Any, _f: Any = original, _label: str = label, **kw: Any) -> Any:
            c0 = time.thread_time()
            try:
                return _f(*args, **kw)
            finally:
                spent = time.thread_time() - c0
                with lock:
                    entry = acc.setdefault(_label, [0.0, 0.0])
                    entry[0] += spent
                    entry[1] += 1

        setattr(owner, name, functools.wraps(original)(timed))


def serve_main(argv: list[str]) -> None:
    """``landcoupler serve ARGV`` with the accumulators; SIGUSR2 zeroes them, SIGUSR1 writes
    them (seconds, calls) to ``$LANDCOUPLER_PROBE_OUT``."""
    acc: dict[str, list[float]] = {}
    lock = threading.Lock()
    _install(acc, lock)

    def reset(*_: Any) -> None:
        with lock:
            acc.clear()

    def dump(*_: Any) -> None:
        with lock:
            Path(os.environ["LANDCOUPLER_PROBE_OUT"]).write_text(json.dumps(acc))

    signal.signal(signal.SIGUSR2, reset)
    signal.signal(signal.SIGUSR1, dump)
    from coupler.cli import main

    sys.exit(main(["serve", *argv]))


def probe(
    sessions: int, steps: int, threads: int, window_ms: float, stream: bool
) -> dict[str, Any]:
    """One probed run: per piece, CPU ms per step; the process's CPU, rate and batch size."""
    import torch

    from coupler.bench import load, load_server

    torch.set_num_threads(1)
    banks = [load.bank(s, 64) for s in range(sessions)]
    workers = sessions + threads if stream else max(16, threads)
    args = ["--address", "127.0.0.1:0", "--metrics-port", "0", "--batch-window-ms",
            str(window_ms), "--torch-threads", "1", "--max-sessions", str(sessions),
            "--max-workers", str(workers)]  # fmt: skip
    root = str(Path(load.__file__).resolve().parents[2])
    with tempfile.TemporaryDirectory(prefix="load-probe-") as tmp:
        out = Path(tmp) / "pieces.json"
        env = {**os.environ, "LANDCOUPLER_PROBE_OUT": str(out), "PYTHONPATH": root}
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env, cwd=root,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            address = proc.stdout.readline().split()[-1]
            metrics = proc.stdout.readline().split()[-1]
            server = load_server.Server(proc, address, f"http://{metrics}/metrics")
            proc.send_signal(signal.SIGUSR2)
            time.sleep(0.2)
            cpu0, load0 = server.cpu_seconds(), os.getloadavg()[0]
            res = load.drive(address, sessions, steps, 64, threads, stream, banks)
            cpu = server.cpu_seconds() - cpu0
            proc.send_signal(signal.SIGUSR1)
            for _ in range(100):
                if out.exists():
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            pieces = json.loads(out.read_text())
            m = server.metrics()
        finally:
            proc.terminate()
            proc.wait(60)
    n = max(1, res["steps_done"])
    batches = m.get("landcoupler_batch_sessions_count", 0.0)
    return {
        "sessions": sessions, "steps": steps, "threads": threads, "window_ms": window_ms,
        "transport": "stream" if stream else "unary", "errors": res["errors"][:3],
        "steps_per_s": n / res["wall_s"], "server_cpu_ms_per_step": 1e3 * cpu / n,
        "client_cpu_ms_per_step": 1e3 * res["client_cpu_s"] / n,
        "mean_batch": m.get("landcoupler_batch_sessions_sum", 0.0) / batches if batches else None,
        "load_average": [load0, os.getloadavg()[0]],
        "pieces_ms_per_step": {k: 1e3 * v[0] / n for k, v in pieces.items()},
        "pieces_calls": {k: v[1] for k, v in pieces.items()},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coupler.bench.load_probe", description=__doc__)
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--window-ms", type=float, default=2.0)
    p.add_argument("--stream", action="store_true", help="the Exchange stream, not unary Step")
    p.add_argument("--json", help="write the result here too")
    a = p.parse_args(argv)
    r = probe(a.sessions, a.steps, a.threads, a.window_ms, a.stream)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2) + "\n")
    print(f"{r['transport']}: {r['steps_per_s']:.1f} steps/s, server CPU "
          f"{r['server_cpu_ms_per_step']:.3f} ms/step, client CPU "
          f"{r['client_cpu_ms_per_step']:.3f} ms/step, mean batch {r['mean_batch']}, "
          f"load {r['load_average'][0]:.1f} -> {r['load_average'][1]:.1f}")  # fmt: skip
    for label, ms in sorted(r["pieces_ms_per_step"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:45s} {ms:7.3f} ms/step ({r['pieces_calls'][label]:.0f} calls)")
    return 0 if not r["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
