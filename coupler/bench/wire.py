"""A big step at the wire floor, phase by phase (``make bench-wire``).

One domain of ``cells`` cells (reference backend, grass), 7 float32 forcing fields in and 8
outputs out, float64 (the default) and float32 (``reply_dtype``: the issue's "float32 on the
wire", each against an echo of its own size). Three measurements, one run:

1. **End to end**, interleaved step by step so all columns see the same machine state: the
   in-process step, the gRPC step (unary and stream over TCP loopback, unary over a Unix-domain
   socket), the co-located path (arrays through shared memory, control over TCP loopback), and
   the floors: a raw-bytes gRPC echo of exactly the bytes the step sends and receives
   (serialized request in, reply's size back; no protobuf, no model), and a memcpy of those
   bytes. The acceptance ratios are ``(gRPC step − in-process step) / echo`` and, for the
   co-located path, its *exchange* ``(shm step − in-process step) / memcpy``. Because a big
   step's land work is seconds and moves by more than the whole wire cost, both are also
   measured *paired*: the step's wall time minus the validation and land time the server
   measured for that very step, minus the same framework time of the in-process steps.
2. **Phases** of that step, each timed alone on the same real data: client encode and
   serialize, server parse, wire decode, validation, dtype conversion, land step, reply
   statistics, reply encode and serialize, client parse and decode; and the co-located path's
   copies (forcing into the segment, out of it on the server, outputs into it, out of it on
   the client).
3. **Per-cell cost** of the reference land step, timed the way ``bench-service`` times it
   (a session's grass cells, 1 member) and the way ``bench-emulators`` does (its mixed-cover
   static), each with the cell blocks (``ReferenceConfig.cell_block``) and without, at
   ``per_cell_sizes`` cells.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import grpc
import numpy as np
import torch

from coupler.bench.echo import METHOD, echo_server
from coupler.bench.service import OUTPUTS, _session_kwargs, forcing
from coupler.client import CouplerClient, InProcessClient
from coupler.client.shared import SharedChannel
from coupler.core import landstep, validation
from coupler.core.manager import SessionManager
from coupler.metrics import ServiceMetrics
from coupler.spec import SessionSpec
from coupler.wire import phases as W
from coupler.wire.server import ServerConfig, create_server
from coupler.wire.shared import SharedSegments

MAX = 1 << 30
CORE = ("validate", "land")
#: the gRPC sessions that ask for float32 replies (``reply_dtype``), against an echo of their size
F32 = ("grpc_unary_f32", "grpc_stream_f32")


class PhaseLog(ServiceMetrics):
    """ServiceMetrics that also keeps every observed phase time (s), for paired timings."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, float]] = []

    def observe_phase(self, phase: str, seconds: float) -> None:
        super().observe_phase(phase, seconds)
        self.log.append((phase, seconds))

    def take(self, phases: tuple[str, ...] = CORE) -> float:
        """Seconds of ``phases`` observed since the last call; clears the log."""
        total = sum(s for p, s in self.log if p in phases)
        self.log.clear()
        return total


def _echo_server(reply_bytes: int) -> tuple[grpc.Server, int]:
    reply = bytes(reply_bytes)
    return echo_server(lambda _request: reply, max_message=MAX)


def _median(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _f32(n: int, hour: int) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float32) for k, v in forcing(n, hour).items()}


def run(
    cells: int = 311_040,
    steps: int = 5,
    threads: int = 1,
    per_cell_sizes: tuple[int, ...] = (8_192, 65_536),
) -> dict[str, Any]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        payload: dict[str, Any] = {"benchmark": "wire", "cells": cells, "steps": steps}
        payload["threads"] = threads
        payload["outputs"] = list(OUTPUTS)
        payload["end_to_end"] = _end_to_end(cells, steps)
        payload["phases"] = _phases(cells, steps)
        payload["per_cell"] = [_per_cell(n) for n in per_cell_sizes]
        return payload
    finally:
        torch.set_num_threads(previous)


