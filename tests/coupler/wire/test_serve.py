"""``landcoupler serve`` as a real process: SIGTERM after step 20 checkpoints the session, a
fresh process resumes it from the checkpoint URL, and steps 21-48 are bit-identical to an
uninterrupted run. Under Kubernetes conditions (the command line, config and token of the
rendered Deployment): SIGTERM with steps in flight drains them, refuses new calls, checkpoints
to an object-store URL and exits within the grace period; another "pod" resumes every session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.wire.interceptors import SERVICE
from tests.deploy import manifests

from . import gated
from .conftest import forcing, grid, open_kwargs

STEPS, KILL_AFTER = 48, 20
LAUNCH = "import sys; from coupler.cli import main; sys.exit(main())"


@contextmanager
def serve(
    tmp: Path, name: str, *args: str, launch: str = LAUNCH, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``landcoupler serve`` subprocess on a free port; yields (process, "127.0.0.1:PORT")."""
    log = (tmp / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "serve", "--address", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, (tmp / f"{name}.log").read_text())
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()


def test_sigterm_checkpoints_and_a_fresh_process_resumes_bit_identically(tmp_path: Path) -> None:
    kwargs = open_kwargs(checkpoint_url=str(tmp_path / "checkpoints"), run_id="kill-test")
    with InProcessClient() as local, local.open_session(**kwargs) as s:
        uninterrupted = [s.step(i, forcing(i)) for i in range(STEPS)]

    # a long grace period: the idle Exchange stream must not hold the shutdown for it
    with serve(tmp_path, "first", "--grace", "600") as (proc, address):
        with CouplerClient(address, retries=0) as client:
            session = client.open_session(**kwargs, stream=True)
            for i in range(KILL_AFTER):
                reply = session.step(i, forcing(i))
                assert all(reply[k].tobytes() == uninterrupted[i][k].tobytes() for k in reply)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, (tmp_path / "first.log").read_text()
            with pytest.raises(CouplerRpcError) as info:  # the server is gone
                session.step(KILL_AFTER, forcing(KILL_AFTER))
            assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    urls = [
        line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("checkpoint ")
    ]
    assert urls == [f"{tmp_path / 'checkpoints'}/{session.id}.ckpt"]
    assert Path(urls[0]).is_file()

    with serve(tmp_path, "second") as (proc, address):
        with CouplerClient(address, retries=0) as client:
            resumed = client.open_session(resume_from=urls[0])
            assert resumed.next_index == KILL_AFTER
            for i in range(KILL_AFTER, STEPS):
                reply = resumed.step(i, forcing(i))
                assert reply.keys() == uninterrupted[i].keys()
                for k in reply:
                    np.testing.assert_array_equal(reply[k], uninterrupted[i][k])
                    assert reply[k].tobytes() == uninterrupted[i][k].tobytes(), (i, k)
            resumed.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 0


SERVING, NOT_SERVING = (
    health_pb2.HealthCheckResponse.SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING,
)
#: (cells, stream) per session: three MPI ranks of different sizes, two on Exchange streams
RANKS = ((6, True), (7, True), (9, False))
IN_FLIGHT, AFTER = 5, 3  # steps before the one in flight at SIGTERM; steps after the resume
TOKEN = "rank:s3cret-bearer-token"


def kubernetes_args() -> tuple[list[str], float, float]:
    """The cpu overlay's ``serve`` flags (ConfigMap expanded) on loopback, its ``--grace`` and
    the pod's terminationGracePeriodSeconds (when the kubelet would SIGKILL)."""
    args = manifests.serve_args("cpu")
    pod = manifests.resource("cpu", "Deployment", "landcoupler")["spec"]["template"]["spec"]
    local = ("--address=", "--metrics-", "--health-address=")
    kept = [a for a in args[1:] if not a.startswith(local)]
    grace = float(manifests.flag(args, "grace"))
    return (
        [*kept, "--metrics-port=0", "--health-address=127.0.0.1:0"],
        grace,
        float(pod["terminationGracePeriodSeconds"]),
    )


def rank_kwargs(rank: int, bucket: str, backend: str) -> dict[str, object]:
    n = RANKS[rank][0]
    return open_kwargs(**grid(n), checkpoint_url=bucket, run_id=f"rank{rank}", backend=backend)


def rank_forcing(rank: int, index: int) -> dict[str, np.ndarray]:
    return forcing(index, RANKS[rank][0])


