"""The Markdown section of ``make bench-emulators`` (``coupler.bench.emulators.markdown``):
speed-ups, the network under the CPU's float32 roofline, where a step's time goes, and the
like-for-like ratios against the reference model."""

from __future__ import annotations

from typing import Any

from emulators.compiled.phases import PHASES

Payload = dict[str, Any]


#: the flux network of runs whose JSON predates ``network_config`` (the first shipped, H = 32)
FIRST_NETWORK = {"n_features": 42, "hidden": 32, "n_outputs": 5, "head_hidden": 16}


def shapes(payload: Payload) -> dict[str, int]:
    """The flux network's widths: features f, hidden h, tasks t, head width k; gate values per
    row g = 4h + t·h; bytes per row in and out (x, h, c → y, h, c; float32)."""
    cfg = payload["roofline"].get("network_config", FIRST_NETWORK)
    f, h = int(cfg["n_features"]), int(cfg["hidden"])
    t, k = int(cfg["n_outputs"]), int(cfg["head_hidden"])
    return {"f": f, "h": h, "t": t, "k": k, "g": 4 * h + t * h, "bytes": 4 * (f + 4 * h + t)}


def network_calls(payload: Payload, row: Payload) -> list[Payload]:
    """The network-alone timings of a result row with GFLOP/s and fraction of the paired peak."""
    flops = payload["roofline"]["flops_per_row"]["gemm"] * row["network"]["rows"]
    out = []
    for call in row["network"]["calls"]:
        gflops = flops / call["seconds"] / 1e9
        out.append({**call, "gflops": gflops, "fraction": gflops / call["peak_gflops"]})
    return out


def backend_call(payload: Payload, row: Payload, loader: str = "torchscript") -> Payload:
    """The network-alone timing of ``loader`` at the rows per call the backend uses."""
    batch = payload["roofline"]["backend_batch"]
    calls = network_calls(payload, row)
    return next(c for c in calls if c["loader"] == loader and c["batch"] == batch)


def outside_share(phases: Payload) -> float:
    """A step's time outside the flux network ÷ the network's own."""
    return (phases["total"] - phases["network"]) / phases["network"]


def _speedups(payload: Payload) -> list[str]:
    lines = [
        "| cells | active tiles | reference ms/step | backend | tiles | ms/step | speed-up |",
        "|---:|---:|---:|:---|:---|---:|---:|",
    ]
    for r in payload["results"]:
        keys = (
            "torchscript_active", "torchscript_all", "aoti_active", "aoti_all",
            "fused_active", "fused_all", "hybrid_all", "transformer_active",
        )  # fmt: skip
        for key in (k for k in keys if k in r):  # older runs: no fused, hybrid, transformer
            loader, tiles = key.split("_")
            lines.append(
                f"| {r['cells']:,} | {r['active_tiles']:,} | {1e3 * r['reference']:.1f} | "
                f"{loader} | {tiles} | {1e3 * r[key]:.2f} | {r['speedup_' + key]:.1f}× |"
            )
    return lines


