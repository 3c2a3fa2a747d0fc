"""The coupled step over gRPC (unary and stream) vs the same session in-process, and the bare
gRPC round trip of the same bytes (raw-bytes unary echo, no protobuf), per grid size."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import torch

from coupler.bench.echo import METHOD, echo_server
from coupler.client import CouplerClient, InProcessClient
from coupler.wire.server import ServerConfig, create_server

OUTPUTS = ("hfls", "hfss", "hfdsl", "ts", "albedo", "rsus", "rlus", "evspsbl")
MAX = 1 << 30


def forcing(n: int, hour: int) -> dict[str, np.ndarray]:
    """Valid midsummer forcing for ``n`` cells (float64)."""
    rng = np.random.default_rng(hour)
    sun = max(0.0, np.sin((hour - 6) / 12 * np.pi)) * 800.0

    def jitter(value: float) -> np.ndarray:
        return value * (1.0 + 0.02 * rng.standard_normal(n))

    return {
        "tas": jitter(295.0), "huss": jitter(0.010), "ps": jitter(98_000.0),
        "sfcWind": jitter(3.0), "pr": np.zeros(n), "rsds": np.clip(jitter(sun + 1.0), 0, None),
        "rlds": jitter(350.0),
    }  # fmt: skip


def _echo_server() -> tuple[grpc.Server, int]:
    """A raw-bytes unary echo: request bytes in, ``len(OUTPUTS)/7`` as many bytes back."""
    return echo_server(lambda request: bytes(8 * (len(request) // (8 * 7)) * len(OUTPUTS)),
                       max_message=MAX)  # fmt: skip


def _timed(fn: Callable[[int], Any], steps: int) -> float:
    fn(0)  # warm-up (first step also opens buffers, JITs nothing)
    times = []
    for k in range(1, steps + 1):
        t0 = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _session_kwargs(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    return {
        "lat": rng.uniform(-60, 70, n), "lon": rng.uniform(-180, 180, n),
        "start": "2001-07-01T00:00:00", "timestep": 3600, "outputs": list(OUTPUTS),
        "backend": "reference", "land_cover": "grass",
    }  # fmt: skip


def run(
    cells: tuple[int, ...] = (16_384, 65_536, 262_144), steps: int = 3, threads: int = 1
) -> dict[str, Any]:
    """``threads``: torch intra-op threads for every path (the server's worker threads and the
    in-process caller alike), so the land computation is the same work in each column."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(cells, steps, threads)
    finally:
        torch.set_num_threads(previous)


def _run(cells: tuple[int, ...], steps: int, threads: int) -> dict[str, Any]:
    results = []
    server, port = create_server("127.0.0.1:0", ServerConfig(max_message_bytes=MAX))
    echo_server, echo_port = _echo_server()
    try:
        client = CouplerClient(f"127.0.0.1:{port}", max_message_bytes=MAX)
        local = InProcessClient()
        channel = grpc.insecure_channel(
            f"127.0.0.1:{echo_port}",
            options=[
                ("grpc.max_send_message_length", MAX),
                ("grpc.max_receive_message_length", MAX),
            ],
        )
        bare = channel.unary_unary(METHOD)
        for n in cells:
            row: dict[str, Any] = {
                "cells": n,
                "bytes_in": 8 * n * 7,
                "bytes_out": 8 * n * len(OUTPUTS),
            }
            kwargs = _session_kwargs(n)
            inputs = [forcing(n, 12 + k) for k in range(steps + 1)]
            transports: tuple[tuple[str, Any, bool], ...] = (
                ("inprocess", local, False),
                ("grpc_unary", client, False),
                ("grpc_stream", client, True),
            )
            for label, transport, stream in transports:
                session = transport.open_session(**kwargs, stream=stream)

                def step(k: int, s: Any = session, f: list = inputs) -> Any:
                    return s.step(k, f[k])

                row[label] = _timed(step, steps)
                session.close()
            payload = np.zeros(n * 7).tobytes()

            def echo(k: int, p: bytes = payload) -> Any:
                return bare(p)

            row["bare_grpc"] = _timed(echo, steps)
            row["overhead_unary"] = row["grpc_unary"] - row["inprocess"]
            row["overhead_stream"] = row["grpc_stream"] - row["inprocess"]
            results.append(row)
        channel.close()
        client.close()
    finally:
        server.stop(None)
        echo_server.stop(None)
    return {
        "benchmark": "service", "steps": steps, "threads": threads, "outputs": list(OUTPUTS),
        "results": results,
    }  # fmt: skip


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "## Coupled step over gRPC vs in-process (`make bench-service`)",
        "",
        "Reference land model (grass cells, hourly step, 7 forcing fields in and "
        f"{len(payload['outputs'])} fields out, float64, loopback), median of "
        f"{payload['steps']} steps after one warm-up, torch threads = {payload['threads']}. "
        "`bare gRPC` is a raw-bytes unary echo of "
        f"the same bytes (no protobuf, no land model). Machine: {payload['machine']}.",
        "",
        "| cells | MB in + out | in-process [ms] | gRPC unary [ms] | gRPC stream [ms] | "
        "bare gRPC [ms] | unary − in-process [ms] | stream − in-process [ms] |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["results"]:
        mb = (r["bytes_in"] + r["bytes_out"]) / 1e6
        ms = {
            k: 1e3 * r[k]
            for k in (
                "inprocess",
                "grpc_unary",
                "grpc_stream",
                "bare_grpc",
                "overhead_unary",
                "overhead_stream",
            )
        }
        lines.append(
            f"| {r['cells']:,} | {mb:.1f} | {ms['inprocess']:.1f} | {ms['grpc_unary']:.1f} | "
            f"{ms['grpc_stream']:.1f} | {ms['bare_grpc']:.1f} | {ms['overhead_unary']:.1f} | "
            f"{ms['overhead_stream']:.1f} |"
        )
    return "\n".join(lines)
