"""``make bench-load``: many ranks at once against one ``landcoupler serve`` process.

S sessions × N hourly steps × 64 cells (reference backend, 7 float64 forcing fields in, 8
outputs back) driven by T client threads of this process (one channel each, the Python client,
unary ``Step`` or the ``Exchange`` stream) against a server in its own process. Every reply is
hashed and compared with an in-process run of the same session (``InProcessClient``, no
batching); lost or doubled steps are checked on both sides (each thread steps its sessions in
order, then resends the last index, which only a session at exactly N accepts; the server's
``landcoupler_steps_total`` must be S × N and its retries 0). Server configurations, one run:

- ``today``: ``landcoupler serve`` as it was (no batch window, torch's default threads);
- ``unbatched``: the same with ``--torch-threads 1``;
- ``batched``: ``--batch-window-ms W --torch-threads 1``;
- ``workers``: the same with ``--workers N`` (a front process forwarding to N worker
  processes; the server's CPU, memory and context switches are those of all N + 1).

Plus the floor: a raw-bytes gRPC echo server process with the same threads and message sizes,
and the per-step costs measured in-process (session step, backend alone and joined). The first
two configurations may run fewer steps per session (``today_steps``, ``unbatched_steps``).
"""

from __future__ import annotations

import hashlib
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coupler.bench import load_server
from coupler.client import CouplerClient, InProcessClient
from coupler.core.manager import SessionManager

OUTPUTS = ("hfls", "hfss", "hfdsl", "ts", "albedo", "rsus", "rlus", "evspsbl")
START = "2001-06-01T00:00:00"
COVERS = ("grass", "cropland", "deciduous_forest_woodland", "shrubland")
Bank = list[dict[str, np.ndarray]]


def bank(session: int, cells: int) -> Bank:
    """24 hourly forcings of one session (distinct per session; step k uses hour k mod 24)."""
    rng = np.random.default_rng(1000 + session)
    phase, amp = rng.uniform(-2, 2, cells), rng.uniform(400, 900, cells)
    base_t, base_q = rng.uniform(283, 300, cells), rng.uniform(0.004, 0.012, cells)
    out = []
    for hour in range(24):
        sun = np.clip(np.sin(np.pi * (hour + phase - 6.0) / 12.0), 0.0, None)
        out.append({
            "tas": base_t + 6.0 * np.sin(np.pi * (hour + phase - 9.0) / 12.0),
            "huss": base_q, "ps": rng.uniform(95_000, 102_000, cells),
            "sfcWind": rng.uniform(0.5, 8.0, cells), "pr": (hour % 7 == 3) * 2e-5 * sun,
            "rsds": amp * sun, "rlds": rng.uniform(280, 380, cells),
        })  # fmt: skip
    return out


def open_kwargs(session: int, cells: int) -> dict[str, Any]:
    rng = np.random.default_rng(session)
    return {
        "lat": rng.uniform(-50, 65, cells), "lon": rng.uniform(-180, 180, cells),
        "start": START, "timestep": 3600, "outputs": list(OUTPUTS), "backend": "reference",
        "land_cover": COVERS[session % len(COVERS)],
    }  # fmt: skip


