"""The figures of ``landcoupler bench summary`` (``summary.SECTIONS``): each reads one ratio
out of a section's JSON payload and writes it as the table shows it; a payload without the
fields raises ``KeyError`` (the summary reports an older format)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Payload = dict[str, Any]


def times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def per_item(items: Iterable[tuple[str, float]]) -> str:
    return "; ".join(f"{label}: {times(r)}" for label, r in items)


# -- bench-wire: one big step against the echo and memcpy of the same bytes ------------------


def wire(transport: str, floor: str) -> Callable[[Payload], str]:
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
        return f"{times(paired)} paired, {times(unpaired)} unpaired ({p['cells']:,} cells)"

    return value


def echo_over_memcpy(p: Payload) -> str:
    s = p["end_to_end"]["seconds"]
    return f"{times(s['echo'] / s['memcpy'])} ({p['cells']:,} cells)"


# -- bench-service: per grid size, the wire's cost against the bare echo ----------------------


def service(transport: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        rows = p["results"]
        return per_item(
            (f"{r['cells']:,}", r[f"overhead_{transport}"] / r["bare_grpc"]) for r in rows
        )

    return value


# -- bench-load: many ranks on one server ----------------------------------------------------


def case(p: Payload, name: str) -> Payload:
    for r in p["runs"]:
        if r["name"] == name:
            return dict(r)
    raise KeyError(f"no {name!r} run")


def load_vs(name: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        b, o = case(p, "batched")["steps_per_s"], case(p, name)["steps_per_s"]
        return f"{times(b / o)} ({b:.1f} vs {o:.1f} steps/s)"

    return value


def load_workers(p: Payload) -> str:
    w, b = case(p, "workers")["steps_per_s"], case(p, "batched")["steps_per_s"]
    return f"{times(w / b)} ({w:.1f} vs {b:.1f} steps/s, {p.get('workers', '?')} workers)"


def load_vs_echo(p: Payload) -> str:
    b, echo = case(p, "batched")["steps_per_s"], p["echo"]["calls_per_s"]
    return f"{times(b / echo)} ({b:.1f} steps/s vs {echo:.0f} calls/s)"


def load_vs_issue(p: Payload) -> str:
    b, issue = case(p, "batched")["steps_per_s"], p["issue_baseline_steps_per_s"]
    return f"{times(b / issue)} ({b:.1f} vs {issue:g} steps/s)"


def load_checks(p: Payload) -> str:
    runs = p["runs"]
    errors = sum(r["errors"] for r in runs)
    mismatched = sum(r["mismatched_replies"] for r in runs)
    off = sum(abs(r["server_steps"] - r["total_steps"]) for r in runs)
    off += sum(r["resends"] - r["resend_ok"] for r in runs)
    total = sum(r["total_steps"] for r in runs)
    b = case(p, "batched")
    return (
        f"{errors} / {mismatched} / {off:g} of {total:,} steps in {len(runs)} servers; "
        f"batched RSS {b['rss_start_mib']:.0f} → {b['rss_end_mib']:.0f} MiB"
    )


# -- bench-replay, bench-run: whole runs --------------------------------------------------------


def replay(key: str, part: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        r = p[part]
        n = r["workers"]
        workers = f"{n} worker{'' if n == 1 else 's'}"
        return f"{times(p[key])} ({workers}, bitwise equal: {r['bitwise_equal']})"

    return value


def run_grpc_over_inprocess(p: Payload) -> str:
    cases = p["cases"]
    backend = cases[0]["backend"]  # the first backend case() measures is its reference one
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
    return f"{per_item(pairs)} ({backend}, {cases[0]['timestep_s']} s steps)"


# -- the backends' own floors ------------------------------------------------------------------


def emulator(key: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        if any(key not in r for r in p["results"]):  # a run before this backend was measured
            return "not measured"
        return per_item((f"{r['cells']:,}", r[key]) for r in p["results"])

    return value


def emulator_of_bound(p: Payload) -> str:
    rows = p["results"]
    return per_item(
        (f"{r['cells']:,}", r["speedup_torchscript_active"] / r["speedup_bound"]) for r in rows
    )


def network_roofline(loader: str) -> Callable[[Payload], str]:
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


def outside_share(key: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        from coupler.bench.emulators_doc import outside_share

        if any(key not in r for r in p["results"]):
            return "not measured"
        return per_item((f"{r['cells']:,}", outside_share(r[key])) for r in p["results"])

    return value


def triton(name: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        return per_item((f"{r['cells']:,}", r[name] / r["torchscript"]) for r in p["results"])

    return value


def clients(client: str, floor: str) -> Callable[[Payload], str]:
    def value(p: Payload) -> str:
        return per_item(
            (
                f"{r['cells']:,} {r['dtype']}",
                r["echo"][client]["median_ms"] / r["echo"][floor]["median_ms"],
            )
            for r in p["runs"]
        )

    return value
