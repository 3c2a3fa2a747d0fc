"""`make test-clients`: the C and Fortran clients against a local `landcoupler serve`, compared
with the Python client (coupler.client.CouplerClient) on the same sessions.

1. writes grid.bin (lat, lon of 16 cells) and forcing.bin ((48, 7, 16) float64, C order) from
   the real station forcing emulators.forcing.load("tmy3-greensboro", timestep=3600);
2. starts `landcoupler serve` on a free 127.0.0.1 port;
3. runs build/clients/test_c and `mpirun -np 4 build/clients/fortran_mpi_example`;
4. steps the same sessions with the Python client and compares the outputs byte for byte, and
   sends the same bad inputs, comparing status code, field and rule.

Standalone (not collected by pytest); exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FORCING = ["tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds"]
OUTPUTS = ["hfls", "hfss", "ts", "rlus"]
START = "2001-01-01T05:00:00Z"
NT, NCALL, NC, RANKS = 48, 16, 4, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_inputs(out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from emulators import forcing as forcing_mod

    ds = forcing_mod.load("tmy3-greensboro", timestep=3600)
    lat0, lon0 = float(ds.lat.values[0]), float(ds.lon.values[0])
    # 16 cells around the station (0.5 deg apart), each with the station's forcing, nudged per
    # cell so that the cells differ (tas +0.1 K per cell, rsds x (1 - 0.01 per cell))
    lat = lat0 + 0.5 * (np.arange(NCALL) // 4)
    lon = lon0 + 0.5 * (np.arange(NCALL) % 4)
    forcing = np.empty((NT, len(FORCING), NCALL))
    for v, name in enumerate(FORCING):
        series = np.asarray(ds[name].values[:NT, 0], dtype=np.float64)
        forcing[:, v, :] = series[:, None]
    forcing[:, 0, :] += 0.1 * np.arange(NCALL)
    forcing[:, 5, :] *= 1.0 - 0.01 * np.arange(NCALL)
    np.concatenate([lat, lon]).astype("<f8").tofile(out / "grid.bin")
    forcing.astype("<f8").tofile(out / "forcing.bin")
    return lat, lon, forcing


#: Environment variable: every server these tests start runs ``--workers N`` (the clients
#: against a front and N worker processes); set by ``--workers``, read by every module's copy
WORKERS_ENV = "LANDCOUPLER_CLIENT_TEST_WORKERS"


def start_server(
    port: int, log: Path, extra: list[str] | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    workers = os.environ.get(WORKERS_ENV, "1")
    flags = ["--workers", workers] if workers != "1" else []
    cmd = [sys.executable, "-c",
           "import sys; from coupler.cli import main; sys.exit(main(sys.argv[1:]))",
           "serve", "--address", f"127.0.0.1:{port}", *flags, *(extra or [])]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}); see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start in 120 s")


class FlakyProxy:
    """TCP proxy 127.0.0.1:<port> -> target. When ``trigger`` (a file) appears it is removed,
    every live connection is cut and new ones are refused (accepted and closed) for ``seconds``:
    the client sees UNAVAILABLE and must resend."""

    def __init__(self, target_port: int, trigger: Path, seconds: float = 0.3) -> None:
        self.target_port, self.trigger, self.seconds = target_port, trigger, seconds
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[socket.socket] = []
        self.refuse_until = 0.0
        self.outages = 0
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self.stop:
            if self.trigger.exists():
                self.trigger.unlink()
                self.refuse_until = time.time() + self.seconds
                self.outages += 1
                for c in list(self.conns):
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    c.close()
                self.conns.clear()
            time.sleep(0.01)

    def _accept(self) -> None:
        while not self.stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.time() < self.refuse_until:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.stop = True
        self.listener.close()


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def __call__(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL  {what}")


def python_run(client, lat, lon, forcing, cells, run_id, rank, dtype=np.float64, steps=range(NT)):
    session = client.open_session(lat=lat[cells], lon=lon[cells], start=START, timestep=3600,
                                  outputs=OUTPUTS, backend="reference", land_cover="grass",
                                  run_id=run_id, rank=rank)  # fmt: skip
    out = np.empty((NT, len(OUTPUTS), len(cells)))
    for t in steps:
        reply = session.step(
            t, {n: forcing[t, v, cells].astype(dtype) for v, n in enumerate(FORCING)}
        )
        out[t] = np.stack([reply[n] for n in OUTPUTS])
    session.close()
    return out


def python_error(client, lat, lon, forcing, case: str):
    from coupler.client import CouplerRpcError

    cells = slice(0, NC)
    if case.startswith("open_"):
        bad = {"timestep": 7000} if case == "open_timestep" else {"outputs": ["hfls", "nope"]}
        kwargs = dict(lat=lat[cells], lon=lon[cells], start=START, timestep=3600, outputs=OUTPUTS)
        try:
            client.open_session(**{**kwargs, **bad}).close()
            return ("0", "", "")
        except CouplerRpcError as err:
            return (str(err.code().value[0]), err.field or "", err.rule or "")
    session = client.open_session(lat=lat[cells], lon=lon[cells], start=START, timestep=3600,
                                  outputs=OUTPUTS, backend="reference", land_cover="grass",
                                  run_id="py-errors", rank=0)  # fmt: skip
    fields = {n: forcing[0, v, cells].copy() for v, n in enumerate(FORCING)}
    index = 0
    if case == "nan":
        fields["tas"][0] = np.nan
    elif case == "unknown":
        fields["foo"] = fields["tas"].copy()
    elif case == "order":
        index = 5
    elif case == "size":
        fields = {n: a[: NC - 1] for n, a in fields.items()}
    try:
        session.step(index, fields)
        result = ("0", "", "")
    except CouplerRpcError as err:
        result = (str(err.code().value[0]), err.field or "", err.rule or "")
    session.close()
    return result


def read_errors(path: Path) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        parts += [""] * (4 - len(parts))
        out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", type=Path, default=ROOT / "build/clients")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve every test server with --workers N (a front + N workers)",
    )
    args = p.parse_args(argv)
    os.environ[WORKERS_ENV] = str(args.workers)
    build = args.build.resolve()
    work = build / "test-run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "ckpt").mkdir(parents=True)
    sys.path.insert(0, str(ROOT))
    lat, lon, forcing = write_inputs(work)
    port = free_port()
    server = start_server(port, work / "server.log")
    target = f"127.0.0.1:{port}"
    check = Checks()
    try:
        from coupler.client import CouplerClient

        print(f"server on {target}; inputs in {work}")
        proxy = FlakyProxy(port, work / "outage")
        t0 = time.perf_counter()
        c = subprocess.run(
            [str(build / "test_c"), target, str(work), f"127.0.0.1:{proxy.port}"],
            capture_output=True,
            text=True,
        )
        proxy.close()
        c_time = time.perf_counter() - t0
        print(c.stdout + c.stderr)
        check(c.returncode == 0, f"C test exits 0 ({c_time:.1f} s)")

        mpirun = shutil.which("mpirun")
        t0 = time.perf_counter()
        mpi = [mpirun or "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(RANKS)]
        example = [str(build / "fortran_mpi_example"), target, str(work)]
        f = subprocess.run(mpi + example, capture_output=True, text=True)
        f_time = time.perf_counter() - t0
        print(f.stdout + f.stderr)
        check(f.returncode == 0, f"Fortran MPI example exits 0 ({RANKS} ranks, {f_time:.1f} s)")

        client = CouplerClient(target)
        first = np.arange(NC)
        py = python_run(client, lat, lon, forcing, first, "c-test", 0)
        shape = (NT, len(OUTPUTS), NC)
        if (work / "c_out.bin").exists():
            got = np.fromfile(work / "c_out.bin", "<f8")
            check(
                got.size == py.size and got.tobytes() == py.tobytes(),
                "C float64 outputs == Python client, byte for byte (48 steps, 4 outputs, 4 cells)",
            )
        if (work / "c_retry_out.bin").exists():
            got = np.fromfile(work / "c_retry_out.bin", "<f8")
            check(
                proxy.outages == 1 and got.tobytes() == py.tobytes(),
                f"C run through a connection cut before step 24 ({proxy.outages} outage): "
                "resent with backoff, outputs == Python client",
            )
        if (work / "c_resume_out.bin").exists():
            got = np.fromfile(work / "c_resume_out.bin", "<f8").reshape(NT - 24, len(OUTPUTS), NC)
            check(
                got.tobytes() == py[24:].tobytes(),
                "C resume from the step-23 checkpoint == uninterrupted Python run, steps 24-47",
            )
        if (work / "c_out_f32.bin").exists():
            t0 = time.perf_counter()
            py32 = python_run(client, lat, lon, forcing, first, "c-f32", 0, dtype=np.float32)
            ms = (time.perf_counter() - t0) * 1e3 / NT
            print(f"Python client, same float32 run: {ms:.2f} ms per step (open/close included)")
            got = np.fromfile(work / "c_out_f32.bin", "<f4").reshape(shape)
            check(
                got.tobytes() == py32.astype(np.float32).tobytes(),
                "C float32 forcing: outputs == Python client sending float32 (as float32)",
            )
        for rank in range(RANKS):
            path = work / f"f_out_rank{rank}.bin"
            cells = np.arange(rank * NC, rank * NC + NC)
            pyr = python_run(client, lat, lon, forcing, cells, "fortran-mpi", rank)
            ok = (
                path.exists()
                and path.read_bytes()
                == np.ascontiguousarray(pyr.transpose(0, 1, 2)).astype("<f8").tobytes()
            )
            check(ok, f"Fortran rank {rank} outputs == Python client, byte for byte")
            path = work / f"f_resume_rank{rank}.bin"
            check(
                path.exists() and path.read_bytes() == pyr[24:].astype("<f8").tobytes(),
                f"Fortran rank {rank} resumed from its step-23 checkpoint: steps 24-47 == Python",
            )
            path = work / f"f_f32_rank{rank}.bin"
            py32 = python_run(client, lat, lon, forcing, cells, "fortran-f32", rank, np.float32)
            check(
                path.exists() and path.read_bytes() == py32.astype("<f4").tobytes(),
                f"Fortran rank {rank} float32 outputs == Python client sending float32",
            )

        for name, log in (("C", "c_errors.txt"), ("Fortran", "f_errors.txt")):
            if not (work / log).exists():
                check(False, f"{name} error log {log} written")
                continue
            for case, got in read_errors(work / log).items():
                want = python_error(client, lat, lon, forcing, case)
                check(
                    got == want and got[0] != "0",
                    f"{name} bad input {case}: code/field/rule {got} == Python {want}",
                )
        # session options, stream transport, TLS (clients/test/features.py)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import features

        features.run(check, build, work, client, target, lat, lon, forcing, start_server,
                     FlakyProxy)  # fmt: skip
        client.close()
        # the Fortran example's surface energy balance; the C client across a server kill and
        # restart (its own server on a fixed port): clients/test/{energy,restart}_checks.py
        import energy_checks
        import restart_checks

        energy_checks.run(work, forcing, RANKS, check)
        restart_checks.run(build, work, lat, lon, forcing, check)
        restart_checks.run(build, work, lat, lon, forcing, check, stream=True)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"\n{check.passed} passed, {len(check.failed)} failed")
    for what in check.failed:
        print(f"FAILED: {what}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
