"""The Markdown section of ``make bench-wire`` (``coupler.bench.wire``)."""

from __future__ import annotations

from typing import Any


def markdown(p: dict[str, Any]) -> str:
    e = p["end_to_end"]
    s = {k: 1e3 * v for k, v in e["seconds"].items()}
    mb_in, mb_out = e["request_bytes"] / 1e6, e["reply_bytes"] / 1e6
    mb_f32 = e.get("reply_bytes_f32", 0) / 1e6
    lines = [
        "## A big step at the wire floor (`make bench-wire`)",
        "",
        f"{p['cells']:,} cells (reference backend, grass, 1 member), 7 float32 forcing fields "
        f"in ({mb_in:.1f} MB serialized) and {len(p['outputs'])} outputs out, float64 "
        f'({mb_out:.1f} MB) or, asked with `reply_dtype="float32"`, float32 ({mb_f32:.1f} MB: '
        "the acceptance's float32 on the wire both ways), loopback, "
        f"torch threads = {p['threads']}, median of {p['steps']} "
        "steps after one warm-up, the columns interleaved step by step. gRPC over TCP loopback, "
        "and unary over a Unix-domain socket (`unix`); `shm` is the co-located path (the "
        "arrays through a shared-memory segment, gRPC over TCP loopback carrying only control "
        "messages). `echo` is a raw-bytes grpcio unary call carrying exactly the step's "
        "serialized request and a reply of the step's reply size (no protobuf, no model; "
        "`echo f32`: the float32 reply's size); `memcpy` copies the float64 step's bytes once. "
        f"Machine: {p['machine']}.",
        "",
        "| in-process | gRPC unary | gRPC stream | gRPC unix | shm | echo | memcpy "
        "| replies bitwise equal |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {s['inprocess']:.0f} ms | {s['grpc_unary']:.0f} ms | {s['grpc_stream']:.0f} ms | "
        f"{_ms(s, 'grpc_unix')} | {_ms(s, 'shm')} | {s['echo']:.1f} ms | {s['memcpy']:.1f} ms | "
        f"{'yes' if e['bitwise_equal'] else 'NO'} |",
        "",
        "| float32 replies: gRPC unary | gRPC stream | echo f32 | bitwise the in-process "
        "reply rounded to float32 |",
        "|---:|---:|---:|---|",
        f"| {s['grpc_unary_f32']:.0f} ms | {s['grpc_stream_f32']:.0f} ms | "
        f"{s['echo_f32']:.1f} ms | {'yes' if e['bitwise_equal_f32'] else 'NO'} |",
        "",
        "Overhead of the wire over the in-process step, against the echo of the same bytes "
        "(target ≤ 1.3×). *Paired*: per step, the wall time minus the validation and land time "
        "measured inside that same step, so the seconds of land work and their noise cancel:",
        "",
        "| transport | gRPC − in-process [ms] | / echo | paired [ms] | paired / echo |",
        "|:---|---:|---:|---:|---:|",
    ]
    names = {
        "grpc_unary": "unary, float64 reply", "grpc_stream": "stream, float64 reply",
        "grpc_unix": "unary over a Unix socket, float64 reply",
        "grpc_unary_f32": "unary, float32 reply (vs echo f32)",
        "grpc_stream_f32": "stream, float32 reply (vs echo f32)",
    }  # fmt: skip
    for label, name in names.items():
        if label not in e:
            continue
        r = e[label]
        lines.append(
            f"| {name} | {1e3 * r['overhead']:.1f} | "
            f"{r['ratio_to_echo']:.2f}× | {1e3 * r['overhead_paired']:.1f} | "
            f"{r['paired_ratio_to_echo']:.2f}× |"
        )
    if "shm" in e:
        r = e["shm"]
        lines += [
            "",
            "The co-located path's *exchange* (moving the forcing in and the outputs back: the "
            "step's wall time minus the in-process step, paired as above) against a memcpy of "
            "the same bytes (target ≤ 3×):",
            "",
            "| path | shm − in-process [ms] | / memcpy | paired exchange [ms] | paired / memcpy |",
            "|:---|---:|---:|---:|---:|",
            f"| shared memory | {1e3 * r['overhead']:.1f} | {r['ratio_to_memcpy']:.2f}× | "
            f"{1e3 * r['overhead_paired']:.1f} | {r['paired_ratio_to_memcpy']:.2f}× |",
        ]
    lines += [
        "",
        "Phases of the same step, each timed alone on the same data (median of "
        f"{p['steps']}; the in-process step is validation + conversion + tensors + land step + "
        "reply statistics):",
        "",
        "| side | phase | ms |",
        "|:---|:---|---:|",
    ]
    lines += [f"| {side} | {name} | {1e3 * sec:.2f} |" for side, name, sec in p["phases"]]
    lines += [
        "",
        "Per-cell cost of the reference land step (1 member, all 8 tiles computed per cell, "
        "float64, the threads above), set up as `bench-service` does (grass cells, noon "
        "forcing) and as `bench-emulators` does (1–3 classes per cell), over the whole domain "
        "at once and in blocks of 8,192 cells (`ReferenceConfig.cell_block`, the default):",
        "",
        "| cells | setup | whole [ms] | µs / tile-step | blocks [ms] | µs / tile-step | speed-up |",
        "|---:|:---|---:|---:|---:|---:|---:|",
    ]
    for r in p["per_cell"]:
        for label in ("service", "emulators"):
            whole, blocks = r[f"{label}_whole"], r[f"{label}_blocks"]
            lines.append(
                f"| {r['cells']:,} | bench-{label} | {1e3 * whole:.0f} | "
                f"{1e6 * whole / r['tiles']:.2f} | {1e3 * blocks:.0f} | "
                f"{1e6 * blocks / r['tiles']:.2f} | {whole / blocks:.2f}× |"
            )
    return "\n".join(lines)


def _ms(seconds_ms: dict[str, float], label: str) -> str:
    return f"{seconds_ms[label]:.0f} ms" if label in seconds_ms else "—"
