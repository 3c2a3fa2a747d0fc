"""``landcoupler serve``: run the gRPC coupling service until SIGTERM/SIGINT.

On SIGTERM (Kubernetes) or SIGINT: health goes NOT_SERVING, new calls are refused, in-flight
steps get half of ``--grace`` to finish, then every open session is checkpointed (to its
``checkpoint_url``) and the process exits. The bound address and each checkpoint URL are
printed on stdout (``listening on HOST:PORT``, ``checkpoint URL``), so scripts and tests can use
port 0. ``--health-address`` adds a plaintext health-only listener for Kubernetes probes when the
service port uses TLS (deploy/k8s, docs/deploy.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coupler.wire.server import ServerConfig

log = logging.getLogger(__name__)

#: ``--batch-window-ms`` default, chosen with ``make bench-load`` (docs/benchmarks.md)
DEFAULT_BATCH_WINDOW_MS = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the gRPC coupling service",
        description="Run the gRPC coupling service until SIGTERM/SIGINT (then checkpoint every "
        "open session that has a checkpoint_url and exit).",
    )
    p.add_argument(
        "--address", default="127.0.0.1:50051",
        help="HOST:PORT (port 0 = any free), or unix:PATH (a Unix-domain socket)",
    )  # fmt: skip
    p.add_argument("--tls-cert", type=Path, help="server certificate (PEM); enables TLS")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument("--client-ca", type=Path, help="CA of client certificates: mutual TLS")
    p.add_argument("--token-file", type=Path, help="file of name:token lines (bearer auth)")
    p.add_argument(
        "--token-env", default="LANDCOUPLER_TOKENS",
        help="environment variable with name:token pairs (default %(default)s; unset = none)",
    )  # fmt: skip
    p.add_argument("--metrics-port", type=int, help="Prometheus exporter port (0 = any free)")
    p.add_argument("--metrics-address", default="127.0.0.1", help="exporter bind address")
    p.add_argument("--max-sessions", type=int, default=64)
    p.add_argument("--max-cells", type=int, default=1_048_576, help="cells per session")
    p.add_argument("--max-members", type=int, default=128)
    p.add_argument("--max-message-mib", type=int, default=256, help="gRPC message limit, MiB")
    p.add_argument("--max-workers", type=int, default=16, help="server threads")
    p.add_argument("--grace", type=float, default=10.0, help="SIGTERM grace period, s")
    p.add_argument(
        "--health-address",
        help="HOST:PORT of a plaintext listener serving only grpc.health.v1, for Kubernetes gRPC "
        "probes (which cannot use TLS); default: none",
    )
    p.add_argument(
        "--device", default=os.environ.get("LANDCOUPLER_DEVICE") or None,
        help="where the compiled emulator backends (torchscript, aoti, onnx, transformer) run: "
        "cpu, cuda or cuda:N (default: $LANDCOUPLER_DEVICE, else CUDA when present for "
        "torchscript, else CPU)",
    )  # fmt: skip
    p.add_argument(
        "--triton-url", default=None, metavar="HOST:PORT",
        help="Triton gRPC endpoint of the triton backend (default: $LANDCOUPLER_TRITON_URL)",
    )  # fmt: skip
    p.add_argument(
        "--batch-window-ms", type=float, default=DEFAULT_BATCH_WINDOW_MS, metavar="MS",
        help="gather the steps of concurrent sessions that can share one backend call (same "
        "backend and timestep, cells a multiple of 64, no assimilation; the reference model) "
        "for up to MS ms into one call; results are bitwise those of single steps; 0 = off "
        "(default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--batch-max-cells", type=int, default=8192, metavar="N",
        help="cells of one batched backend call (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--torch-threads", type=int, default=None, metavar="N",
        help="torch intra-op threads of the land step (default: torch's, one per core); 1 is "
        "faster for many small sessions on a loaded machine (docs/benchmarks.md, bench-load)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes: a front process forwards every call to the worker that owns "
        "its session, so N cores step sessions at once (docs/architecture.md); 1 = this "
        "process serves alone (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-tune-malloc", action="store_true",
        help="keep glibc's default mmap/trim thresholds (see coupler/wire/allocator.py)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coupler.core.config import Limits
    from coupler.core.registry import BackendOptions
    from coupler.errors import CouplerError
    from coupler.wire.allocator import tune_allocator
    from coupler.wire.server import ServerConfig, start_service

    try:
        limits = Limits(args.max_sessions, args.max_cells, args.max_members)
    except CouplerError as exc:
        raise ValueError(str(exc)) from None
    options = BackendOptions(device=args.device, triton_url=args.triton_url)
    if options.device is not None and options.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device: {options.device!r} but torch.cuda.is_available() is false")
    config = ServerConfig(
        max_message_bytes=args.max_message_mib << 20,
        limits=limits,
        max_workers=args.max_workers,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        token_file=args.token_file,
        token_env=args.token_env or None,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        grace_period=args.grace,
        health_address=args.health_address,
        backend_options=options,
        batch_window_ms=args.batch_window_ms,
        batch_max_cells=args.batch_max_cells,
        workers=args.workers,
    )
    if args.workers > 1:
        return _run_front(args, config)
    if args.torch_threads is not None:
        import torch

        if args.torch_threads < 1:
            raise ValueError(f"--torch-threads: must be >= 1, got {args.torch_threads}")
        torch.set_num_threads(args.torch_threads)
    if not args.no_tune_malloc:
        tune_allocator()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    if args.exit_with_stdin:  # a worker of a front: the front's end closes our stdin
        threading.Thread(target=_stop_at_eof, args=(stop,), daemon=True).start()
    try:
        service = start_service(args.address, config)
        _print_listening(args, config, service.port, service.metrics_port, service.health_port)
        log.warning("landcoupler serve: listening on %s", _bound(args.address, service.port))
        _serve_until(stop, service.stop)
        if args.exit_with_stdin and args.address.startswith("unix:"):
            _remove_socket_dir(args.address.removeprefix("unix:"))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    sys.stdout.flush()
    return 0


def _remove_socket_dir(path: str) -> None:
    """A worker whose front is gone: remove its socket and, once the last worker has, the
    front's private socket folder (best effort; the front removes it when it ends cleanly)."""
    socket_path = Path(path)
    for remove in (socket_path.unlink, socket_path.parent.rmdir):
        try:
            remove()
        except OSError:
            pass


