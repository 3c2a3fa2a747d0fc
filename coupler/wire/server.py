"""The gRPC server: configuration, construction and graceful shutdown.

``create_server(address, config) -> (server, port)`` builds a *started* server (port 0 binds a
free port, which is returned) with the LandCoupler servicer, the interceptors (request ids and
the status mapping, bearer-token auth), gRPC health (``grpc.health.v1``) and reflection (so
``grpcurl -plaintext HOST:PORT list`` works), TLS or mutual TLS, and max message sizes in both
directions. :func:`start_service` returns the same pieces plus the session manager, metrics and
health servicer, for ``landcoupler serve`` and its SIGTERM path (:meth:`Service.stop`): health
goes NOT_SERVING (the server still answers Check, so a Kubernetes readiness probe sees it), new
LandCoupler calls are refused UNAVAILABLE (rule ``draining``), in-flight calls get half the grace
period to finish, then the server stops and every open session is checkpointed.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.core.batching import DEFAULT_MAX_CELLS
from coupler.core.config import Limits
from coupler.core.manager import SessionManager
from coupler.core.registry import BackendOptions
from coupler.metrics import ServiceMetrics
from coupler.wire import fields as F
from coupler.wire.encoded import add_servicer
from coupler.wire.interceptors import (
    SERVICE,
    Authenticator,
    AuthInterceptor,
    Drain,
    RequestInterceptor,
    parse_tokens,
)
from coupler.wire.servicer import LandCouplerServicer

log = logging.getLogger(__name__)

MiB = 1 << 20


@dataclass(frozen=True)
class ServerConfig:
    """How the server runs. Sizes in bytes, times in seconds.

    max_message_bytes: largest gRPC message either way (default 256 MiB).
    max_field_bytes: largest decoded field (guards against decompression bombs).
    tls_cert / tls_key: PEM files for TLS; client_ca: PEM of the CA that signs client
    certificates (mutual TLS; needs TLS). tokens: name -> bearer token, merged with the
    ``name:token`` pairs of ``token_file`` and of the environment variable ``token_env``; any
    token enables bearer auth. metrics_port: Prometheus exporter port (0 = any free port),
    None = no exporter. grace_period: SIGTERM budget (half for in-flight calls, the rest for
    checkpoints). health_address: ``HOST:PORT`` of a second, plaintext listener serving only
    ``grpc.health.v1`` (Kubernetes gRPC probes cannot speak TLS); None = none.
    checkpoints). backend_options: the backends' device and Triton URL (``registry``).
    batch_window_ms: gather the steps of concurrent sessions that can share one backend call
    for this long (``coupler.core.batching``; 0 = off); batch_max_cells: cells of one such call.
    workers: worker processes (``coupler.wire.front.start_front``; :func:`start_service` and
    :func:`create_server` always run one process and ignore it).
    """

    max_message_bytes: int = 256 * MiB
    max_field_bytes: int = F.DEFAULT_MAX_BYTES
    limits: Limits = field(default_factory=Limits)
    max_workers: int = 16
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    token_file: Path | None = None
    token_env: str | None = None
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    grace_period: float = 10.0
    health_address: str | None = None
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    batch_window_ms: float = 0.0
    batch_max_cells: int = DEFAULT_MAX_CELLS
    workers: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.batch_window_ms <= 1000.0:
            raise ValueError(
                f"batch_window_ms: must be in [0, 1000] ms, got {self.batch_window_ms!r}"
            )
        for name in (
            "max_message_bytes", "max_field_bytes", "max_workers", "batch_max_cells", "workers"
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        if not isinstance(self.limits, Limits):
            raise ValueError(f"limits: expected Limits, got {type(self.limits).__name__}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both or neither")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca: mutual TLS needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "client_ca", "token_file"):
            path = getattr(self, name)
            if path is not None:
                path = Path(path)
                if not path.is_file():
                    raise ValueError(f"{name}: no such file {str(path)!r}")
                object.__setattr__(self, name, path)
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port: {self.metrics_port} is not a port number")
        if not self.grace_period >= 0.0:
            raise ValueError(f"grace_period: must be >= 0 s, got {self.grace_period!r}")
        tokens = dict(self.tokens)
        for source, text in self._token_sources():
            for name, token in parse_tokens(text, source).items():
                if name in tokens and tokens[name] != token:
                    raise ValueError(f"{source}: token name {name!r} given twice")
                tokens[name] = token
        if len(set(tokens.values())) != len(tokens):
            raise ValueError("tokens: two names share one token")
        object.__setattr__(self, "tokens", tokens)

    def _token_sources(self) -> list[tuple[str, str]]:
        sources = []
        if self.token_file is not None:
            sources.append((str(self.token_file), Path(self.token_file).read_text()))
        if self.token_env:
            sources.append((f"${self.token_env}", os.environ.get(self.token_env, "")))
        return sources

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def mtls(self) -> bool:
        return self.client_ca is not None


@dataclass
class Service:
    """A running server and what it serves."""

    server: grpc.Server
    port: int
    manager: SessionManager
    metrics: ServiceMetrics
    health: health.HealthServicer
    config: ServerConfig
    servicer: LandCouplerServicer
    metrics_port: int | None = None
    drain: Drain = field(default_factory=Drain)
    health_server: grpc.Server | None = None
    health_port: int | None = None

    def stop(self, grace: float | None = None, checkpoint: bool = True) -> list[str]:
        """Graceful shutdown within ``grace`` s (default: the config's grace period): stop
        accepting calls (health NOT_SERVING, new calls UNAVAILABLE), let in-flight ones finish
        (half the budget; Exchange streams end after their current step, idle ones at once),
        stop the server, then checkpoint every open session (``manager.shutdown``). Returns the
        checkpoint URLs written."""
        budget = self.config.grace_period if grace is None else grace
        deadline = time.monotonic() + budget / 2.0
        self.health.enter_graceful_shutdown()
        self.drain.begin()
        self.servicer.drain()
        if not self.drain.wait(budget / 2.0):
            log.warning("%d call(s) still in flight after %.3g s: cancelled", self.drain.active,
                        budget / 2.0)  # fmt: skip
        # what is left (replies being sent, health watches) gets the rest of the first half
        self.server.stop(max(0.0, deadline - time.monotonic())).wait()
        urls = self.manager.shutdown(checkpoint=checkpoint)
        self.servicer.shared.close()  # the closed sessions' segments: unlinked, unmapped
        self.metrics.stop()
        if self.health_server is not None:  # answered NOT_SERVING until now
            self.health_server.stop(0).wait()
        return urls


def _options(config: ServerConfig) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]


def start_service(
    address: str,
    config: ServerConfig | None = None,
    *,
    manager: SessionManager | None = None,
    metrics: ServiceMetrics | None = None,
) -> Service:
    """Build, bind and start the server on ``address`` (``HOST:PORT``; port 0 = any)."""
    config = config or ServerConfig()
    metrics = metrics or ServiceMetrics()
    manager = manager or SessionManager(
        config.limits,
        metrics,
        backend_options=config.backend_options,
        batch_window=config.batch_window_ms / 1000.0,
        batch_max_cells=config.batch_max_cells,
    )
    authenticator = Authenticator(config.tokens, mtls=config.mtls)
    drain = Drain()
    server = new_server(config, metrics, drain, authenticator, "grpc")
    servicer = LandCouplerServicer(manager, authenticator, metrics, config.max_field_bytes)
    add_servicer(servicer, server)  # replies may be serialized straight from the arrays
    health_servicer, port, health_server, health_port, metrics_port = listen(
        server, address, config, metrics
    )
    log.info(
        "serving landcoupler.v1 on %s (port %d, %s%s)", address, port,
        "mTLS" if config.mtls else "TLS" if config.tls else "plaintext",
        ", bearer tokens" if config.tokens else "",
    )  # fmt: skip
    return Service(
        server, port, manager, metrics, health_servicer, config, servicer, metrics_port, drain,
        health_server, health_port,
    )  # fmt: skip


def new_server(
    config: ServerConfig, metrics: Any, drain: Drain, authenticator: Authenticator, name: str
) -> grpc.Server:
    """A grpc server with the service's interceptors (request ids and the status mapping, the
    drain gate, bearer tokens), ``config.max_workers`` threads named ``name`` and the message
    size options; nothing registered or bound yet."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix=name),
        interceptors=[RequestInterceptor(metrics, drain), AuthInterceptor(authenticator)],
        options=_options(config),
    )


