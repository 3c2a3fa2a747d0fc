"""`make bench-clients`: per-step time of the C client, the Python client and a bare gRPC echo of
the same bytes, at 16 384 and 311 040 cells, float32 and float64 forcing, one run.

- C client: build/clients/bench_c (lc_step / lc_step_f32), and the Python client
  (coupler.client.CouplerClient), one session each on the same `landcoupler serve` (reference
  backend, 7 forcing fields, outputs hfls, hfss, ts, rlus), the same forcing (station values,
  tas nudged per cell); their last replies are compared byte for byte.
- The C client armed for server restarts (checkpoint_url and checkpoint_every 8: it copies each
  step's request it keeps, docs/clients.md "Where bytes are copied"), against the echo only.
- Transport floor, no model: build/clients/bench_echo (grpc++ client and server: the same
  StepRequest bytes, a canned StepReply of the real reply's size) and clients/bench/py_echo.py
  (grpcio, raw bytes both ways, no protobuf), each its own server process on loopback.

Per-step time = median over the steps after the first (the first opens the channel and fetches
units). Ratios only; nothing here asserts a time. Writes --json and the `clients` section of
--update-doc.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "test"))
sys.path.insert(0, str(ROOT))
import run_tests as rt  # noqa: E402

FORCING = rt.FORCING
OUTPUTS = ["hfls", "hfss", "ts", "rlus"]


def timed(seconds: list[float]) -> list[float]:
    """The steps after a session's first (which opens the channel and fetches units)."""
    return seconds[1:] if len(seconds) > 1 else seconds


def stats(seconds: list[float]) -> dict[str, float]:
    return {"median_ms": 1e3 * statistics.median(seconds), "min_ms": 1e3 * min(seconds)}