def assert_bitwise(reply: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert reply.keys() == expected.keys()
    for k in reply:
        assert (
            reply[k].dtype == expected[k].dtype and reply[k].tobytes() == expected[k].tobytes()
        ), k


def test_sigterm_drains_steps_in_flight_and_another_pod_resumes_bit_identically(
    tmp_path: Path,
) -> None:
    args, grace, kill_after = kubernetes_args()
    bucket = (tmp_path / "bucket").as_uri()  # the object store: a local fsspec directory
    with InProcessClient() as local:
        uninterrupted = []
        for rank in range(len(RANKS)):
            with local.open_session(**rank_kwargs(rank, bucket, "reference")) as s:
                uninterrupted.append(
                    [s.step(i, rank_forcing(rank, i)) for i in range(IN_FLIGHT + 1 + AFTER)]
                )
        (tmp_path / "bucket").mkdir()  # nothing of the in-process run is kept there
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "LANDCOUPLER_TOKENS": TOKEN, gated.GATE_ENV: str(gate)}
    env["PYTHONPATH"] = os.pathsep.join([str(manifests.ROOT), env.get("PYTHONPATH", "")])
    token = TOKEN.split(":", 1)[1]

    with serve(tmp_path, "pod-a", *args, launch=gated.LAUNCH, env=env) as (proc, address):
        client = CouplerClient(address, token=token, retries=0)
        assert proc.stdout is not None
        announced = [proc.stdout.readline().split() for _ in range(2)]
        assert [line[:2] for line in announced] == [["metrics", "on"], ["health", "on"]]
        channel = grpc.insecure_channel(address)  # the service port: a client's view
        probe_channel = grpc.insecure_channel(announced[1][2])  # the kubelet's view
        health = health_pb2_grpc.HealthStub(channel)
        probe = health_pb2_grpc.HealthStub(probe_channel)
        sessions = [
            client.open_session(**rank_kwargs(rank, bucket, gated.NAME), stream=stream)
            for rank, (_, stream) in enumerate(RANKS)
        ]
        for rank, s in enumerate(sessions):
            for i in range(IN_FLIGHT):
                assert_bitwise(s.step(i, rank_forcing(rank, i)), uninterrupted[rank][i])
        for name in ("", SERVICE):
            assert probe.Check(health_pb2.HealthCheckRequest(service=name)).status == SERVING

        (gate / "hold").touch()
        replies: dict[int, dict[str, np.ndarray]] = {}
        errors: list[BaseException] = []

        def step_in_flight(rank: int) -> None:
            try:
                replies[rank] = sessions[rank].step(IN_FLIGHT, rank_forcing(rank, IN_FLIGHT))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=step_in_flight, args=(r,)) for r in range(len(RANKS))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60.0
        while len(list(gate.glob("entered-*"))) < len(RANKS) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(list(gate.glob("entered-*"))) == len(RANKS), errors
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert next(watch).status == SERVING

        sigterm = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING  # readiness fails: no new traffic
        watch.cancel()
        for stub in (probe, health):  # readiness probe and clients alike
            reply = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            assert reply.status == NOT_SERVING
        for call in (
            lambda: client.open_session(**rank_kwargs(0, bucket, gated.NAME)),
            client.describe,
        ):
            with pytest.raises(CouplerRpcError) as info:
                call()
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert (info.value.field, info.value.rule) == ("server", "draining")
        assert not replies and not errors  # the steps are still in flight

        (gate / "hold").unlink()
        for t in threads:
            t.join(kill_after)
        assert not errors, errors
        for rank in range(len(RANKS)):
            assert_bitwise(replies[rank], uninterrupted[rank][IN_FLIGHT])
        out, _ = proc.communicate(timeout=kill_after)
        exited = time.monotonic() - sigterm
        assert proc.returncode == 0, (tmp_path / "pod-a.log").read_text()
        assert exited < grace < kill_after, (exited, grace, kill_after)
        channel.close()
        probe_channel.close()
        client.close()

    urls = sorted(line.split()[1] for line in out.splitlines() if line.startswith("checkpoint "))
    assert urls == sorted(f"{bucket}/{s.id}.ckpt" for s in sessions)

    del env[gated.GATE_ENV]
    with serve(tmp_path, "pod-b", *args, launch=gated.LAUNCH, env=env) as (proc, address):
        with CouplerClient(address, token=token, retries=0) as client:
            for rank, s in enumerate(sessions):
                resumed = client.open_session(
                    resume_from=f"{bucket}/{s.id}.ckpt", stream=RANKS[rank][1]
                )
                assert resumed.next_index == IN_FLIGHT + 1
                for i in range(IN_FLIGHT + 1, IN_FLIGHT + 1 + AFTER):
                    assert_bitwise(resumed.step(i, rank_forcing(rank, i)), uninterrupted[rank][i])
                resumed.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=kill_after)
        assert proc.returncode == 0


def test_serve_refuses_a_bad_configuration(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", "--address", "127.0.0.1:0", "--tls-cert",
         str(tmp_path / "missing.pem")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "tls_cert and tls_key" in done.stderr
