"""Measure the wire's two ways of carrying a step on this machine, without the land model.

An echo servicer decodes every forcing field (zero-copy) and replies with ``--outputs`` float64
fields of the same size, (a) as one unary ``Step`` message each way and (b) on the ``Exchange``
stream as one frame per field. Prints the median wall time per step of each, for a few grid
sizes. This is the measurement behind the Exchange framing (see docs/wire.md).

    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 \
        .venv/bin/python examples/wire_transport.py --cells 65536 311040
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler._proto.landcoupler.v1 import landcoupler_pb2_grpc as pb_grpc
from coupler.client import CouplerClient
from coupler.wire import fields as F

FORCING = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")
MAX = 512 << 20


class Echo(pb_grpc.LandCouplerServicer):
    """Decode the forcing, reply with ``n_out`` fields of the same length (no land model)."""

    def __init__(self, n_out: int) -> None:
        self.n_out = n_out

    def _reply(self, fields: list[np.ndarray]) -> list[np.ndarray]:
        return [fields[i % len(fields)] for i in range(self.n_out)]

    def Step(self, request: pb.StepRequest, context: grpc.ServicerContext) -> pb.StepReply:
        arrays = [F.decode(f, MAX) for f in request.fields]
        reply = pb.StepReply(session_id=request.session_id, index=request.index)
        for i, arr in enumerate(self._reply(arrays)):
            F.encode_into(reply.fields.add(), f"out{i}", arr)
        return reply

    def Exchange(
        self, request_iterator: Iterator[pb.ExchangeRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ExchangeReply]:
        frames = iter(request_iterator)
        for frame in frames:
            n = frame.step.trailing_fields
            arrays = [F.decode(next(frames).field, MAX) for _ in range(n)]
            head = pb.ExchangeReply()
            head.step.index = frame.step.index
            head.step.trailing_fields = self.n_out
            yield head
            for i, arr in enumerate(self._reply(arrays)):
                out = pb.ExchangeReply()
                F.encode_into(out.field, f"out{i}", arr)
                yield out


def measure(cells: int, n_out: int, repeats: int) -> dict[str, float]:
    opts = [("grpc.max_send_message_length", MAX), ("grpc.max_receive_message_length", MAX)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=opts)
    pb_grpc.add_LandCouplerServicer_to_server(Echo(n_out), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    rng = np.random.default_rng(0)
    fields = {name: rng.random(cells) for name in FORCING}
    client = CouplerClient(f"127.0.0.1:{port}", max_message_bytes=MAX)
    try:
        unary, stream = [], []
        opened = pb.OpenSessionReply(session_id="bench", outputs=[])
        from coupler.client.remote import RemoteSession

        s_unary = RemoteSession(client, opened)
        s_stream = RemoteSession(client, opened, stream=True, split_bytes=0)
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            s_unary.step(i, fields)
            t1 = time.perf_counter()
            s_stream.step(i, fields)
            t2 = time.perf_counter()
            if i:  # the first round warms up channels and allocators
                unary.append(t1 - t0)
                stream.append(t2 - t1)
        if s_stream._exchange is not None:
            s_stream._exchange.close()
    finally:
        client.close()
        server.stop(None)
    mb = (len(FORCING) + n_out) * cells * 8 / 1e6
    return {"cells": cells, "MB": mb, "unary_ms": 1e3 * statistics.median(unary),
            "stream_ms": 1e3 * statistics.median(stream)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cells", type=int, nargs="+", default=[16_384, 65_536, 311_040])
    parser.add_argument("--outputs", type=int, default=8, help="reply fields")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"{'cells':>8} {'MB/step':>8} {'unary ms':>9} {'stream ms':>10} {'ratio':>6}")
    for cells in args.cells:
        r = measure(cells, args.outputs, args.repeats)
        print(f"{cells:>8} {r['MB']:>8.1f} {r['unary_ms']:>9.1f} {r['stream_ms']:>10.1f} "
              f"{r['unary_ms'] / r['stream_ms']:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
