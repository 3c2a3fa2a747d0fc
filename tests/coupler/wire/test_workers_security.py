"""Mutual TLS through a front with two workers: the front terminates TLS, owns sessions by the
certificate subject and forwards it as the owner, so a client cannot claim another owner with
its own ``x-landcoupler-client`` header; the plaintext health port follows the front."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError
from coupler.wire.front import start_front
from coupler.wire.server import ServerConfig

from .conftest import forcing, open_kwargs
from .test_security import _mtls_client, pki  # noqa: F401  (the fixture)

Code = grpc.StatusCode


def test_mtls_owners_through_the_front(pki: Path) -> None:  # noqa: F811
    config = ServerConfig(tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                          client_ca=pki / "ca.pem", health_address="127.0.0.1:0", workers=2,
                          max_workers=8, grace_period=5.0)  # fmt: skip
    front = start_front("127.0.0.1:0", config)
    try:
        port = front.port
        with _mtls_client(pki, port, "alice", retries=0) as alice, \
                _mtls_client(pki, port, "bob", retries=0) as bob:  # fmt: skip
            sessions = [alice.open_session(**open_kwargs()) for _ in range(2)]
            assert {front.router.worker_of(s.id).index for s in sessions} == {0, 1}  # type: ignore[union-attr]
            for s in sessions:
                s.step(0, forcing(0))
                with pytest.raises(CouplerRpcError) as info:
                    bob.call(bob.stub.Step, pb.StepRequest(session_id=s.id, index=1))
                assert (info.value.code(), info.value.rule) == (Code.PERMISSION_DENIED, "owner")
                with _mtls_client(pki, port, "bob", client_name="cn:alice", retries=0) as fake:
                    with pytest.raises(CouplerRpcError) as info:
                        fake.call(fake.stub.CloseSession, pb.CloseSessionRequest(session_id=s.id))
                    assert info.value.code() is Code.PERMISSION_DENIED
                s.step(1, forcing(1))  # alice's session is untouched
                s.close()
        with CouplerClient(f"127.0.0.1:{port}", timeout=5, retries=0) as plain:
            with pytest.raises(CouplerRpcError) as info:
                plain.describe()
            assert info.value.code() is Code.UNAVAILABLE
        request = health_pb2.HealthCheckRequest(service="landcoupler.v1.LandCoupler")
        assert front.health_port is not None
        with grpc.insecure_channel(f"127.0.0.1:{front.health_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert (
                health.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING
            )
            front.health.enter_graceful_shutdown()  # what Front.stop does first
            status = health.Check(request, timeout=10).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        front.stop(5.0)
    assert all(w.proc.returncode is not None for w in front.pool.workers)
