"""The C client across a server kill and restart (part of `make test-clients`, called by
run_tests.py; also standalone: ``restart_checks.py --build build/clients``).

`landcoupler serve` runs on one fixed loopback port; build/clients/test_restart steps four
sessions (checkpoint_url under the work directory, checkpoint_every 1, 5, 5, 100) to step 23 and
asks for the kill; the server gets SIGKILL (no shutdown checkpoint: only what it wrote
periodically survives), a new `landcoupler serve` is started on the same port while the client
is already resending, and the sessions go on to step 47; then a fifth session has step 24 in
flight (sent into the server frozen with SIGSTOP) when the server is killed and restarted again.
run_tests.py runs it twice: unary steps, then (``stream=True``, ``test_restart ... stream``)
every session on the Exchange stream (two of them split into one frame per field).
Checked: the server really died of SIGKILL (twice), every session was rebuilt exactly once,
the reply at the resent index equals the one received before the kill, and all 48 replies
equal an uninterrupted Python-client run byte for byte. Semantics: docs/clients.md, "Server
restarts".
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_tests as rt


def run(build: Path, work: Path, lat: np.ndarray, lon: np.ndarray, forcing: np.ndarray,
        check: Any, stream: bool = False) -> None:  # fmt: skip
    rdir = work / ("restart-stream" if stream else "restart")
    how = "stream" if stream else "unary"
    shutil.rmtree(rdir, ignore_errors=True)
    (rdir / "ckpt").mkdir(parents=True)
    port = rt.free_port()
    servers = [rt.start_server(port, rdir / "server-1.log")]
    target = f"127.0.0.1:{port}"
    kill_seen = threading.Event()
    done = threading.Event()

    def killer() -> None:
        # "kill": SIGKILL between steps; "stop": SIGSTOP (the next step goes into a frozen
        # server), "stopped", then SIGKILL 0.5 s later with that step in flight. Each time a
        # new server on the same port.
        events = ["kill", "stop"]
        while events and not done.is_set():
            if (rdir / events[0]).exists():
                proc = servers[-1]
                if events[0] == "stop":
                    proc.send_signal(signal.SIGSTOP)
                    (rdir / "stopped").touch()
                    time.sleep(0.5)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                if events[0] == "kill":
                    (rdir / "killed").touch()
                kill_seen.set()
                time.sleep(0.2)  # the client's first resends meet a closed port
                servers.append(rt.start_server(port, rdir / f"server-{len(servers) + 1}.log"))
                events.pop(0)
            time.sleep(0.01)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    try:
        print(f"restart test: server on {target} (pid {servers[0].pid}), work in {rdir}")
        t0 = time.perf_counter()
        c = subprocess.run([str(build / "test_restart"), target, str(work)] + ["stream"] * stream,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
        print(c.stdout + c.stderr)
        done.set()
        watcher.join(180)
        check(
            c.returncode == 0, f"C restart test ({how}) exits 0 ({time.perf_counter() - t0:.1f} s)"
        )
        codes = [proc.returncode for proc in servers[:-1]]
        check(
            kill_seen.is_set() and codes == [-signal.SIGKILL] * 2 and len(servers) == 3,
            f"server killed with SIGKILL mid-run twice (exits {codes}) and restarted on the "
            f"same port {port} each time ({how})",
        )
        from coupler.client import CouplerClient

        with CouplerClient(target) as client:
            py = rt.python_run(client, lat, lon, forcing, np.arange(rt.NC), "c-restart-py", 0)
        for k, what in enumerate(
            [
                "checkpoint_every 1, index 23 resent: the stored reply from the checkpoint",
                "checkpoint_every 5, index 24 sent: resumed at 20, steps 20-23 resent",
                "checkpoint_every 5, index 23 resent: resumed at 20, 20-22 resent, 23 redone",
                "checkpoint_every 100, index 24 sent: re-opened, steps 0-23 resent",
                "checkpoint_every 1, index 24 in flight when killed: resent, resumed at 24",
            ]
        ):
            path = rdir / f"r_out_{'ABCDE'[k]}.bin"
            check(
                path.exists() and path.read_bytes() == py.astype("<f8").tobytes(),
                f"C ({how}) across SIGKILL + restart, {what}; 48 steps == uninterrupted Python run",
            )
    finally:
        done.set()
        for proc in servers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", type=Path, default=rt.ROOT / "build/clients")
    p.add_argument("--stream", action="store_true", help="only the stream run")
    args = p.parse_args(argv)
    build = args.build.resolve()
    work = build / "test-restart"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sys.path.insert(0, str(rt.ROOT))
    lat, lon, forcing = rt.write_inputs(work)
    check = rt.Checks()
    if not args.stream:
        run(build, work, lat, lon, forcing, check)
    run(build, work, lat, lon, forcing, check, stream=True)
    print(f"\n{check.passed} passed, {len(check.failed)} failed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
