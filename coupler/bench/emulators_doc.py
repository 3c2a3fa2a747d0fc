"""The Markdown section of ``make bench-emulators`` (``coupler.bench.emulators.markdown``):
speed-ups, the network under the CPU's float32 roofline, where a step's time goes, and the
like-for-like ratios against the reference model."""

from __future__ import annotations

from typing import Any

from emulators.compiled.phases import PHASES

Payload = dict[str, Any]


def network_calls(payload: Payload, row: Payload) -> list[Payload]:
    """The network-alone timings of a result row with GFLOP/s and fraction of the paired peak."""
    flops = payload["roofline"]["flops_per_row"]["gemm"] * row["network"]["rows"]
    out = []
    for call in row["network"]["calls"]:
        gflops = flops / call["seconds"] / 1e9
        out.append({**call, "gflops": gflops, "fraction": gflops / call["peak_gflops"]})
    return out


def backend_call(payload: Payload, row: Payload) -> Payload:
    """The network-alone timing at the rows per call the backend uses (TorchScript)."""
    batch = min(payload["roofline"]["row_block"], payload["roofline"]["chunk_rows"])
    calls = network_calls(payload, row)
    return next(c for c in calls if c["loader"] == "torchscript" and c["batch"] == batch)


def outside_share(phases: Payload) -> float:
    """A step's time outside the flux network ÷ the network's own."""
    return (phases["total"] - phases["network"]) / phases["network"]


def _speedups(payload: Payload) -> list[str]:
    lines = [
        "| cells | active tiles | reference ms/step | backend | tiles | ms/step | speed-up |",
        "|---:|---:|---:|:---|:---|---:|---:|",
    ]
    for r in payload["results"]:
        for key in ("torchscript_active", "torchscript_all", "aoti_active", "aoti_all"):
            loader, tiles = key.split("_")
            lines.append(
                f"| {r['cells']:,} | {r['active_tiles']:,} | {1e3 * r['reference']:.1f} | "
                f"{loader} | {tiles} | {1e3 * r[key]:.2f} | {r['speedup_' + key]:.1f}× |"
            )
    return lines


def _roofline(payload: Payload) -> list[str]:
    roof = payload["roofline"]
    f = roof["flops_per_row"]
    peak = max(roof["matmul_before"]["gflops"], roof["matmul_after"]["gflops"])
    bw = roof["copy"]["gb_per_s"]
    lines = [
        "",
        "**The flux network under the roofline.** Peak: float32 `torch.mm` of two "
        f"{roof['matmul_before']['n']}² matrices at {payload['threads']} threads, "
        f"{roof['matmul_before']['gflops']:.0f} GFLOP/s at the start of the run and "
        f"{roof['matmul_after']['gflops']:.0f} at its end; each network timing below is paired "
        "with a peak measured just before it (the machine's load moves both). Memory: a "
        f"{roof['copy']['mib']} MiB float32 copy moves {bw:.1f} GB/s (read + write), so the "
        f"ridge point is ≈ {peak / bw:.0f} FLOP/byte. FLOPs per row and step of `flux_lstm` "
        f"from its config: input projection and task gates {f['input']:,}, recurrent "
        f"projection {f['recurrent']:,}, task heads {f['heads']:,}: **{f['gemm']:,}** in matrix "
        f"products (torch's `FlopCounterMode` on the eager module counts "
        f"{roof['flops_counted']:,.0f}), plus ≈ {f['elementwise']:,} elementwise FLOPs and "
        "the sigmoid/tanh/SiLU evaluations. A row reads x, h, c and writes y, h, c: 700 bytes, "
        f"so at least {f['gemm'] / 700:.0f} FLOP/byte, far right of the ridge: the network's "
        "roofline is the matmul peak. Rows of a real step (the active tiles after a warm-up "
        "step), network alone, all rows in calls of the given size:",
        "",
        "| cells | rows | format | rows per call | ms per step | GFLOP/s | peak GFLOP/s "
        "(paired) | fraction of peak |",
        "|---:|---:|:---|---:|---:|---:|---:|---:|",
    ]
    for r in payload["results"]:
        for c in network_calls(payload, r):
            lines.append(
                f"| {r['cells']:,} | {r['network']['rows']:,} | {c['loader']} | {c['batch']:,} | "
                f"{1e3 * c['seconds']:.2f} | {c['gflops']:.1f} | {c['peak_gflops']:.0f} | "
                f"{c['fraction']:.2f} |"
            )
    return lines


def _phases(payload: Payload) -> list[str]:
    lines = [
        "",
        "**Where a step's time goes** (TorchScript, active tiles, ms per step, phases timed "
        "inside the backend's step: `emulators.compiled.phases`; *cells*: the rest of "
        "`step`, i.e. forcing check, cover-weighted cell fields, leaf nitrogen). Blocks: rows "
        f"stepped {payload['roofline']['row_block']:,} at a time (the default) or all at once "
        "(the backend before blocks):",
        "",
        "| cells | rows per block | " + " | ".join(PHASES) + " | cells | total | "
        "outside the network ÷ network |",
        "|---:|:---|" + "---:|" * (len(PHASES) + 3),
    ]
    for r in payload["results"]:
        for key, label in (("phases", f"{payload['roofline']['row_block']:,}"),
                           ("phases_unblocked", "all")):  # fmt: skip
            p = r[key]
            cells = " | ".join(f"{1e3 * p[name]:.1f}" for name in (*PHASES, "cells", "total"))
            lines.append(f"| {r['cells']:,} | {label} | {cells} | {outside_share(p):.2f}× |")
    return lines


def _like_for_like(payload: Payload) -> list[str]:
    lines = [
        "",
        "**Like for like** (same cells, forcing, steps and threads; the reference is float64 "
        "throughout and has no float32 mode; the emulator's network is float32, its features "
        "and constraint layer float64). *Identical work*: both compute all 8 tiles of every "
        "cell; *active*: the emulator computes only the tiles with cover (what a session "
        "gets); µs per tile-step = ms per step ÷ tiles computed:",
        "",
        "| cells | tiles | reference µs/tile-step | torchscript µs/tile-step | reference ÷ "
        "torchscript, per step |",
        "|---:|:---|---:|---:|---:|",
    ]
    for r in payload["results"]:
        ref = 1e6 * r["reference"] / r["all_tiles"]
        for key, tiles, n in (("torchscript_all", "identical work (8 per cell)", r["all_tiles"]),
                              ("torchscript_active", "active", r["active_tiles"])):  # fmt: skip
            lines.append(
                f"| {r['cells']:,} | {tiles} | {ref:.2f} | {1e6 * r[key] / n:.2f} | "
                f"{r['speedup_' + key]:.2f}× |"
            )
    return lines


def markdown(payload: Payload) -> str:
    lines = [
        "## Emulator backend vs reference model (`make bench-emulators`)",
        "",
        f"One run, same cells, forcing and {payload['steps']} timed hourly steps after one "
        f"warm-up, {payload['threads']} threads, CPU; cells hold 1-3 land-cover classes "
        "(mean 2). The reference computes all 8 tiles per cell (float64); the emulators "
        "(float32 networks, float64 constraint layer, flux + daily LAI) compute the active "
        f"tiles, or all 8 for the identical-work ratio. Machine: {payload['machine']}.",
        "",
        *_speedups(payload),
        *_roofline(payload),
        *_phases(payload),
        *_like_for_like(payload),
    ]
    return "\n".join(lines)
