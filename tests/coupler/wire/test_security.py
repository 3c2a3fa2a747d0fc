"""TLS, mutual TLS and bearer tokens, with real certificates made in the test (openssl CLI), and
session ownership between authenticated principals."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError
from coupler.wire.server import ServerConfig, start_service

from .conftest import forcing, open_kwargs

Code = grpc.StatusCode
OPENSSL = shutil.which("openssl")


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None, "the openssl CLI is needed to make test certificates"
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def _leaf(d: Path, name: str, cn: str, ext: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-sha256", "-extfile",
             f"{name}.ext", cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1, two client certificates, and a
    client certificate from a different, untrusted CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=landcoupler test CA", cwd=d)  # fmt: skip
    _leaf(d, "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
          "extendedKeyUsage=serverAuth\n")  # fmt: skip
    for who in ("alice", "bob"):
        _leaf(d, who, who, "extendedKeyUsage=clientAuth\n")
    rogue = d / "rogue"
    rogue.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=rogue CA", cwd=rogue)  # fmt: skip
    _leaf(rogue, "mallory", "alice", "extendedKeyUsage=clientAuth\n")
    return d


def _step_once(client: CouplerClient) -> None:
    with client.open_session(**open_kwargs()) as s:
        reply = s.step(0, forcing(0))
        assert np.isfinite(reply["hfls"]).all()


def test_tls(pki: Path) -> None:
    svc = start_service("127.0.0.1:0", ServerConfig(tls_cert=pki / "server.pem",
                                                    tls_key=pki / "server.key"))  # fmt: skip
    try:
        with CouplerClient(f"127.0.0.1:{svc.port}", root_certificates=pki / "ca.pem") as c:
            _step_once(c)
        # a plaintext client cannot talk to a TLS server
        with CouplerClient(f"127.0.0.1:{svc.port}", timeout=5, retries=0) as c:
            with pytest.raises(CouplerRpcError) as info:
                c.describe()
            assert info.value.code() is Code.UNAVAILABLE
        # nor a client that does not trust the server's CA
        with CouplerClient(f"127.0.0.1:{svc.port}", root_certificates=pki / "rogue" / "ca.pem",
                           timeout=5, retries=0) as c:  # fmt: skip
            with pytest.raises(CouplerRpcError) as info:
                c.describe()
            assert info.value.code() is Code.UNAVAILABLE
    finally:
        svc.server.stop(None)


def test_a_tls_server_answers_plaintext_health_probes_on_its_health_address(pki: Path) -> None:
    """Kubernetes gRPC probes cannot speak TLS: --health-address serves grpc.health.v1 alone,
    in plaintext, and follows the server's state (NOT_SERVING while it drains, then closed)."""
    config = ServerConfig(tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                          health_address="127.0.0.1:0")  # fmt: skip
    svc = start_service("127.0.0.1:0", config)
    assert svc.health_port is not None and svc.health_port != svc.port
    request = health_pb2.HealthCheckRequest(service="landcoupler.v1.LandCoupler")
    with grpc.insecure_channel(f"127.0.0.1:{svc.health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:  # the health port serves nothing else
            channel.unary_unary("/landcoupler.v1.LandCoupler/Describe")(b"", timeout=10)
        assert info.value.code() is Code.UNIMPLEMENTED
        svc.health.enter_graceful_shutdown()  # what Service.stop does first
        reply = health.Check(request, timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        svc.stop(grace=1.0, checkpoint=False)
        with pytest.raises(grpc.RpcError) as info:
            health.Check(request, timeout=5)
        assert info.value.code() is Code.UNAVAILABLE
    with pytest.raises(ValueError, match="health_address: cannot bind"):
        start_service("127.0.0.1:0", ServerConfig(health_address="256.0.0.1:1"))


@pytest.fixture(scope="module")
def mtls(pki: Path) -> Iterator[int]:
    config = ServerConfig(tls_cert=pki / "server.pem", tls_key=pki / "server.key",
                          client_ca=pki / "ca.pem")  # fmt: skip
    svc = start_service("127.0.0.1:0", config)
    yield svc.port
    svc.server.stop(None)


def _mtls_client(pki: Path, port: int, who: str, **kw: object) -> CouplerClient:
    return CouplerClient(f"127.0.0.1:{port}", root_certificates=pki / "ca.pem",
                         private_key=pki / f"{who}.key", certificate_chain=pki / f"{who}.pem",
                         **kw)  # type: ignore[arg-type]  # fmt: skip


def test_mtls_accepts_trusted_clients_and_owns_by_subject(pki: Path, mtls: int) -> None:
    with _mtls_client(pki, mtls, "alice") as alice, _mtls_client(pki, mtls, "bob") as bob:
        _step_once(alice)
        s = alice.open_session(**open_kwargs())
        s.step(0, forcing(0))
        with pytest.raises(CouplerRpcError) as info:
            bob.call(bob.stub.Step, pb.StepRequest(session_id=s.id, index=1))
        assert info.value.code() is Code.PERMISSION_DENIED
        # the x-landcoupler-client header does not override the certificate subject
        with _mtls_client(pki, mtls, "bob", client_name="cn:alice") as fake:
            with pytest.raises(CouplerRpcError) as info:
                fake.call(fake.stub.CloseSession, pb.CloseSessionRequest(session_id=s.id))
            assert info.value.code() is Code.PERMISSION_DENIED
        s.close()


def test_mtls_refuses_clients_without_a_trusted_certificate(pki: Path, mtls: int) -> None:
    with CouplerClient(f"127.0.0.1:{mtls}", root_certificates=pki / "ca.pem", timeout=5,
                       retries=0) as c:  # fmt: skip
        with pytest.raises(CouplerRpcError) as info:
            c.describe()
        assert info.value.code() is Code.UNAVAILABLE
    rogue = pki / "rogue"
    with CouplerClient(f"127.0.0.1:{mtls}", root_certificates=pki / "ca.pem",
                       private_key=rogue / "mallory.key", certificate_chain=rogue / "mallory.pem",
                       timeout=5, retries=0) as c:  # fmt: skip
        with pytest.raises(CouplerRpcError) as info:
            c.describe()
        assert info.value.code() is Code.UNAVAILABLE


def test_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# name:token\nalice:s3cret-alice-token\n")
    monkeypatch.setenv("TEST_LANDCOUPLER_TOKENS", "bob:s3cret-bob-token, carol:s3cret-carol")
    config = ServerConfig(token_file=token_file, token_env="TEST_LANDCOUPLER_TOKENS")
    assert set(config.tokens) == {"alice", "bob", "carol"}
    svc = start_service("127.0.0.1:0", config)
    target = f"127.0.0.1:{svc.port}"
    try:
        for token in (None, "wrong-token", "s3cret-alice-token-and-more"):
            with CouplerClient(target, token=token, retries=0) as c:
                for call in (c.describe, lambda c=c: c.open_session(**open_kwargs())):
                    with pytest.raises(CouplerRpcError) as info:
                        call()
                    assert info.value.code() is Code.UNAUTHENTICATED
                    assert info.value.field == "authorization"
        with CouplerClient(target, retries=0) as c:  # not "Bearer"
            with pytest.raises(grpc.RpcError) as rpc:
                c.stub.Describe(pb.DescribeRequest(), metadata=(("authorization", "Basic x"),))
            assert rpc.value.code() is Code.UNAUTHENTICATED
        # a missing token fails the stream too, before any frame is read
        with CouplerClient(target, retries=0) as c:
            with pytest.raises(grpc.RpcError) as rpc:
                list(c.stub.Exchange(iter([pb.ExchangeRequest()]), timeout=10))
            assert rpc.value.code() is Code.UNAUTHENTICATED
        with (
            CouplerClient(target, token="s3cret-alice-token") as alice,
            CouplerClient(target, token="s3cret-bob-token", client_name="alice") as bob,
        ):
            _step_once(alice)
            s = alice.open_session(**open_kwargs(stream=True))
            s.step(0, forcing(0))
            with pytest.raises(CouplerRpcError) as info:  # the owner is the token's name
                bob.call(bob.stub.Step, pb.StepRequest(session_id=s.id, index=1))
            assert info.value.code() is Code.PERMISSION_DENIED
            s.step(1, forcing(1))
            s.close()
        # health stays open for probes
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                              timeout=10)  # fmt: skip
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        svc.server.stop(None)


def test_token_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    for text, message in [
        ("alice", "expected name:token"),
        ("alice:x\nalice:y", "duplicate token name"),
        ("alice:x bob:x", "not unique"),
        (":x", "expected name:token"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            ServerConfig(token_file=bad)
    with pytest.raises(ValueError, match="no such file"):
        ServerConfig(token_file=tmp_path / "missing")
    with pytest.raises(ValueError, match="give both or neither"):
        ServerConfig(tls_cert=bad)
    with pytest.raises(ValueError, match="mutual TLS needs"):
        ServerConfig(client_ca=bad)