def listen(
    server: grpc.Server, address: str, config: ServerConfig, metrics: Any
) -> tuple[health.HealthServicer, int, grpc.Server | None, int | None, int | None]:
    """Add gRPC health (SERVING) and reflection to ``server`` (its LandCoupler handlers already
    added), bind ``address``, start the separate health server and the Prometheus exporter when
    configured (``metrics.serve``), and start ``server``: (health servicer, port, health server,
    health port, metrics port). A failure stops ``server`` and raises ValueError."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (pb.DESCRIPTOR.services_by_name["LandCoupler"].full_name, health.SERVICE_NAME,
         reflection.SERVICE_NAME),
        server,
    )  # fmt: skip
    port = bind(server, address, config)
    health_server, health_port = None, None
    if config.health_address is not None:
        try:
            health_server, health_port = _health_server(config.health_address, health_servicer)
        except ValueError:
            server.stop(None)
            raise
    metrics_port = None
    if config.metrics_port is not None:
        metrics_port = metrics.serve(config.metrics_port, config.metrics_address)
    server.start()
    return health_servicer, port, health_server, health_port, metrics_port


def bind(server: grpc.Server, address: str, config: ServerConfig) -> int:
    """Add the service port on ``address`` (TLS as configured); the bound port. A failure stops
    ``server`` and raises ValueError naming the address."""
    credentials = None
    if config.tls:
        assert config.tls_cert is not None and config.tls_key is not None
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
            root_certificates=config.client_ca.read_bytes() if config.client_ca else None,
            require_client_auth=config.mtls,
        )
    try:
        if config.tls:
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        port, reason = 0, f": {exc}"
    else:
        reason = ""
    if port == 0:
        server.stop(None)
        raise ValueError(f"address: cannot bind {address!r}{reason}")
    return port


def _health_server(address: str, servicer: health.HealthServicer) -> tuple[grpc.Server, int]:
    """A started plaintext server of ``grpc.health.v1`` only, sharing ``servicer`` (so it turns
    NOT_SERVING with the main server), and its bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="health"),
        options=[("grpc.so_reuseport", 0)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        port, reason = server.add_insecure_port(address), ""
    except RuntimeError as exc:
        port, reason = 0, f": {exc}"
    if port == 0:
        server.stop(None)
        raise ValueError(f"health_address: cannot bind {address!r}{reason}")
    server.start()
    return server, port


def create_server(
    address: str,
    config: ServerConfig | None = None,
    *,
    manager: SessionManager | None = None,
    metrics: ServiceMetrics | None = None,
) -> tuple[grpc.Server, int]:
    """A started server on ``address`` and its bound port (see :func:`start_service`)."""
    service = start_service(address, config, manager=manager, metrics=metrics)
    return service.server, service.port
