"""The raw-bytes gRPC echo the benchmarks measure the wire floor with: a generic unary method
``/bench.Echo/Echo`` (no protobuf, no model) on 127.0.0.1, port chosen by the system."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc

#: the method path a client calls (``channel.unary_unary(METHOD)``)
METHOD = "/bench.Echo/Echo"


def echo_server(
    reply: Callable[[bytes], bytes],
    workers: int = 2,
    max_message: int | None = None,
) -> tuple[grpc.Server, int]:
    """A started server answering each request with ``reply(request)``, and its port.
    ``max_message``: the send/receive message limit in bytes (None: gRPC's default)."""

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return reply(request)

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    opts = (
        []
        if max_message is None
        else [
            ("grpc.max_send_message_length", max_message),
            ("grpc.max_receive_message_length", max_message),
        ]
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=opts)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
