"""The Python (grpcio) transport floor for `make bench-clients`: raw bytes, no protobuf.

    py_echo.py serve REPLY_FILE         answers /landcoupler.v1.LandCoupler/Step with the bytes
                                        of REPLY_FILE (a serialized StepReply); prints the port
    py_echo.py client TARGET REQUEST_FILE STEPS
                                        sends the bytes of REQUEST_FILE STEPS times; one JSON
                                        line with the per-call seconds

The files come from ``bench_echo dump`` (the same messages the C++ floor sends and answers).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

METHOD = "/landcoupler.v1.LandCoupler/Step"
OPTIONS = [
    ("grpc.max_send_message_length", 256 << 20),
    ("grpc.max_receive_message_length", 256 << 20),
]


def serve(reply_file: str) -> None:
    reply = Path(reply_file).read_bytes()
    handler = grpc.method_handlers_generic_handler(
        "landcoupler.v1.LandCoupler",
        {"Step": grpc.unary_unary_rpc_method_handler(lambda request, context: reply)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    threading.Event().wait()


def client(target: str, request_file: str, steps: int) -> None:
    request = Path(request_file).read_bytes()
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        step = channel.unary_unary(METHOD)  # no (de)serializers: bytes in, bytes out
        seconds, size = [], 0
        for _ in range(steps):
            t0 = time.perf_counter()
            size = len(step(request, timeout=300))
            seconds.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "request_bytes": len(request), "reply_bytes": size}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 3:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 5:
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