def _roofline(payload: Payload) -> list[str]:
    roof = payload["roofline"]
    f, w = roof["flops_per_row"], shapes(payload)
    peak = max(roof["matmul_before"]["gflops"], roof["matmul_after"]["gflops"])
    bw = max(roof["copy_before"]["gb_per_s"], roof["copy_after"]["gb_per_s"])
    lines = [
        "",
        "**The flux network under the roofline.** Peak: float32 `torch.mm` of two "
        f"{roof['matmul_before']['n']}² matrices at {payload['threads']} threads, "
        f"{roof['matmul_before']['gflops']:.0f} GFLOP/s at the start of the run and "
        f"{roof['matmul_after']['gflops']:.0f} at its end; each network timing below is paired "
        "with a peak measured just before it (the machine's load moves both). Memory: a "
        f"{roof['copy_before']['mib']} MiB float32 copy moves {bw:.1f} GB/s at best (read + "
        f"write; start and end of the run), so the ridge point is ≈ {peak / bw:.0f} FLOP/byte. "
        "FLOPs per row and step of `flux_lstm` "
        f"from its config: input projection and task gates {f['input']:,}, recurrent "
        f"projection {f['recurrent']:,}, task heads {f['heads']:,}: **{f['gemm']:,}** in matrix "
        f"products (torch's `FlopCounterMode` on the eager module counts "
        f"{roof['flops_counted']:,.0f}), plus ≈ {f['elementwise']:,} elementwise FLOPs and "
        "the sigmoid/tanh/SiLU evaluations. A row reads x, h, c and writes y, h, c: "
        f"{w['bytes']} bytes, so at least {f['gemm'] / w['bytes']:.0f} FLOP/byte, far right of "
        "the ridge: the network's "
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


def _why(payload: Payload) -> list[str]:
    """The explanation paragraph: how much of the network call is its matrix products."""
    f, w = payload["roofline"]["flops_per_row"], shapes(payload)
    parts = []
    for r in payload["results"]:
        mm = r["network"]["matmuls"]
        call = backend_call(payload, r)
        gflops = f["gemm"] * r["network"]["rows"] / mm["seconds"] / 1e9
        if mm["seconds"] >= call["seconds"]:  # a burst of other processes' work hit it
            parts.append(
                f"at {r['cells']:,} cells the matrix-products-only timing was disturbed by other "
                f"processes ({1e3 * mm['seconds']:.2f} ms, more than the whole call)"
            )
            continue
        parts.append(
            f"at {r['cells']:,} cells the matrix products alone take {1e3 * mm['seconds']:.2f} "
            f"ms ({gflops:.0f} GFLOP/s, {gflops / mm['peak_gflops']:.2f} of the paired peak), "
            f"{mm['seconds'] / call['seconds']:.0%} of the network call"
        )
    return [
        "",
        "Why the TorchScript network is far from the roofline: its matrix products are skinny "
        f"({w['f']} → {w['g']}, {w['h']} → {4 * w['h']}, {w['t']} × {w['h']} → {w['k']} heads) "
        "but run well; "
        + "; ".join(parts)
        + f". The rest of the call is elementwise: sigmoid and tanh over the {w['g']} gate "
        "values of each row, the cell update, the gating of the heads and their layout copies, "
        f"about 20 kernels per call, each one pass over (rows × {w['h']}…{w['g']}) float32 "
        "values at ≤ 0.25 FLOP/byte, i.e. bound by memory and per-kernel latency, not by FLOPs. "
        f"Whole-network arithmetic intensity (≥ {f['gemm'] / w['bytes']:.0f} FLOP/byte) would "
        "allow the peak only if one fused kernel "
        "kept a row's gates in registers; TorchScript has no CPU fuser in this torch build "
        "(NNC needs LLVM); the AOTInductor and ONNX Runtime builds, which do fuse elementwise "
        f"work, reach {_others(payload, ('aoti', 'onnx'))} the TorchScript call's GFLOP/s "
        "(table).",
        *_fused(payload),
    ]


def _fused(payload: Payload) -> list[str]:
    """The paragraph on the fused operator (runs from 2026-12-07 on)."""
    if not any(c["loader"] == "fused" for r in payload["results"] for c in r["network"]["calls"]):
        return []
    parts = [
        f"{r['cells']:,} cells {backend_call(payload, r, 'fused')['fraction']:.2f}"
        for r in payload["results"]
    ]
    return [
        "",
        "The `fused` backend's network is that kernel (`emulators.compiled.fused`, "
        "`native/flux_lstm.cpp`): blocks of 256 rows, each block's matrix products "
        "single-threaded in BLAS on one core and its gates, cell update and heads vectorised "
        "on the block's values while they are in that core's cache. It reaches "
        f"{_others(payload, ('fused',))} the TorchScript call's GFLOP/s, a fraction of the "
        f"paired peak of {', '.join(parts)} (table).",
    ]


def _others(payload: Payload, loaders: tuple[str, ...]) -> str:
    """'a–b× (aoti), c–d× (onnx)' over the cells: ``loaders``' speed ÷ TorchScript's."""
    by: dict[str, list[float]] = {}
    for r in payload["results"]:
        ts = backend_call(payload, r)
        for c in network_calls(payload, r):
            if c["loader"] in loaders and c["batch"] == ts["batch"]:
                by.setdefault(c["loader"], []).append(c["gflops"] / ts["gflops"])
    return ", ".join(f"{min(v):.2f}–{max(v):.2f}× ({k})" for k, v in by.items())


def _phases(payload: Payload) -> list[str]:
    fused = any("phases_fused" in r for r in payload["results"])
    lines = [
        "",
        "**Where a step's time goes** (TorchScript"
        + (
            ", and the `fused` backend (rows per block: *all (fused)*; since 2026-12-07 noon "
            "with the physics around the network compiled by Inductor, "
            "`emulators.compiled.inductor`; *all (fused, eager physics)*: the same without)"
            if fused
            else ""
        )
        + "; active tiles, ms per step, phases timed "
        "inside the backend's step: `emulators.compiled.phases`, each part counted once; "
        "*features* includes finding the rows to spin up, *network* only the network's calls; "
        "*scatter*: the network's per-call outputs joined, rows back into "
        "the dense state and summed into the cell fields (`landstep.CellSums`); *cells*: the "
        "rest of `step`, i.e. forcing check, the cell fields' last operations, leaf "
        "nitrogen). Rows per "
        "block: all at once (the default) or gathered, stepped and scattered "
        f"{payload['roofline']['row_block']:,} at a time (`EmulatorConfig(row_block=...)`):",
        "",
        "| cells | rows per block | " + " | ".join(PHASES) + " | cells | total | "
        "outside the network ÷ network |",
        "|---:|:---|" + "---:|" * (len(PHASES) + 3),
    ]
    for r in payload["results"]:
        for key, label in (("phases", "all"),
                           ("phases_blocks", f"{payload['roofline']['row_block']:,}"),
                           ("phases_fused", "all (fused)"),
                           ("phases_fused_eager", "all (fused, eager physics)")):  # fmt: skip
            if key not in r:  # runs before 2026-12-07: no fused backend, no compiled physics
                continue
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
        f"warm-up (ms/step: the median step), {payload['threads']} threads, CPU; cells hold "
        "1-3 land-cover classes "
        "(mean 2). The reference computes all 8 tiles per cell (float64); the emulators "
        "(float32 networks, float64 constraint layer, flux + daily LAI) compute the active "
        f"tiles, or all 8 for the identical-work ratio. Machine: {payload['machine']}.",
        "",
        *_speedups(payload),
        *_roofline(payload),
        *_why(payload),
        *_phases(payload),
        *_like_for_like(payload),
    ]
    return "\n".join(lines)