def inputs(work: Path, cells: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from emulators import forcing as forcing_mod

    ds = forcing_mod.load("tmy3-greensboro", timestep=3600)
    lat0, lon0 = float(ds.lat.values[0]), float(ds.lon.values[0])
    c = np.arange(cells)
    lat, lon = lat0 + 0.001 * (c // 600), lon0 + 0.001 * (c % 600)
    base = np.stack([np.asarray(ds[n].values[:steps, 0], np.float64) for n in FORCING], axis=1)
    np.concatenate([lat, lon]).astype("<f8").tofile(work / "grid.bin")
    base.astype("<f8").tofile(work / "base.bin")
    return lat, lon, base


def python_client(target: str, lat, lon, base, dtype, steps: int) -> tuple[list[float], np.ndarray]:
    from coupler.client import CouplerClient

    n = lat.size
    nudge = 0.001 * (np.arange(n) % 100).astype(np.float64)  # as bench_c.c
    seconds, last = [], np.empty(0)
    with CouplerClient(target) as client:
        session = client.open_session(lat=lat, lon=lon, start="2001-01-01T05:00:00Z",
                                      timestep=3600, outputs=OUTPUTS, backend="reference",
                                      land_cover="grass", run_id="bench-py", rank=0)  # fmt: skip
        for t in range(steps):
            fields = {
                name: (base[t, v] + nudge if v == 0 else np.full(n, base[t, v])).astype(dtype)
                for v, name in enumerate(FORCING)
            }
            t0 = time.perf_counter()
            reply = session.step(t, fields)
            seconds.append(time.perf_counter() - t0)
            last = np.stack([reply[o] for o in OUTPUTS])
        session.close()
    return seconds, last


def run_json(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({out.returncode}): {out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_c(bench_c: list[str], target: str, steps: int) -> list[float]:
    """bench_c's per-step seconds (``bench_c``: its command with TARGET and STEPS left empty)."""
    cmd = list(bench_c)
    cmd[1], cmd[4] = target, str(steps)
    return list(run_json(cmd)["seconds"])


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"{cmd} did not start: {line!r}")
    return proc, line.split()[-1]


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    echo = [
        "| cells | forcing | MiB in / out | C client | C armed | Python client | grpc++ stub | "
        "grpcio raw bytes | C / grpc++ | C armed / C | Python / grpcio | C / Python |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    model = [
        "| cells | forcing | C client | Python client | C / Python | C / Python (min) "
        "| C == Python |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        e, d = r["echo"], r["model"]
        ms = lambda x: f"{x['median_ms']:.2f} ({x['min_ms']:.2f})"  # noqa: E731
        echo.append(
            f"| {r['cells']:,} | {r['dtype']} | {r['request_bytes'] / 2**20:.1f} / "
            f"{r['reply_bytes'] / 2**20:.1f} | {ms(e['c'])} | {ms(e['c_armed'])} | "
            f"{ms(e['python'])} | {ms(e['grpcpp'])} | {ms(e['grpcio'])} | "
            f"{e['c']['median_ms'] / e['grpcpp']['median_ms']:.2f} | "
            f"{e['c_armed']['median_ms'] / e['c']['median_ms']:.2f} | "
            f"{e['python']['median_ms'] / e['grpcio']['median_ms']:.2f} | "
            f"{e['c']['median_ms'] / e['python']['median_ms']:.2f} |"
        )
        model.append(
            f"| {r['cells']:,} | {r['dtype']} | {d['c']['median_ms']:.0f} ({d['c']['min_ms']:.0f}) "
            f"| {d['python']['median_ms']:.0f} ({d['python']['min_ms']:.0f}) | "
            f"{d['c']['median_ms'] / d['python']['median_ms']:.2f} | "
            f"{d['c']['min_ms'] / d['python']['min_ms']:.2f} | "
            f"{'yes' if r['c_equals_python'] else 'NO'} |"
        )
    return f"""## C client vs Python client vs bare gRPC (`make bench-clients`)

Per-step wall time seen by the caller in ms, median (min in brackets) over the timed steps (a
session's first step, which connects and fetches units, is not timed); 7 forcing fields in, 4
float64 outputs back; loopback; one run, {m["date"]}, {m["cores"]} cores ({m["cpu"]}), load
average {result["loadavg"]:.1f} at the end (a shared machine: the medians move by ±30 % and
more; compare within a row).

**No model** — the client libraries against `bench_echo serve` (grpc++, answers every Step at
once with a StepReply of the real reply's size), beside the bare transport: the grpc++ stub
sending the same StepRequest bytes to that server, and grpcio raw bytes (no protobuf either side)
to a grpcio server answering the same reply bytes ({result["echo_steps"]} steps per run at 16 k
cells). "C armed": the C client on a session opened with a checkpoint_url and checkpoint_every
8, which copies each step's request it keeps for a server restart (the other C columns copy no
forcing; docs/clients.md); its first 7 steps copy into fresh buffers (page faults), later ones
reuse them, so its median depends on how many steps the run has:

{chr(10).join(echo)}

**With the model** — one `landcoupler serve` (reference backend), the C and the Python client
alternating, {result["rounds"]} sessions each ({result["model_steps"]} steps each at 16 k cells,
fewer at 311 k); "C == Python": their last replies are byte-identical:

{chr(10).join(model)}

JSON: `{result["json"]}`.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", type=Path, default=ROOT / "build/clients")
    p.add_argument("--cells", default="16384,311040")
    p.add_argument("--dtypes", default="f32,f64")
    p.add_argument("--steps", type=int, default=11, help="model steps per session at 16 k cells")
    p.add_argument("--echo-steps", type=int, default=40, help="echo steps per run at 16 k cells")
    p.add_argument("--rounds", type=int, default=2, help="sessions per client with the model")
    p.add_argument("--json", type=Path, default=ROOT / "out/bench-clients.json")
    p.add_argument("--update-doc", type=Path)
    args = p.parse_args(argv)
    build = args.build.resolve()
    work = build / "bench-run"
    work.mkdir(parents=True, exist_ok=True)
    port = rt.free_port()
    server = rt.start_server(port, work / "server.log")
    target = f"127.0.0.1:{port}"
    bench_echo = str(build / "bench_echo")
    echo_cpp, echo_target = start([bench_echo, "serve", "0", str(len(OUTPUTS))])
    runs = []
    try:
        for cells in [int(c) for c in args.cells.split(",")]:
            big = cells > 65536
            steps = max(3, args.steps // 3) if big else args.steps
            echo_steps = max(5, args.echo_steps // 4) if big else args.echo_steps
            lat, lon, base = inputs(work, cells, max(steps, echo_steps))
            subprocess.run([bench_echo, "dump", str(work), str(cells), "f64", str(len(OUTPUTS))],
                           check=True)  # fmt: skip
            echo_py, echo_py_target = start([sys.executable, str(HERE / "py_echo.py"), "serve",
                                             str(work / "reply.bin")])  # fmt: skip
            try:
                for dtype in args.dtypes.split(","):
                    np_dtype = np.float32 if dtype == "f32" else np.float64
                    subprocess.run([bench_echo, "dump", str(work), str(cells), dtype,
                                    str(len(OUTPUTS))], check=True)  # fmt: skip
                    bench_c = [str(build / "bench_c"), "", str(cells), dtype, "", str(work)]
                    c_run = functools.partial(run_c, bench_c)
                    e_c = c_run(echo_target, echo_steps)
                    e_armed = run_c([*bench_c, "8"], echo_target, echo_steps)
                    e_py, _ = python_client(echo_target, lat, lon, base, np_dtype, echo_steps)
                    e_cpp = run_json([bench_echo, "client", echo_target, str(cells), dtype,
                                      str(echo_steps)])  # fmt: skip
                    request = str(work / "request.bin")
                    e_raw = run_json([sys.executable, str(HERE / "py_echo.py"), "client",
                                      echo_py_target, request, str(echo_steps)])  # fmt: skip
                    m_c: list[float] = []
                    m_py: list[float] = []
                    for _ in range(args.rounds):
                        m_c += timed(c_run(target, steps))
                        py_s, py_last = python_client(target, lat, lon, base, np_dtype, steps)
                        m_py += timed(py_s)
                    c_last = np.fromfile(work / f"c_last_{dtype}.bin", "<f8")
                    want = py_last.astype(np_dtype).astype(np.float64).reshape(-1)
                    r = {
                        "cells": cells, "dtype": dtype,
                        "request_bytes": e_cpp["request_bytes"],
                        "reply_bytes": e_cpp["reply_bytes"],
                        "echo_steps": echo_steps, "model_steps": steps,
                        "echo": {"c": stats(timed(e_c)), "c_armed": stats(timed(e_armed)),
                                 "python": stats(timed(e_py)),
                                 "grpcpp": stats(timed(e_cpp["seconds"])),
                                 "grpcio": stats(timed(e_raw["seconds"]))},
                        "model": {"c": stats(m_c), "python": stats(m_py)},
                        "c_equals_python": c_last.tobytes() == want.tobytes(),
                        "seconds": {"echo_c": e_c, "echo_c_armed": e_armed, "echo_python": e_py,
                                    "echo_grpcpp": e_cpp["seconds"],
                                    "echo_grpcio": e_raw["seconds"],
                                    "model_c": m_c, "model_python": m_py},
                    }  # fmt: skip
                    runs.append(r)
                    print(json.dumps({k: v for k, v in r.items() if k != "seconds"}), flush=True)
            finally:
                echo_py.kill()
                echo_py.wait()
    finally:
        echo_cpp.kill()
        echo_cpp.wait()
        server.terminate()
        server.wait(60)
    from coupler.bench.doc import machine, update_section, write_json

    result = {"machine": machine(), "loadavg": os.getloadavg()[0], "json": str(args.json),
              "echo_steps": args.echo_steps, "model_steps": args.steps, "rounds": args.rounds,
              "runs": runs}  # fmt: skip
    write_json(args.json, result)
    print(f"wrote {args.json}")
    if args.update_doc:
        update_section(args.update_doc, "clients", markdown(result))
        print(f"updated {args.update_doc}")
    return 0 if all(r["c_equals_python"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
