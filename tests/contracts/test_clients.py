"""Every client passes the contract: the gRPC client against a real server on 127.0.0.1:0 (fields
on the wire, and through shared memory), and the in-process client."""

from __future__ import annotations

from contextlib import AbstractContextManager

from coupler.client import Client, local_client

from .client_contract import ClientContract


class TestGrpcClient(ClientContract):
    def make_client(self) -> AbstractContextManager[Client]:
        return local_client("grpc")


class TestSharedMemoryClient(ClientContract):
    def make_client(self) -> AbstractContextManager[Client]:
        return local_client("shm")


class TestInProcessClient(ClientContract):
    def make_client(self) -> AbstractContextManager[Client]:
        return local_client("inprocess")