def _serve_until(stop: threading.Event, shutdown: Callable[[], list[str]]) -> None:
    """Wait for ``stop`` (SIGTERM/SIGINT), then ``shutdown`` (drain and checkpoint) and print
    each checkpoint URL."""
    while not stop.wait(3600.0):
        pass
    urls = shutdown()
    for url in urls:
        print(f"checkpoint {url}", flush=True)
    log.warning("stopped; %d session checkpoint(s) written", len(urls))


def _print_listening(
    args: argparse.Namespace,
    config: ServerConfig,
    port: int,
    metrics_port: int | None,
    health_port: int | None,
) -> None:
    """The addresses actually bound, on stdout (scripts and the front's workers read them)."""
    print(f"listening on {_bound(args.address, port)}", flush=True)
    if metrics_port is not None:
        print(f"metrics on {config.metrics_address}:{metrics_port}", flush=True)
    if health_port is not None:
        health_host = str(args.health_address).rsplit(":", 1)[0]
        print(f"health on {health_host}:{health_port}", flush=True)


def _bound(address: str, port: int) -> str:
    """``HOST:PORT`` actually bound (a Unix-domain socket address as given)."""
    if address.startswith("unix:"):
        return address
    return f"{address.rsplit(':', 1)[0]}:{port}"


def _stop_at_eof(stop: threading.Event) -> None:
    """Set ``stop`` when stdin reaches its end (the front that started us ended)."""
    try:  # os.read, not sys.stdin: no buffer lock for the interpreter's exit to wait on
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    log.warning("stdin closed: the front process ended; shutting down")
    # nobody reads our stdout any more: the checkpoint lines must not fail on a broken pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    stop.set()


def _run_front(args: argparse.Namespace, config: object) -> int:
    """``--workers N``: the front and N worker processes until SIGTERM/SIGINT."""
    from coupler.wire.front import start_front
    from coupler.wire.server import ServerConfig

    assert isinstance(config, ServerConfig)
    extra: list[str] = []
    if args.torch_threads is not None:
        if args.torch_threads < 1:
            raise ValueError(f"--torch-threads: must be >= 1, got {args.torch_threads}")
        extra += ["--torch-threads", str(args.torch_threads)]
    if args.no_tune_malloc:
        extra.append("--no-tune-malloc")
    else:  # the front moves every step's bytes too
        from coupler.wire.allocator import tune_allocator

        tune_allocator()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: shutting down %d workers", signal.Signals(signum).name,
                    args.workers)  # fmt: skip
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        front = start_front(args.address, config, extra)
        _print_listening(args, config, front.port, front.metrics_port, front.health_port)
        pids = " ".join(str(w.proc.pid) for w in front.pool.workers)
        print(f"workers {pids}", flush=True)
        _serve_until(stop, front.stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    sys.stdout.flush()
    return 0