def _end_to_end(n: int, steps: int) -> dict[str, Any]:
    import tempfile

    server_log, unix_log, local_log = PhaseLog(), PhaseLog(), PhaseLog()
    config = ServerConfig(max_message_bytes=MAX)
    server, port = create_server("127.0.0.1:0", config, metrics=server_log)
    scratch = tempfile.TemporaryDirectory(prefix="landcoupler-bench-")
    unix = f"unix:{scratch.name}/landcoupler.sock"
    unix_server, _ = create_server(unix, config, metrics=unix_log)
    client = CouplerClient(f"127.0.0.1:{port}", max_message_bytes=MAX)
    unix_client = CouplerClient(unix, max_message_bytes=MAX)
    local = InProcessClient(SessionManager(metrics=local_log))
    kwargs = _session_kwargs(n)
    inputs = [_f32(n, 12 + k) for k in range(steps + 1)]
    sessions: dict[str, tuple[Any, PhaseLog]] = {
        "inprocess": (local.open_session(**kwargs), local_log),
        "grpc_unary": (client.open_session(**kwargs), server_log),
        "grpc_stream": (client.open_session(**kwargs, stream=True), server_log),
        "grpc_unix": (unix_client.open_session(**kwargs), unix_log),
        "shm": (client.open_session(**kwargs, shared_memory=True), server_log),
    }
    for label in F32:  # the acceptance's "float32 on the wire" both ways (reply_dtype)
        stream = "stream" in label
        opened = client.open_session(**kwargs, stream=stream, reply_dtype="float32")
        sessions[label] = (opened, server_log)
    zeros = {name: np.zeros(n) for name in OUTPUTS}
    request, reply_size = W.sizes(inputs[0], zeros)
    _, reply_size_f32 = W.sizes(inputs[0], {k: v.astype(np.float32) for k, v in zeros.items()})
    echo_server, echo_port = _echo_server(reply_size)
    echo_f32_server, echo_f32_port = _echo_server(reply_size_f32)
    options = [("grpc.max_send_message_length", MAX), ("grpc.max_receive_message_length", MAX)]
    channel = grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=options)
    channel_f32 = grpc.insecure_channel(f"127.0.0.1:{echo_f32_port}", options=options)
    echo = channel.unary_unary(METHOD)
    echo_f32 = channel_f32.unary_unary(METHOD)
    sink = bytearray(len(request) + reply_size)
    wall: dict[str, list[float]] = {k: [] for k in (*sessions, "echo", "echo_f32", "memcpy")}
    framework: dict[str, list[float]] = {k: [] for k in sessions}
    replies: dict[str, dict[str, np.ndarray]] = {}
    try:
        for k in range(steps + 1):  # step 0 is the warm-up
            for label, (session, log) in sessions.items():
                log.take()
                t0 = time.perf_counter()
                replies[label] = session.step(k, inputs[k])
                dt = time.perf_counter() - t0
                if k:
                    wall[label].append(dt)
                    framework[label].append(dt - log.take())
            t0 = time.perf_counter()
            answer = echo(request)
            if k:
                wall["echo"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            echo_f32(request)
            if k:
                wall["echo_f32"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sink[: len(request)] = request
            sink[len(request) :] = answer
            if k:
                wall["memcpy"].append(time.perf_counter() - t0)
        same = all(
            replies["inprocess"][name].tobytes() == replies[label][name].tobytes()
            for label in sessions
            if label not in F32
            for name in OUTPUTS
        )
        same_f32 = all(
            replies[label][name].dtype == np.float32
            and np.array_equal(replies["inprocess"][name].astype(np.float32), replies[label][name])
            for label in F32
            for name in OUTPUTS
        )
    finally:
        for session, _ in sessions.values():
            session.close()
        channel.close()
        channel_f32.close()
        client.close()
        unix_client.close()
        server.stop(None)
        unix_server.stop(None)
        echo_server.stop(None)
        echo_f32_server.stop(None)
        scratch.cleanup()
    med = {k: statistics.median(v) for k, v in wall.items()}
    out: dict[str, Any] = {
        "request_bytes": len(request), "reply_bytes": reply_size, "bitwise_equal": same,
        "reply_bytes_f32": reply_size_f32, "bitwise_equal_f32": same_f32,
        "seconds": med, "samples": wall, "framework_samples": framework,
    }  # fmt: skip
    for label in ("grpc_unary", "grpc_stream", "grpc_unix", "shm", *F32):
        floor = med["echo_f32" if label in F32 else "echo"]
        overhead = med[label] - med["inprocess"]
        paired = statistics.median(framework[label]) - statistics.median(framework["inprocess"])
        out[label] = {
            "overhead": overhead, "overhead_paired": paired,
            "ratio_to_echo": overhead / floor, "paired_ratio_to_echo": paired / floor,
            "ratio_to_memcpy": overhead / med["memcpy"],
            "paired_ratio_to_memcpy": paired / med["memcpy"],
        }  # fmt: skip
    return out


def _phases(n: int, repeats: int) -> list[tuple[str, str, float]]:
    """(side, phase, seconds): each phase of one step timed alone (median of ``repeats``)."""
    manager = SessionManager()
    session = manager.open(SessionSpec.of(**_session_kwargs(n)), "bench")
    cfg = session.config
    inputs = _f32(n, 12)
    units = {k: validation.V.REGISTRY[k].units for k in inputs}
    decoded = W.decoded(inputs)
    checked = validation.validate_forcing(decoded, n, units)
    tensors = landstep.forcing_tensors(checked, cfg.members)
    clock = landstep.clock_for(cfg, 0)
    backend, static, state = session._backend, session.static, session.state
    _, outputs = backend.step(state, static, tensors, clock)
    reply = landstep.reply_fields(outputs, cfg.outputs, n, cfg.output_spread)
    before, after = W.pieces(inputs, reply)

    def checks() -> None:
        for k, v in decoded.items():
            validation.check_values(k, v, n, units[k])

    def conversion() -> list[np.ndarray]:
        return [validation.to_float64(v) for v in decoded.values()]

    def statistics_() -> dict[str, np.ndarray]:
        return landstep.reply_fields(outputs, cfg.outputs, n, cfg.output_spread)

    core: list[tuple[str, str, Callable[[], Any]]] = [
        ("server", "validation (rules, on float32)", checks),
        ("server", "dtype conversion (float32 → float64)", conversion),
        ("server", "to tensors (views)", lambda: landstep.forcing_tensors(checked, cfg.members)),
        (
            "server",
            "land step (backend.step)",
            partial(backend.step, state, static, tensors, clock),
        ),
        ("server", "reply statistics (mean, float64)", statistics_),
    ]
    phases = [*before, *core, *after]
    try:
        timed = [(side, name, _median(fn, repeats)) for side, name, fn in phases]
        return timed + _shared_phases(inputs, reply, repeats)
    finally:
        manager.close(session.id, "bench")


def _shared_phases(
    inputs: dict[str, np.ndarray], reply: dict[str, np.ndarray], repeats: int
) -> list[tuple[str, str, float]]:
    """The co-located path's copies, each timed alone on a real segment (coupler.wire.shared,
    coupler.client.shared) with the step's forcing and outputs."""
    units = {k: validation.V.REGISTRY[k].units for k in inputs}
    n = len(next(iter(reply.values())))
    channel = SharedChannel("bench", tuple(reply), n)
    segments = SharedSegments()
    try:
        request = channel.request(1, inputs, units)
        step = segments.inputs("bench", request, "unix:")
        placed = segments.reply("bench", step, reply, lambda _: "")  # maps it for the session
        answer = W.pb_step_reply(placed)
        pieces: list[tuple[str, str, Callable[[], Any]]] = [
            ("client", "shm: write forcing into the segment",
             lambda: channel.request(1, inputs, units)),
            ("server", "shm: copy forcing out of the segment (checked layout)",
             lambda: segments.inputs("bench", request, "unix:")),
            ("server", "shm: write outputs into the segment",
             lambda: segments.reply("bench", step, reply, lambda _: "")),
            ("client", "shm: copy outputs out of the segment", lambda: channel.outputs(answer)),
        ]  # fmt: skip
        return [(side, name, _median(fn, repeats)) for side, name, fn in pieces]
    finally:
        segments.release("bench", unlink=False)
        channel.close()


def _per_cell(n: int) -> dict[str, Any]:
    """Seconds per step of the reference land step at ``n`` cells, as each bench sets it up,
    with and without cell blocks."""
    from coupler.bench.emulators import _static
    from coupler.bench.reference import _forcing
    from emulators.protocol import LandStatic, StepClock
    from emulators.reference import ReferenceBackend, ReferenceConfig

    grass = SessionSpec.of(**_session_kwargs(n))
    service_static = landstep.build_static(grass)
    service_forcing = {
        k: torch.from_numpy(v).unsqueeze(0) for k, v in forcing(n, 12).items()
    }  # bench-service: midsummer noon forcing, 2001-07-01
    mixed: LandStatic = _static(n, seed=n)  # bench-emulators: 1-3 classes per cell
    setups = {
        "service": (service_static, service_forcing, "2001-07-01T12:00:00"),
        "emulators": (mixed, _forcing(n), "2001-06-01T10:00:00"),
    }
    row: dict[str, Any] = {"cells": n, "tiles": n * 8}
    for label, (static, forc, start) in setups.items():
        for block in (0, ReferenceConfig().cell_block):
            backend = ReferenceBackend(ReferenceConfig(cell_block=block))
            clock = StepClock(0, np.datetime64(start), 3600.0)
            state = backend.initial_state(static, clock)
            row[f"{label}_{'blocks' if block else 'whole'}"] = _median(
                partial(backend.step, state, static, forc, clock), 3
            )
    return row


def markdown(payload: dict[str, Any]) -> str:
    from coupler.bench.wire_doc import markdown as table

    return table(payload)