def digest(reply: Mapping[str, np.ndarray]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(reply):
        h.update(name.encode())
        h.update(np.ascontiguousarray(reply[name]).tobytes())
    return h.digest()


def reference(sessions: int, steps: int, cells: int, banks: list[Bank]) -> np.ndarray:
    """Digests (session, step) of the sessions stepped alone in-process (no gRPC, no batch)."""
    client = InProcessClient(SessionManager())
    out = np.zeros((sessions, steps, 16), np.uint8)
    for s in range(sessions):
        sess = client.open_session(**open_kwargs(s, cells))
        for k in range(steps):
            out[s, k] = np.frombuffer(digest(sess.step(k, banks[s][k % 24])), np.uint8)
        sess.close()
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drive(
    address: str, sessions: int, steps: int, cells: int, threads: int, stream: bool,
    banks: list[Bank],
) -> dict[str, Any]:  # fmt: skip
    """Open the sessions, step them all from ``threads`` threads (thread t owns sessions t,
    t + T, ...; each step of a thread goes through its sessions in turn), resend each last
    index, close. Wall time and this process's CPU time cover the stepping only."""
    clients = [CouplerClient(address, client_name="load", retries=0, timeout=600.0)
               for _ in range(threads)]  # fmt: skip
    owned = [list(range(t, sessions, threads)) for t in range(threads)]
    remote = {s: clients[t].open_session(**open_kwargs(s, cells), stream=stream)
              for t in range(threads) for s in owned[t]}  # fmt: skip
    digests = np.zeros((sessions, steps, 16), np.uint8)
    done = np.zeros(sessions, np.int64)
    errors: list[str] = []
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        start.wait()
        try:
            for k in range(steps):
                for s in owned[t]:
                    reply = remote[s].step(k, banks[s][k % 24])
                    digests[s, k] = np.frombuffer(digest(reply), np.uint8)
                    done[s] = k + 1
        except Exception as exc:  # counted, reported
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    start.wait()
    t0, c0 = time.perf_counter(), _cpu()
    for th in pool:
        th.join()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    resend_ok = resends = 0
    for s, sess in remote.items():
        if done[s] == steps:
            resends += 1
            again = digest(sess.step(steps - 1, banks[s][(steps - 1) % 24]))
            resend_ok += again == digests[s, steps - 1].tobytes()
        sess.close()
    for c in clients:
        c.close()
    return {"wall_s": wall, "client_cpu_s": cpu, "steps_done": int(done.sum()), "errors": errors,
            "resend_ok": resend_ok, "resends": resends, "digests": digests}  # fmt: skip


def run_server(
    name: str, args: list[str], sessions: int, steps: int, cells: int, threads: int,
    stream: bool, banks: list[Bank], want: np.ndarray, logs: Path,
) -> dict[str, Any]:  # fmt: skip
    """One server configuration: start it, drive it, check and measure."""
    workers = sessions + threads if stream else max(16, threads)
    full = [*args, "--max-sessions", str(sessions), "--max-workers", str(workers)]
    with load_server.serve(full, logs / f"load-{name}.log") as server:
        rss_start = server.rss_mib()
        cpu0, sys0, ctx0 = server.cpu_seconds(), server.system_seconds(), server.context_switches()
        front0 = server.cpu_seconds(front_only=True)
        res = drive(server.address, sessions, steps, cells, threads, stream, banks)
        cpu = server.cpu_seconds() - cpu0
        front = server.cpu_seconds(front_only=True) - front0
        sys_s, ctx = server.system_seconds() - sys0, server.context_switches() - ctx0
        rss_end, peak = server.rss_mib(), server.peak_rss_mib()
        m = server.metrics()
    got = res.pop("digests")
    mismatched = int((got != want[:, :steps]).any(axis=2).sum())
    total = sessions * steps
    phases = {
        p: 1e3 * m.get(f'landcoupler_step_phase_seconds_sum{{phase="{p}"}}', 0.0)
        / max(1.0, m.get(f'landcoupler_step_phase_seconds_count{{phase="{p}"}}', 0.0))
        for p in ("decode", "validate", "land", "encode")
    }  # fmt: skip
    batches = m.get("landcoupler_batch_sessions_count", 0.0)
    return {
        "name": name, "args": full, "sessions": sessions, "steps": steps, "total_steps": total,
        **res, "errors": len(res["errors"]), "error_messages": res["errors"][:5],
        "steps_per_s": res["steps_done"] / res["wall_s"], "mismatched_replies": mismatched,
        "server_steps": m.get("landcoupler_steps_total", 0.0),
        # retries other than the final resends (each answered from the stored reply)
        "server_retries": m.get("landcoupler_step_retries_total", 0.0) - res["resends"],
        "server_cpu_s": cpu, "server_cpu_ms_per_step": 1e3 * cpu / max(1, res["steps_done"]),
        "processes": len(server.pids),
        "front_cpu_ms_per_step": (1e3 * front / max(1, res["steps_done"])
                                  if server.workers else None),
        "server_sys_ms_per_step": 1e3 * sys_s / max(1, res["steps_done"]),
        "server_switches_per_step": ctx / max(1, res["steps_done"]),
        "client_cpu_ms_per_step": 1e3 * res["client_cpu_s"] / max(1, res["steps_done"]),
        "rss_start_mib": rss_start, "rss_end_mib": rss_end, "rss_peak_mib": peak,
        "phase_ms": phases,
        "mean_batch_sessions": (m.get("landcoupler_batch_sessions_sum", 0.0) / batches
                                if batches else None),
    }  # fmt: skip


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def step_costs(cells: int, join: int, banks: list[Bank], repeat: int = 50) -> dict[str, float]:
    """Per-step costs in-process, 1 torch thread: the whole session step (validation, backend,
    reply statistics, residuals), the backend step alone, and the backend step of ``join``
    domains joined (per session, ``coupler.core.batching``)."""
    from coupler.client.common import spec_from_arguments
    from coupler.core import landstep, registry
    from coupler.core.batching import joined_step
    from emulators.landstep import CheckedForcing

    manager = SessionManager()
    sessions = [manager.open(spec_from_arguments(None, open_kwargs(s, cells)), "bench")
                for s in range(join)]  # fmt: skip
    k = iter(range(10**9))
    session_ms = _median_ms(lambda: sessions[0].step(next(k), banks[0][0]), repeat)
    clock = landstep.clock_for(sessions[0].config, 12)
    domains = [
        (s.state, s.static, CheckedForcing(landstep.forcing_tensors(banks[i][12], 1)))
        for i, s in enumerate(sessions)
    ]
    backend = registry.create("reference")
    state, static, f = domains[0]
    backend_ms = _median_ms(lambda: backend.step(state, static, f, clock), repeat)
    joined_ms = _median_ms(lambda: joined_step(backend, domains, clock), max(5, repeat // 5))
    manager.shutdown(checkpoint=False)
    return {"session_step_ms": session_ms, "backend_ms": backend_ms,
            "joined_backend_ms_per_session": joined_ms / join, "joined_sessions": join}  # fmt: skip


def run(
    sessions: int = 100, steps: int = 1000, cells: int = 64, threads: int = 16,
    window_ms: float = 2.0, today_steps: int = 20, unbatched_steps: int = 100,
    stream: bool = False, echo_calls: int = 200, workers: int = 2,
) -> dict[str, Any]:  # fmt: skip
    """See the module docstring."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        banks = [bank(s, cells) for s in range(sessions)]
        t0 = time.perf_counter()
        most = max(steps, today_steps, unbatched_steps)
        want = reference(sessions, most, cells, banks)
        reference_s = time.perf_counter() - t0
        costs = step_costs(cells, threads, banks)
        tmp = tempfile.TemporaryDirectory(prefix="bench-load-")
        logs = Path(tmp.name)  # the servers' stderr (quoted when one fails to start)
        one = ["--torch-threads", "1"]
        plan = [
            ("today", ["--batch-window-ms", "0"], today_steps),
            ("unbatched", ["--batch-window-ms", "0", *one], unbatched_steps),
            ("batched", ["--batch-window-ms", str(window_ms), *one], steps),
        ]
        if workers > 1:
            plan.append(("workers", ["--batch-window-ms", str(window_ms), *one,
                                     "--workers", str(workers)], steps))  # fmt: skip
        runs = [
            run_server(name, args, sessions, n, cells, threads, stream, banks, want, logs)
            for name, args, n in plan
            if n > 0
        ]
        echo = load_server.echo_floor(threads, echo_calls, cells, OUTPUTS, logs)
        tmp.cleanup()
    finally:
        torch.set_num_threads(previous)
    by = {r["name"]: r for r in runs}
    ratios = {
        f"batched/{base}": by["batched"]["steps_per_s"] / by[base]["steps_per_s"]
        for base in ("today", "unbatched") if base in by and "batched" in by
    }  # fmt: skip
    if "workers" in by and "batched" in by:
        ratios["workers/batched"] = by["workers"]["steps_per_s"] / by["batched"]["steps_per_s"]
    return {
        "benchmark": "load", "sessions": sessions, "cells": cells, "threads": threads,
        "window_ms": window_ms, "transport": "stream" if stream else "unary", "workers": workers,
        "runs": runs, "ratios": ratios, "step_costs": costs, "echo": echo,
        "reference_s": reference_s, "issue_baseline_steps_per_s": 42.0,
    }  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    from coupler.bench.load_doc import markdown as md

    return md(payload)
