"""A server of several worker processes: ``landcoupler serve --workers N``.

One Python process steps about 340 sessions' steps per second at most (issue 15: ~2.9 ms of
server CPU per 64-cell step, nearly all of it under the GIL), whatever the cores. Here a front
process takes every call on the service address and forwards it, as raw bytes, to one of N
worker processes — ordinary single-process servers (``coupler.wire.workers``) — that owns the
call's session (``coupler.wire.forward``). Sessions are pinned to the worker that opened them,
so everything a session is (state, step index, stored reply, checkpoints, record, batching with
the sessions beside it) stays in one process with exactly the single server's code.

What the front runs itself: TLS and token auth (the interceptors of a single server), health
(NOT_SERVING from SIGTERM on), reflection, the drain gate, and ``/metrics``, which serves the
workers' metrics summed (counters, histograms, ``open_sessions``; other gauges: the maximum)
plus its own count of refusals (every refusal a caller sees passes the front once).
:meth:`Front.stop` fans the shutdown out: the front refuses new calls, every worker drains and
checkpoints its sessions as a single server does, and the checkpoint URLs of all are returned.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from coupler.wire.forward import Forwarder, Router
from coupler.wire.interceptors import (
    Authenticator,
    Drain,
)
from coupler.wire.server import ServerConfig, listen, new_server
from coupler.wire.workers import WorkerPool

log = logging.getLogger(__name__)

#: How long the workers may take to start (imports, backends), s.
START_TIMEOUT = 300.0


def worker_args(config: ServerConfig, extra: Sequence[str] = ()) -> list[str]:
    """The ``landcoupler serve`` flags of a worker of a front configured by ``config`` (the
    front keeps TLS, tokens and the health listener; a worker's metrics go to a free loopback
    port, read by the front)."""
    limits = config.limits
    args = [
        "--max-sessions", str(limits.max_sessions),
        "--max-cells", str(limits.max_cells_per_session),
        "--max-members", str(limits.max_members),
        "--max-message-mib", str(max(1, config.max_message_bytes >> 20)),
        "--max-workers", str(config.max_workers),
        "--grace", repr(config.grace_period),
        "--token-env", "",
        "--batch-window-ms", repr(config.batch_window_ms),
        "--batch-max-cells", str(config.batch_max_cells),
    ]  # fmt: skip
    options = config.backend_options
    if options.device is not None:
        args += ["--device", options.device]
    if options.triton_url is not None:
        args += ["--triton-url", options.triton_url]
    if config.metrics_port is not None:
        args += ["--metrics-port", "0", "--metrics-address", "127.0.0.1"]
    return [*args, *extra]


class FrontMetrics:
    """``/metrics`` of the front: the workers' families merged, plus the front's refusals."""

    def __init__(self, ports: Callable[[], list[int]]) -> None:
        self.registry = CollectorRegistry()
        self._refusals = Counter(
            "landcoupler_refusals", "Refused requests by gRPC status code", ["code"],
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_WorkerMetrics(ports))
        self._http: Any = None

    def count_refusal(self, code: str) -> None:
        self._refusals.labels(code=code).inc()

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> int:
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._http = server
        return int(server.server_port)

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


class _WorkerMetrics:
    """A collector reading every live worker's exposition at scrape time."""

    def __init__(self, ports: Callable[[], list[int]]) -> None:
        self._ports = ports

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for port in self._ports():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError as exc:  # a worker that just ended: its sessions are gone too
                log.warning("metrics of the worker on port %d: %s", port, exc)
                continue
            for family in text_string_to_metric_families(text):
                if family.name == "landcoupler_refusals":
                    continue  # counted by the front, once per refusal
                families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                merged = values.setdefault(family.name, {})
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    old = merged.get(key)
                    if old is None:
                        merged[key] = sample.value
                    elif sample.name.endswith("_created"):
                        merged[key] = min(old, sample.value)
                    elif family.type == "gauge" and family.name != "landcoupler_open_sessions":
                        merged[key] = max(old, sample.value)
                    else:
                        merged[key] = old + sample.value
        for name, metric in families.items():
            for (sample_name, labels), value in values[name].items():
                metric.add_sample(sample_name, dict(labels), value)
            yield metric


@dataclass
class Front:
    """A running multi-process server."""

    server: grpc.Server
    port: int
    pool: WorkerPool
    router: Router
    forwarder: Forwarder
    health: health.HealthServicer
    config: ServerConfig
    drain: Drain
    metrics: FrontMetrics
    metrics_port: int | None = None
    health_server: grpc.Server | None = None
    health_port: int | None = None

    def stop(self, grace: float | None = None) -> list[str]:
        """Graceful shutdown within ``grace`` s (default: the config's): new calls refused at
        the front, idle streams cancelled, every worker drains and checkpoints its sessions
        (its own grace period), then the front stops. Returns every checkpoint URL written."""
        budget = self.config.grace_period if grace is None else grace
        self.health.enter_graceful_shutdown()
        self.drain.begin()
        self.forwarder.drain()
        urls = self.pool.stop(budget + 5.0)  # each worker keeps to the same grace period
        self.drain.wait(1.0)
        self.server.stop(1.0).wait()
        self.metrics.stop()
        if self.health_server is not None:
            self.health_server.stop(0).wait()
        return urls

    def kill(self) -> None:
        """Stop at once, without checkpoints (tests, failed starts)."""
        self.server.stop(None)
        self.pool.kill()
        self.metrics.stop()
        if self.health_server is not None:
            self.health_server.stop(None)


def start_front(address: str, config: ServerConfig, extra_args: Sequence[str] = ()) -> Front:
    """Start ``config.workers`` worker processes and the front on ``address`` (port 0 = any);
    ``extra_args``: more ``landcoupler serve`` flags for the workers (``--torch-threads``)."""
    pool = WorkerPool(
        config.workers, worker_args(config, extra_args), config.max_message_bytes, START_TIMEOUT
    )
    try:
        return _front(address, config, pool)
    except BaseException:
        pool.kill()
        raise


def _front(address: str, config: ServerConfig, pool: WorkerPool) -> Front:
    router = Router(pool.workers)
    authenticator = Authenticator(config.tokens, mtls=config.mtls)
    metrics = FrontMetrics(
        lambda: [w.metrics_port for w in router.live() if w.metrics_port is not None]
    )
    drain = Drain()
    server = new_server(config, metrics, drain, authenticator, "front")
    forwarder = Forwarder(router, authenticator)
    server.add_generic_rpc_handlers((forwarder.handler(),))
    health_servicer, port, health_server, health_port, metrics_port = listen(
        server, address, config, metrics
    )
    log.info("serving landcoupler.v1 on %s (port %d) with %d worker processes", address, port,
             config.workers)  # fmt: skip
    return Front(
        server, port, pool, router, forwarder, health_servicer, config, drain, metrics,
        metrics_port, health_server, health_port,
    )  # fmt: skip
