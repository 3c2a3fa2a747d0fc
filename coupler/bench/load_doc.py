"""The ``bench:load`` section of docs/benchmarks.md (``make bench-load``)."""

from __future__ import annotations

from typing import Any

LABELS = {
    "today": "today: no batching, torch default threads",
    "unbatched": "no batching, `--torch-threads 1`",
    "batched": "batched, `--torch-threads 1`",
    "workers": "batched, `--torch-threads 1`, `--workers {workers}` (front + {workers} worker "
    "processes)",
}


def markdown(p: dict[str, Any]) -> str:
    runs, costs, echo = p["runs"], p["step_costs"], p["echo"]
    full = p["sessions"] >= 100 and max(r["steps"] for r in runs) >= 1000
    heading = (
        "## Many ranks at once (`make bench-load`)"
        if full
        else f"### A short run: {p['sessions']} sessions, at most "
        f"{max(r['steps'] for r in runs)} steps each (`make bench-load LOAD_FLAGS=...`)"
    )
    lines = [
        heading,
        "",
        f"{p['sessions']} sessions × {p['cells']} cells (reference backend, hourly steps, 7 "
        f"float64 forcing fields in, 8 outputs back) driven by {p['threads']} client threads "
        f"(Python client, {p['transport']} `Step`, one channel per thread) in the benchmark "
        "process against a `landcoupler serve` process on loopback"
        + (
            " (the workers row: a front process and its worker processes)"
            if p.get("workers", 1) > 1
            else ""
        )
        + ". Every reply is compared "
        "bitwise with an in-process run of the same session (no gRPC, no batching); lost or "
        "doubled steps are checked on both sides (each session's last index resent: accepted "
        "only at exactly N; the server's `landcoupler_steps_total` = sessions × steps). "
        f"Batch window {p['window_ms']:g} ms. Machine: {p.get('machine', '?')}.",
        "",
        "| server | steps / session | steps | steps/s | errors | replies ≠ in-process | "
        "server steps | server RSS start → end (peak) [MiB] | server CPU / step [ms] "
        "(of it kernel) | server context switches / step | client CPU / step [ms] | "
        "mean batch [sessions] |",
        "|:---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        batch = r["mean_batch_sessions"]
        lines.append(
            f"| {LABELS.get(r['name'], r['name']).format(workers=p.get('workers', '?'))} | "
            f"{r['steps']:,} | {r['steps_done']:,} | "
            f"{r['steps_per_s']:.1f} | {r['errors']} | {r['mismatched_replies']} | "
            f"{r['server_steps']:,.0f} | {r['rss_start_mib']:.0f} → {r['rss_end_mib']:.0f} "
            f"({r['rss_peak_mib']:.0f}) | {r['server_cpu_ms_per_step']:.2f} "
            f"({r.get('server_sys_ms_per_step', float('nan')):.2f}) | "
            f"{r.get('server_switches_per_step', float('nan')):.0f} | "
            f"{r['client_cpu_ms_per_step']:.2f} | {'—' if batch is None else f'{batch:.1f}'} |"
        )
    ratios = ", ".join(f"{k}: **{v:.1f}×**" for k, v in p["ratios"].items())
    issue = p["issue_baseline_steps_per_s"]
    batched = next((r for r in runs if r["name"] == "batched"), None)
    lines += ["", f"Ratios in this run: {ratios}."]
    multi = next((r for r in runs if r["name"] == "workers"), None)
    if multi is not None and multi.get("front_cpu_ms_per_step") is not None:
        lines[-1] += (
            f" With workers, the server's CPU per step ({multi['server_cpu_ms_per_step']:.2f} ms, "
            f"{multi['processes']} processes) includes the front's "
            f"{multi['front_cpu_ms_per_step']:.2f} ms (forwarding the bytes)."
        )
    if batched is not None:
        lines[-1] += (
            f" Against the issue's {issue:g} steps/s: {batched['steps_per_s'] / issue:.1f}× "
            f"(target 20×)."
        )
    lines += [
        "",
        "Where a step's time goes (batched server; phases from the server's Prometheus "
        "histograms, mean per step, `land` includes the wait for the batch window; costs "
        "in-process with 1 torch thread, median):",
        "",
        "| what | ms |",
        "|:---|---:|",
    ]
    if batched is not None:
        for phase, ms in batched["phase_ms"].items():
            lines.append(f"| server phase `{phase}` (wall) | {ms:.3f} |")
    lines += [
        f"| in-process session step, {p['cells']} cells (validate + backend + reply "
        f"statistics + residuals) | {costs['session_step_ms']:.3f} |",
        f"| backend step alone, {p['cells']} cells | {costs['backend_ms']:.3f} |",
        f"| backend step joined, {costs['joined_sessions']} × {p['cells']} cells, per "
        f"session | {costs['joined_backend_ms_per_session']:.3f} |",
        f"| raw-bytes gRPC echo ({echo['request_bytes']:,} B in, {echo['reply_bytes']:,} B "
        f"out, {echo['threads']} threads, separate server process): per call "
        f"| {1e3 / echo['calls_per_s']:.3f} |",
        f"| the same echo: server CPU per call | "
        f"{echo.get('server_cpu_ms_per_call', float('nan')):.3f} |",
        "",
        f"The echo floor: {echo['calls_per_s']:.0f} calls/s with nothing but Python gRPC on "
        "both sides. In-process reference run of all sessions: "
        f"{p['reference_s']:.0f} s. JSON: "
        + ("`out/bench-load.json`." if full else "the run's `--json` file."),
    ]
    return "\n".join(lines)
