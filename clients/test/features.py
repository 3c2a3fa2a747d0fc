"""Checks of the session options, the stream transport and TLS for ``make test-clients``
(called by run_tests.py after its own checks; same server, plus a mutual-TLS one started here).

- land-cover fractions and a zstd record from C: outputs == Python client with the same
  fractions; forcing heights (30 m / 20 m) from C == Python; ``landcoupler replay`` of the C record is bitwise and its outputs are the C ones;
  bad options (fractions, class, record codec, keepbits on forcing) give Python's code/field/rule;
- the Exchange stream at 16 384 cells: C unary == C stream (split and whole) == C stream through
  a connection cut == Python unary == Python stream; stream refusals == Python's;
- mutual TLS + bearer token with a CA made here by the openssl CLI: C and Fortran (stream,
  fractions, record, checkpoint/resume) == Python over TLS; wrong CA, no token, plaintext to a
  TLS server give Python's status; unreadable PEM files are refused locally (100).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORCING = ["tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds"]
OUTPUTS = ["hfls", "hfss", "ts", "rlus"]
START = "2001-01-01T05:00:00Z"
NT, NC, NK, CELLS_BIG, NT_BIG = 48, 4, 8, 16384, 4
TOKEN = "c-client-token-1"


def make_certs(out: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate, and an
    unrelated CA, all made with the openssl CLI (EC P-256, valid 2 days)."""
    out.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=out, check=True, capture_output=True)

    for ca in ("ca", "wrong-ca"):
        run("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
            "-subj", f"/CN=landcoupler test {ca}")  # fmt: skip
    (out / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (out / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        run("req", *key, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.pem", "-days", "2",
            "-extfile", f"{who}.ext")  # fmt: skip
    return {n: out / n for n in ("ca.pem", "wrong-ca.pem", "server.pem", "server.key",
                                 "client.pem", "client.key")}  # fmt: skip


def write_inputs(work: Path, forcing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cover.bin: (16, 8) Dirichlet fractions (seed 12); big_grid.bin, big_forcing.bin: 16 384
    cells, 4 steps of the station forcing nudged per cell. Returns (cover, big grid, forcing)."""
    cover = np.random.default_rng(12).dirichlet(np.full(NK, 0.5), size=16)
    cover.astype("<f8").tofile(work / "cover.bin")
    i = np.arange(CELLS_BIG)
    grid = np.stack([35.0 + 0.05 * (i // 128), -80.0 + 0.05 * (i % 128)])
    big = np.repeat(forcing[:NT_BIG, :, :1], CELLS_BIG, axis=2)
    big[:, 0, :] += 2.0 * i / CELLS_BIG
    big[:, 5, :] *= 1.0 - 0.2 * i / CELLS_BIG
    grid.astype("<f8").tofile(work / "big_grid.bin")
    big.astype("<f8").tofile(work / "big_forcing.bin")
    return cover, grid, big


def py_run(client: Any, lat, lon, forcing, nt: int, **kwargs: Any) -> np.ndarray:
    transport = {k: kwargs.pop(k) for k in ("stream", "split_bytes") if k in kwargs}
    session = client.open_session(lat=lat, lon=lon, start=START, timestep=3600, outputs=OUTPUTS,
                                  **kwargs, **transport)  # fmt: skip
    out = np.stack([
        np.stack([session.step(t, dict(zip(FORCING, forcing[t], strict=True)))[n]
                  for n in OUTPUTS])
        for t in range(nt)
    ])  # fmt: skip
    session.close()
    return out


def py_error(call: Callable[[], Any]) -> tuple[str, str, str]:
    from coupler.client import CouplerRpcError

    try:
        call()
        return ("0", "", "")
    except CouplerRpcError as err:
        return (str(err.code().value[0]), err.field or "", err.rule or "")


def read_log(path: Path) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in path.read_text().splitlines():
        parts = [*line.split(" "), "", "", ""]
        out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def same(path: Path, want: np.ndarray) -> bool:
    return path.exists() and path.read_bytes() == np.ascontiguousarray(want, "<f8").tobytes()


def run_exe(cmd: list[str], what: str, check: Callable[[bool, str], None]) -> None:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout + r.stderr)
    check(r.returncode == 0, f"{what} exits 0 ({time.perf_counter() - t0:.1f} s)")


def record_checks(url: str, outputs: np.ndarray, who: str, check) -> None:
    import xarray as xr

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-c",
           "import sys; from coupler.cli import main; sys.exit(main(sys.argv[1:]))",
           "replay", url, "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(r.stdout[-600:] + r.stderr[-600:])
    check(r.returncode == 0, f"landcoupler replay of the {who} record ({url}): bitwise, exit 0")
    try:
        ds = xr.open_zarr(url, consolidated=False)
        rec = np.stack([ds[n].transpose("time", "cell").values for n in OUTPUTS], axis=1)
    except Exception as exc:  # reported as a failed check, the other checks go on
        print(f"cannot read {url} with xarray: {exc!r}")
        rec = np.empty(0)
    check(rec.shape == outputs.shape and rec.tobytes() == outputs.tobytes(),
          f"the {who} record's outputs (xarray) == the {who} outputs, {rec.shape}")  # fmt: skip


def run(check, build: Path, work: Path, client, target: str, lat, lon, forcing,
        start_server, proxy_class) -> None:  # fmt: skip
    """All feature checks; `start_server(port, log, extra_args, env)` and `proxy_class` come
    from run_tests.py (the mutual-TLS server is started and stopped here)."""
    from coupler.client import CouplerClient

    cover, big_grid, big = write_inputs(work, forcing)
    run_exe([str(build / "test_wire")], "hand-encoded step requests == protobuf (test_wire)", check)
    exe = str(build / "test_c_features")
    cells = slice(0, NC)

    # 1. land-cover fractions + record options
    run_exe([exe, "cover", target, str(work)], "C options test (fractions, record)", check)
    py_cover = py_run(client, lat[cells], lon[cells], forcing[:, :, cells], NT,
                      land_cover=cover[cells], run_id="py-cover")  # fmt: skip
    check(
        same(work / "c_cover_out.bin", py_cover),
        "C land-cover fractions (4 cells x 8 classes): outputs == Python client, byte for byte",
    )
    check(
        same(work / "c_cover_classmajor_out.bin", py_cover),
        "C fractions given class-major (Fortran order): same outputs",
    )
    py_heights = py_run(
        client,
        lat[cells],
        lon[cells],
        forcing[:, :, cells],
        NT,
        land_cover=cover[cells],
        height_wind=30.0,
        height_temperature=20.0,
    )
    check(
        same(work / "c_heights_out.bin", py_heights),
        "C forcing heights 30 m / 20 m: outputs == Python client, byte for byte",
    )
    check(py_heights.tobytes() != py_cover.tobytes(), "the forcing heights change the outputs")
    py_grass = py_run(client, lat[cells], lon[cells], forcing[:, :, cells], 2)
    check(py_grass.tobytes() != py_cover[:2].tobytes(), "the fractions change the outputs")
    if (work / "c_cover_out.bin").exists():
        record_checks(f"{work}/rec_c.zarr", py_cover, "C", check)
    kw = dict(lat=lat[cells], lon=lon[cells], start=START, timestep=3600, outputs=OUTPUTS)
    bad = cover[cells].copy()
    bad[0, 0] += 0.5
    cases = {
        "cover_sum": dict(land_cover=bad),
        "cover_shape": dict(land_cover=cover[cells, : NK - 1]),
        "cover_class": dict(land_cover="jungle"),
        "record_codec": dict(record_url=f"file://{work}/x.zarr",
                             record_options={"codec": {"id": "lzma"}}),
        "record_keepbits": dict(record_url=f"file://{work}/x.zarr",
                                record_options={"fields": {"tas": {"id": "zstd", "keepbits": 10}}}),
        "height_range": dict(height_wind=0.0),
        "height_backend": dict(backend="torchscript", height_temperature=1.0),
    }  # fmt: skip
    compare_errors(check, "C", work / "c_feat_errors.txt",
                   {k: py_error(lambda v=v: client.open_session(**kw, **v).close())
                    for k, v in cases.items()})  # fmt: skip

    # 2. the Exchange stream at 16 384 cells
    proxy = proxy_class(int(target.rsplit(":", 1)[1]), work / "outage")
    run_exe([exe, "stream", target, str(work), str(CELLS_BIG), str(NT_BIG),
             f"127.0.0.1:{proxy.port}"], "C stream test", check)  # fmt: skip
    proxy.close()
    blat, blon = big_grid
    t0 = time.perf_counter()
    py_unary = py_run(client, blat, blon, big, NT_BIG, run_id="py-big")
    t1 = time.perf_counter()
    py_stream = py_run(client, blat, blon, big, NT_BIG, stream=True, split_bytes=0)
    t2 = time.perf_counter()
    ms = [(b - a) * 1e3 / NT_BIG for a, b in ((t0, t1), (t1, t2))]
    print(
        f"Python client, {NT_BIG} steps of {CELLS_BIG} cells: unary {ms[0]:.1f} ms per step,"
        f" stream (split) {ms[1]:.1f} ms (open/close included)"
    )
    check(py_stream.tobytes() == py_unary.tobytes(), "Python stream == Python unary (16 384 cells)")
    for name, what in (
        ("unary", "C unary"),
        ("stream_split", "C stream, one frame per field"),
        ("stream_whole", "C stream, one frame per step"),
        ("stream_retry", "C stream through a connection cut before step 2"),
    ):
        check(
            same(work / f"c_big_{name}.bin", py_unary),
            f"{what}: {NT_BIG} steps x {CELLS_BIG} cells == Python client, byte for byte",
        )
    compare_errors(
        check, "C stream", work / "c_stream_errors.txt", stream_errors(client, blat, blon, big)
    )

    # 3. mutual TLS + token (server started here)
    if shutil.which("openssl") is None:
        check(False, "the openssl CLI is installed (needed to make the test certificates)")
        return
    certs = make_certs(work / "tls")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = start_server(port, work / "server-tls.log",
                          ["--tls-cert", str(certs["server.pem"]), "--tls-key",
                           str(certs["server.key"]), "--client-ca", str(certs["ca.pem"])],
                          {"LANDCOUPLER_TOKENS": f"ctest:{TOKEN}"})  # fmt: skip
    try:
        tls_target = f"127.0.0.1:{port}"
        pem = [str(certs[n]) for n in ("ca.pem", "client.key", "client.pem", "wrong-ca.pem")]
        run_exe([exe, "tls", tls_target, str(work), *pem[:3], pem[3], TOKEN], "C TLS test", check)
        run_exe([str(build / "test_f_features"), tls_target, str(work), *pem, TOKEN],
                "Fortran options/stream/TLS test", check)  # fmt: skip
        tls = dict(root_certificates=certs["ca.pem"], private_key=certs["client.key"],
                   certificate_chain=certs["client.pem"])  # fmt: skip
        py_tls = CouplerClient(tls_target, token=TOKEN, **tls)
        ref = py_run(py_tls, lat[cells], lon[cells], forcing[:, :, cells], NT,
                     land_cover=cover[cells], stream=True, split_bytes=0)  # fmt: skip
        check(ref.tobytes() == py_cover.tobytes(), "Python over mTLS == Python plaintext")
        check(
            same(work / "c_tls_out.bin", ref),
            "C over mutual TLS + token + stream: outputs == Python client over TLS",
        )
        check(
            same(work / "f_feat_out.bin", ref),
            "Fortran over mutual TLS + token + stream, fractions: outputs == Python over TLS",
        )
        check(
            same(work / "f_feat_resume.bin", ref[24:]),
            "Fortran resume over TLS (step-23 checkpoint): steps 24-47 == Python",
        )
        if (work / "f_feat_out.bin").exists():
            record_checks(f"{work}/rec_f.zarr", ref, "Fortran", check)
        want = {
            "wrong_ca": py_error(lambda: CouplerClient(
                tls_target, token=TOKEN, **{**tls, "root_certificates": certs["wrong-ca.pem"]}
            ).open_session(**kw)),
            "server_name": py_error(lambda: CouplerClient(
                tls_target, token=TOKEN, options=[("grpc.ssl_target_name_override",
                                                   "other.example")], **tls
            ).open_session(**kw)),
            "no_token": py_error(lambda: CouplerClient(tls_target, **tls).open_session(**kw)),
            "plaintext": py_error(
                lambda: CouplerClient(tls_target, token=TOKEN).open_session(**kw)
            ),
            # found by the C library before any call (no Python counterpart)
            "ca_missing": ("100", "tls.root_ca", "readable"),
            "key_alone": ("100", "tls.client_cert", "pair"),
        }  # fmt: skip
        compare_errors(check, "C TLS", work / "c_tls_errors.txt", want)
        f_want = {
            "wrong_ca": want["wrong_ca"],
            "cover_sum": py_error(lambda: py_tls.open_session(**kw, land_cover=bad).close()),
            "height_backend": py_error(
                lambda: py_tls.open_session(**kw, backend="torchscript", height_wind=100.0).close()
            ),
        }
        compare_errors(check, "Fortran TLS", work / "f_feat_errors.txt", f_want)
        py_tls.close()
    finally:
        server.terminate()
        server.wait(30)


def read_or_empty(path: Path) -> dict[str, tuple[str, str, str]]:
    return read_log(path) if path.exists() else {}


def stream_errors(client, lat, lon, big) -> dict[str, tuple[str, str, str]]:
    session = client.open_session(lat=lat, lon=lon, start=START, timestep=3600, outputs=OUTPUTS,
                                  stream=True, split_bytes=0)  # fmt: skip
    ok = dict(zip(FORCING, big[0], strict=True))
    nan = {k: v.copy() for k, v in ok.items()}
    nan["huss"][3] = np.nan
    out = {
        "nan": py_error(lambda: session.step(0, nan)),
        "order": py_error(lambda: session.step(5, ok)),
        "size": py_error(lambda: session.step(0, {k: v[:-1] for k, v in ok.items()})),
        "deadline": py_error(lambda: session.step(0, ok, timeout=1e-6)),
    }
    session.close()
    return out


def compare_errors(check, who: str, log: Path, want: dict[str, tuple[str, str, str]]) -> None:
    got = read_or_empty(log)
    check(set(got) == set(want), f"{who} error log {log.name}: cases {sorted(got)}")
    for case, w in want.items():
        g = got.get(case)
        src = "expected" if w[0] == "100" else "Python"
        check(g == w and w[0] != "0", f"{who} {case}: code/field/rule {g} == {src} {w}")
