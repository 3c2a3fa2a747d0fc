"""``landcoupler bench summary``: the headline ratios against the floors (memcpy, the raw-bytes
gRPC echo, the in-process step), read from the JSON files the ``make bench-*`` targets write.

It measures nothing: every figure comes from one section's JSON file, named with the timestamp
that file records. A missing file gives "not measured"; a file without a figure's fields (an
older format) or one that is not JSON says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coupler.bench import summary_figures as fig

NOT_MEASURED = "not measured"
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")

Payload = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One row: what the ratio is, the target the issues set (or "—"), how to read it."""

    what: str
    target: str
    value: Callable[[Payload], str]


@dataclass(frozen=True)
class Section:
    target: str  # the make target that writes the file
    filename: str
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Row:
    section: str
    what: str
    value: str
    target: str
    source: str


ECHO = "raw-bytes gRPC echo of the same bytes"
SECTIONS: tuple[Section, ...] = (
    Section("bench-wire", "bench-wire.json", (
        Figure(f"gRPC unary step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               fig.wire("grpc_unary", "echo")),
        Figure(f"gRPC stream step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               fig.wire("grpc_stream", "echo")),
        Figure(f"float32 both ways: gRPC unary step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               fig.wire("grpc_unary_f32", "echo")),
        Figure(f"float32 both ways: gRPC stream step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               fig.wire("grpc_stream_f32", "echo")),
        Figure("gRPC unary step − in-process step, ÷ memcpy of the same bytes", "—",
               fig.wire("grpc_unary", "memcpy")),
        Figure("gRPC stream step − in-process step, ÷ memcpy of the same bytes", "—",
               fig.wire("grpc_stream", "memcpy")),
        Figure(f"{ECHO} ÷ memcpy of the same bytes", "—", fig.echo_over_memcpy),
        Figure("co-located exchange (shared memory: shm step − in-process step) ÷ memcpy of "
               "the same bytes", "≤ 3×", fig.wire("shm", "memcpy")),
        Figure(f"gRPC unary step over a Unix socket − in-process step, ÷ {ECHO}", "—",
               fig.wire("grpc_unix", "echo")),
    )),
    Section("bench-service", "bench-service.json", (
        Figure(f"gRPC unary step − in-process step, ÷ {ECHO}, per cells", "—",
               fig.service("unary")),
        Figure(f"gRPC stream step − in-process step, ÷ {ECHO}, per cells", "—",
               fig.service("stream")),
    )),
    Section("bench-load", "bench-load.json", (
        Figure("batched server steps/s ÷ the raw-bytes echo's calls/s (same threads, sizes)",
               "—", fig.load_vs_echo),
        Figure("batched ÷ unbatched single-process server, steps/s (same run)", "stated, no bound",
               fig.load_vs("unbatched")),
        Figure("batched ÷ today's server (no batching, default threads), steps/s", "—",
               fig.load_vs("today")),
        Figure("batched steps/s ÷ the issue's 42 steps/s", "≥ 20×", fig.load_vs_issue),
        Figure("front + worker processes ÷ batched single process, steps/s (same run)",
               "stated, no bound", fig.load_workers),
        Figure("errors / replies ≠ in-process / steps lost or doubled (all servers)",
               "0 / 0 / 0", fig.load_checks),
    )),
    Section("bench-replay", "bench-replay.json", (
        Figure("replay run steps/s ÷ the coupled run that recorded it, serial", "≥ 5×",
               fig.replay("ratio", "replay")),
        Figure("replay run steps/s ÷ the coupled run, parallel workers", "≥ 5×",
               fig.replay("parallel_ratio", "parallel")),
    )),
    Section("bench-run", "bench-run.json", (
        Figure("coupled run over gRPC ÷ in-process, ms per step, per resolution", "—",
               fig.run_grpc_over_inprocess),
    )),
    Section("bench-emulators", "bench-emulators.json", (
        Figure("reference step ÷ emulator step (TorchScript, active tiles), per cells", "—",
               fig.emulator("speedup_torchscript_active")),
        Figure("that speed-up with the `fused` backend", "—", fig.emulator("speedup_fused_active")),
        Figure("that speed-up ÷ its bound, the flux network alone, per cells", "—",
               fig.emulator_of_bound),
        Figure("flux network alone (TorchScript, the backend's rows per call) GFLOP/s ÷ "
               "float32 matmul peak of the same run, per cells", "≥ 0.5 (within 2×)",
               fig.network_roofline("torchscript")),
        Figure("flux network alone, `fused` backend (native fused operator): the same fraction",
               "≥ 0.5 (within 2×)",
               fig.network_roofline("fused")),
        Figure("emulator step outside the flux network ÷ the network's own time (TorchScript, "
               "active tiles), per cells", "≤ 1×", fig.outside_share("phases")),
        Figure("emulator step outside the flux network ÷ the network's own time, `fused` "
               "backend", "≤ 1×", fig.outside_share("phases_fused")),
        Figure("like for like: reference step ÷ emulator step, both all 8 tiles, same cells, "
               "forcing, threads (TorchScript), per cells", "reported",
               fig.emulator("speedup_torchscript_all")),
        Figure("like for like with the `fused` backend", "reported",
               fig.emulator("speedup_fused_all")),
    )),
    Section("bench-triton", "bench-triton.json", (
        Figure("Triton step (shared memory) ÷ in-process TorchScript step, per cells", "—",
               fig.triton("triton_shm")),
        Figure("Triton step (tensors in gRPC) ÷ in-process TorchScript step, per cells", "—",
               fig.triton("triton_plain")),
    )),
    Section("bench-clients", "bench-clients.json", (
        Figure("C client step ÷ the grpc++ stub sending the same bytes (no model)", "—",
               fig.clients("c", "grpcpp")),
        Figure("Python client step ÷ grpcio raw bytes (no model)", "—",
               fig.clients("python", "grpcio")),
    )),
)  # fmt: skip


def timestamp(payload: Payload) -> str:
    """The run's date as the section records it (``machine``: a string or a dict)."""
    m = payload.get("machine")
    if isinstance(m, dict) and isinstance(m.get("date"), str):
        return str(m["date"])
    found = DATE.search(m) if isinstance(m, str) else None
    return found.group(0) if found else "no timestamp in the JSON"


def _load(path: Path) -> tuple[Payload | None, str]:
    """(payload, problem): payload None with the reason when the file gives no figures."""
    if not path.exists():
        return None, "missing"
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(payload, dict):
        return None, f"unreadable (a JSON {type(payload).__name__}, not an object)"
    return payload, ""


def rows(directory: str | Path, shown_as: str | None = None) -> list[Row]:
    """Every figure of :data:`SECTIONS` from the JSON files in ``directory`` (file names shown
    under ``shown_as``, default the directory as given)."""
    directory = Path(directory)
    prefix = str(directory) if shown_as is None else shown_as
    out: list[Row] = []
    for s in SECTIONS:
        if not s.filename:  # nothing to read: the figure states why
            out += [Row(s.target, f.what, f.value({}), f.target, "—") for f in s.figures]
            continue
        shown = f"`{prefix.rstrip('/')}/{s.filename}`"
        payload, problem = _load(directory / s.filename)
        if payload is None:
            value = NOT_MEASURED if problem == "missing" else f"{NOT_MEASURED}: file {problem}"
            out += [
                Row(s.target, f.what, value, f.target, f"{shown}: {problem}") for f in s.figures
            ]
            continue
        source = f"{shown}, {timestamp(payload)}"
        for f in s.figures:
            try:
                value = f.value(payload)
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
                value = f"{NOT_MEASURED}: not in this JSON ({type(exc).__name__}: {exc})"
            out.append(Row(s.target, f.what, value, f.target, source))
    return out


def markdown(table: list[Row], directory: str, generated: str) -> str:
    shown = directory.rstrip("/") + "/"
    lines = [
        "## Against the floors (`make bench`, `landcoupler bench summary`)",
        "",
        "The headline ratios of the sections below, read from their JSON files in "
        f"`{shown}` by `landcoupler bench summary --dir {directory}` ({generated}); it "
        "measures nothing. Each figure comes from the run named in its row (file and the "
        "timestamp it records): figures of different runs are not comparable to better than "
        "the machine's load allows (±30 % and more here). A row whose JSON file is absent says "
        '"not measured", even where the section below still shows figures of a run whose '
        "JSON was not kept. Targets are issue 15's (replay: issue 11's; the emulator's "
        'roofline fraction and outside-network share: issue 14\'s); "—": none set. '
        "Sections without a floor to compare with (`bench-reference`, `bench-assimilation`, "
        "`bench-gpu`) are not summarised here; no bench measures a network link's peak "
        "bandwidth, so there is no wire roofline fraction (the echo ÷ memcpy row is the "
        "nearest figure); the flux network's fraction of the CPU's float32 roofline is "
        "`bench-emulators`'.",
        "",
        "| bench | ratio | value | target | source |",
        "|:---|:---|:---|:---|:---|",
    ]
    lines += [f"| {r.section} | {r.what} | {r.value} | {r.target} | {r.source} |" for r in table]
    return "\n".join(lines)


def to_json(table: list[Row], directory: str, generated: str) -> Payload:
    return {
        "benchmark": "summary",
        "directory": directory,
        "generated": generated,
        "rows": [asdict(r) for r in table],
    }
