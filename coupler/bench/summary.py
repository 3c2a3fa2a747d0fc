"""``landcoupler bench summary``: the headline ratios against the floors (memcpy, the raw-bytes
gRPC echo, the in-process step), read from the JSON files the ``make bench-*`` targets write.

It measures nothing: every figure comes from one section's JSON file, named with the timestamp
that file records. A missing file gives "not measured"; a file without a figure's fields (an
older format) or one that is not JSON says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


def _x(ratio: float) -> str:
    return f"{ratio:.2f}×"


def _per(items: Iterable[tuple[str, float]]) -> str:
    return "; ".join(f"{label}: {_x(r)}" for label, r in items)


# -- bench-wire: one big step against the echo and memcpy of the same bytes ------------------


def _wire(transport: str, floor: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        e = p["end_to_end"]
        if transport not in e:
            return f"not measured (no {transport} in this bench-wire.json: a file from before it)"
        r, sec = e[transport], e["seconds"]
        if floor == "echo":
            paired, unpaired = r["paired_ratio_to_echo"], r["ratio_to_echo"]
        else:
            paired = r["overhead_paired"] / sec["memcpy"]
            unpaired = r["overhead"] / sec["memcpy"]
        return f"{_x(paired)} paired, {_x(unpaired)} unpaired ({p['cells']:,} cells)"

    return value


def _echo_over_memcpy(p: Payload) -> str:
    s = p["end_to_end"]["seconds"]
    return f"{_x(s['echo'] / s['memcpy'])} ({p['cells']:,} cells)"


# -- bench-service: per grid size, the wire's cost against the bare echo ----------------------


def _service(transport: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        rows = p["results"]
        return _per((f"{r['cells']:,}", r[f"overhead_{transport}"] / r["bare_grpc"]) for r in rows)

    return value


# -- bench-load: many ranks on one server ----------------------------------------------------


def _run(p: Payload, name: str) -> Payload:
    for r in p["runs"]:
        if r["name"] == name:
            return dict(r)
    raise KeyError(f"no {name!r} run")


def _load_vs(name: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        b, o = _run(p, "batched")["steps_per_s"], _run(p, name)["steps_per_s"]
        return f"{_x(b / o)} ({b:.1f} vs {o:.1f} steps/s)"

    return value


def _load_workers(p: Payload) -> str:
    w, b = _run(p, "workers")["steps_per_s"], _run(p, "batched")["steps_per_s"]
    return f"{_x(w / b)} ({w:.1f} vs {b:.1f} steps/s, {p.get('workers', '?')} workers)"


def _load_vs_echo(p: Payload) -> str:
    b, echo = _run(p, "batched")["steps_per_s"], p["echo"]["calls_per_s"]
    return f"{_x(b / echo)} ({b:.1f} steps/s vs {echo:.0f} calls/s)"


def _load_vs_issue(p: Payload) -> str:
    b, issue = _run(p, "batched")["steps_per_s"], p["issue_baseline_steps_per_s"]
    return f"{_x(b / issue)} ({b:.1f} vs {issue:g} steps/s)"


def _load_checks(p: Payload) -> str:
    runs = p["runs"]
    errors = sum(r["errors"] for r in runs)
    mismatched = sum(r["mismatched_replies"] for r in runs)
    off = sum(abs(r["server_steps"] - r["total_steps"]) for r in runs)
    off += sum(r["resends"] - r["resend_ok"] for r in runs)
    total = sum(r["total_steps"] for r in runs)
    b = _run(p, "batched")
    return (
        f"{errors} / {mismatched} / {off:g} of {total:,} steps in {len(runs)} servers; "
        f"batched RSS {b['rss_start_mib']:.0f} → {b['rss_end_mib']:.0f} MiB"
    )


# -- bench-replay, bench-run: whole runs --------------------------------------------------------


def _replay(key: str, part: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        r = p[part]
        n = r["workers"]
        workers = f"{n} worker{'' if n == 1 else 's'}"
        return f"{_x(p[key])} ({workers}, bitwise equal: {r['bitwise_equal']})"

    return value


def _run_grpc_over_inprocess(p: Payload) -> str:
    cases = p["cases"]
    backend = cases[0]["backend"]  # the first backend run() measures is its reference one
    ms = {
        (c["resolution_deg"], c["transport"]): c["ms_per_step"]
        for c in cases
        if c["backend"] == backend and c["timestep_s"] == cases[0]["timestep_s"]
    }
    pairs = [
        (f"{res:g}°", ms[(res, "grpc")] / ms[(res, "inprocess")])
        for res, transport in ms
        if transport == "grpc" and (res, "inprocess") in ms
    ]
    if not pairs:
        raise KeyError("no resolution with both grpc and inprocess cases")
    return f"{_per(pairs)} ({backend}, {cases[0]['timestep_s']} s steps)"


# -- the backends' own floors ------------------------------------------------------------------


def _emulator(key: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        if any(key not in r for r in p["results"]):  # a run before this backend was measured
            return "not measured"
        return _per((f"{r['cells']:,}", r[key]) for r in p["results"])

    return value


def _emulator_of_bound(p: Payload) -> str:
    rows = p["results"]
    return _per(
        (f"{r['cells']:,}", r["speedup_torchscript_active"] / r["speedup_bound"]) for r in rows
    )


def _network_roofline(loader: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        from coupler.bench.emulators_doc import backend_call

        parts = []
        for r in p["results"]:
            try:
                call = backend_call(p, r, loader)
            except StopIteration:  # a run before this loader was measured
                return "not measured"
            parts.append(
                f"{r['cells']:,}: {call['fraction']:.2f} ({call['gflops']:.0f} of "
                f"{call['peak_gflops']:.0f} GFLOP/s, {call['batch']:,} rows per call)"
            )
        return "; ".join(parts)

    return value


def _outside_share(key: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        from coupler.bench.emulators_doc import outside_share

        if any(key not in r for r in p["results"]):
            return "not measured"
        return _per((f"{r['cells']:,}", outside_share(r[key])) for r in p["results"])

    return value


def _triton(name: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        return _per((f"{r['cells']:,}", r[name] / r["torchscript"]) for r in p["results"])

    return value


def _clients(client: str, floor: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        return _per(
            (
                f"{r['cells']:,} {r['dtype']}",
                r["echo"][client]["median_ms"] / r["echo"][floor]["median_ms"],
            )
            for r in p["runs"]
        )

    return value


ECHO = "raw-bytes gRPC echo of the same bytes"
SECTIONS: tuple[Section, ...] = (
    Section("bench-wire", "bench-wire.json", (
        Figure(f"gRPC unary step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               _wire("grpc_unary", "echo")),
        Figure(f"gRPC stream step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               _wire("grpc_stream", "echo")),
        Figure(f"float32 both ways: gRPC unary step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               _wire("grpc_unary_f32", "echo")),
        Figure(f"float32 both ways: gRPC stream step − in-process step, ÷ {ECHO}", "≤ 1.3×",
               _wire("grpc_stream_f32", "echo")),
        Figure("gRPC unary step − in-process step, ÷ memcpy of the same bytes", "—",
               _wire("grpc_unary", "memcpy")),
        Figure("gRPC stream step − in-process step, ÷ memcpy of the same bytes", "—",
               _wire("grpc_stream", "memcpy")),
        Figure(f"{ECHO} ÷ memcpy of the same bytes", "—", _echo_over_memcpy),
        Figure("co-located exchange (shared memory: shm step − in-process step) ÷ memcpy of "
               "the same bytes", "≤ 3×", _wire("shm", "memcpy")),
        Figure(f"gRPC unary step over a Unix socket − in-process step, ÷ {ECHO}", "—",
               _wire("grpc_unix", "echo")),
    )),
    Section("bench-service", "bench-service.json", (
        Figure(f"gRPC unary step − in-process step, ÷ {ECHO}, per cells", "—",
               _service("unary")),
        Figure(f"gRPC stream step − in-process step, ÷ {ECHO}, per cells", "—",
               _service("stream")),
    )),
    Section("bench-load", "bench-load.json", (
        Figure("batched server steps/s ÷ the raw-bytes echo's calls/s (same threads, sizes)",
               "—", _load_vs_echo),
        Figure("batched ÷ unbatched single-process server, steps/s (same run)", "stated, no bound",
               _load_vs("unbatched")),
        Figure("batched ÷ today's server (no batching, default threads), steps/s", "—",
               _load_vs("today")),
        Figure("batched steps/s ÷ the issue's 42 steps/s", "≥ 20×", _load_vs_issue),
        Figure("front + worker processes ÷ batched single process, steps/s (same run)",
               "stated, no bound", _load_workers),
        Figure("errors / replies ≠ in-process / steps lost or doubled (all servers)",
               "0 / 0 / 0", _load_checks),
    )),
    Section("bench-replay", "bench-replay.json", (
        Figure("replay run steps/s ÷ the coupled run that recorded it, serial", "≥ 5×",
               _replay("ratio", "replay")),
        Figure("replay run steps/s ÷ the coupled run, parallel workers", "≥ 5×",
               _replay("parallel_ratio", "parallel")),
    )),
    Section("bench-run", "bench-run.json", (
        Figure("coupled run over gRPC ÷ in-process, ms per step, per resolution", "—",
               _run_grpc_over_inprocess),
    )),
    Section("bench-emulators", "bench-emulators.json", (
        Figure("reference step ÷ emulator step (TorchScript, active tiles), per cells", "—",
               _emulator("speedup_torchscript_active")),
        Figure("that speed-up with the `fused` backend", "—", _emulator("speedup_fused_active")),
        Figure("that speed-up ÷ its bound, the flux network alone, per cells", "—",
               _emulator_of_bound),
        Figure("flux network alone (TorchScript, the backend's rows per call) GFLOP/s ÷ "
               "float32 matmul peak of the same run, per cells", "≥ 0.5 (within 2×)",
               _network_roofline("torchscript")),
        Figure("flux network alone, `fused` backend (native fused operator): the same fraction",
               "≥ 0.5 (within 2×)",
               _network_roofline("fused")),
        Figure("emulator step outside the flux network ÷ the network's own time (TorchScript, "
               "active tiles), per cells", "≤ 1×", _outside_share("phases")),
        Figure("emulator step outside the flux network ÷ the network's own time, `fused` "
               "backend", "≤ 1×", _outside_share("phases_fused")),
        Figure("like for like: reference step ÷ emulator step, both all 8 tiles, same cells, "
               "forcing, threads (TorchScript), per cells", "reported",
               _emulator("speedup_torchscript_all")),
        Figure("like for like with the `fused` backend", "reported",
               _emulator("speedup_fused_all")),
    )),
    Section("bench-triton", "bench-triton.json", (
        Figure("Triton step (shared memory) ÷ in-process TorchScript step, per cells", "—",
               _triton("triton_shm")),
        Figure("Triton step (tensors in gRPC) ÷ in-process TorchScript step, per cells", "—",
               _triton("triton_plain")),
    )),
    Section("bench-clients", "bench-clients.json", (
        Figure("C client step ÷ the grpc++ stub sending the same bytes (no model)", "—",
               _clients("c", "grpcpp")),
        Figure("Python client step ÷ grpcio raw bytes (no model)", "—",
               _clients("python", "grpcio")),
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
