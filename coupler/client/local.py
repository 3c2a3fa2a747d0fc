"""A land service of this process for applications that bring none: ``local_client``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from coupler.client.protocol import Client

Transport = Literal["grpc", "shm", "inprocess"]


@contextmanager
def local_client(
    transport: Transport = "grpc", *, name: str = "landcoupler-local", max_workers: int = 8
) -> Iterator[Client]:
    """A client of a fresh service started here: a gRPC server on 127.0.0.1:0 (so every call
    crosses the wire; ``shm``: the arrays of every step through shared memory, the co-located
    fast path), or the in-process client (no server, same interface). The service is
    stopped, without checkpoints, when the block ends."""
    if transport == "inprocess":
        from coupler.client.inprocess import InProcessClient

        with InProcessClient() as local:
            yield local
        return
    if transport not in ("grpc", "shm"):
        raise ValueError(f"transport: expected 'grpc', 'shm' or 'inprocess', got {transport!r}")
    from coupler.client.remote import CouplerClient
    from coupler.wire.server import ServerConfig, start_service

    service = start_service("127.0.0.1:0", ServerConfig(max_workers=max_workers))
    try:
        address = f"127.0.0.1:{service.port}"
        shared = transport == "shm"
        with CouplerClient(address, client_name=name, shared_memory=shared) as remote:
            yield remote
    finally:
        service.stop(grace=1.0, checkpoint=False)
