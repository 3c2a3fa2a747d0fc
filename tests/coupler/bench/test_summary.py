"""``landcoupler bench summary`` reads the sections' JSON files and nothing else. The payloads
here are small synthetic ones written by the test: their figures are the test's own inputs,
not measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coupler.bench import summary
from coupler.cli import main

WIRE = {
    "benchmark": "wire",
    "cells": 1000,
    "machine": "x86_64, 2 cores, torch 2.13.0+cpu, 2030-01-02 03:04 UTC, 1-min load average 0.1",
    "end_to_end": {
        "seconds": {"inprocess": 1.0, "grpc_unary": 1.3, "grpc_stream": 1.2, "echo": 0.2,
                    "memcpy": 0.05},
        "grpc_unary": {"overhead": 0.3, "overhead_paired": 0.25, "ratio_to_echo": 1.5,
                       "paired_ratio_to_echo": 1.25},
        "grpc_stream": {"overhead": 0.2, "overhead_paired": 0.1, "ratio_to_echo": 1.0,
                        "paired_ratio_to_echo": 0.5},
    },
}  # fmt: skip


def _run(name: str, steps_per_s: float, mismatched: int = 0) -> dict:
    return {
        "name": name, "steps_per_s": steps_per_s, "errors": 0, "total_steps": 40,
        "server_steps": 40.0, "resends": 4, "resend_ok": 4, "mismatched_replies": mismatched,
        "rss_start_mib": 100.0, "rss_end_mib": 120.0,
    }  # fmt: skip


LOAD = {
    "benchmark": "load",
    "machine": "x86_64, 2 cores, torch 2.13.0+cpu, 2030-01-02 05:06 UTC, 1-min load average 1.0",
    "runs": [_run("today", 50.0), _run("unbatched", 100.0), _run("batched", 400.0, 1)],
    "echo": {"calls_per_s": 1600.0},
    "issue_baseline_steps_per_s": 40.0,
}
CLIENTS = {
    "machine": {"date": "2030-01-02 07:08 UTC", "cores": 2},
    "runs": [{"cells": 2048, "dtype": "f32", "echo": {
        "c": {"median_ms": 0.3}, "grpcpp": {"median_ms": 0.2},
        "python": {"median_ms": 0.9}, "grpcio": {"median_ms": 0.6}}}],
}  # fmt: skip


def _write(folder: Path) -> None:
    (folder / "bench-wire.json").write_text(json.dumps(WIRE))
    (folder / "bench-load.json").write_text(json.dumps(LOAD))
    (folder / "bench-clients.json").write_text(json.dumps(CLIENTS))
    (folder / "bench-replay.json").write_text("{not json")
    (folder / "bench-run.json").write_text(json.dumps({"machine": "no date here", "days": 3}))


def _by_what(rows: list[summary.Row]) -> dict[tuple[str, str], summary.Row]:
    return {(r.section, r.what): r for r in rows}


def test_the_ratios_are_read_from_the_json_with_their_source_and_timestamp(tmp_path) -> None:
    _write(tmp_path)
    rows = _by_what(summary.rows(tmp_path, shown_as="out"))
    echo = "raw-bytes gRPC echo of the same bytes"
    unary = rows[("bench-wire", f"gRPC unary step − in-process step, ÷ {echo}")]
    assert unary.value == "1.25× paired, 1.50× unpaired (1,000 cells)"
    assert unary.source == "`out/bench-wire.json`, 2030-01-02 03:04 UTC"
    assert unary.target == "≤ 1.3×"
    memcpy = rows[("bench-wire", "gRPC stream step − in-process step, ÷ memcpy of the same bytes")]
    assert memcpy.value == "2.00× paired, 4.00× unpaired (1,000 cells)"  # 0.1 / 0.05, 0.2 / 0.05
    assert rows[("bench-wire", f"{echo} ÷ memcpy of the same bytes")].value.startswith("4.00×")
    newer = tmp_path / "newer"
    newer.mkdir()
    e = {**WIRE["end_to_end"], "shm": {"overhead": 0.1, "overhead_paired": 0.075}}
    (newer / "bench-wire.json").write_text(json.dumps({**WIRE, "end_to_end": e}))
    (shm,) = [r for r in summary.rows(newer) if r.what.startswith("co-located exchange")]
    assert (shm.value, shm.target) == ("1.50× paired, 2.00× unpaired (1,000 cells)", "≤ 3×")

    load = {what: r for (section, what), r in rows.items() if section == "bench-load"}
    assert load["batched ÷ unbatched single-process server, steps/s (same run)"].value == (
        "4.00× (400.0 vs 100.0 steps/s)"
    )
    assert load["batched steps/s ÷ the issue's 42 steps/s"].value.startswith("10.00× (400.0 vs 40")
    assert load[
        "batched server steps/s ÷ the raw-bytes echo's calls/s (same threads, sizes)"
    ].value.startswith("0.25×")
    checks = load["errors / replies ≠ in-process / steps lost or doubled (all servers)"]
    assert checks.value.startswith("0 / 1 / 0 of 120 steps in 3 servers")  # the mismatch shows
    assert checks.source.endswith("2030-01-02 05:06 UTC")

    c = rows[("bench-clients", "C client step ÷ the grpc++ stub sending the same bytes (no model)")]
    assert c.value == "2,048 f32: 1.50×" and c.source.endswith("2030-01-02 07:08 UTC")


def test_missing_unreadable_and_older_json_never_give_a_number(tmp_path) -> None:
    _write(tmp_path)
    rows = summary.rows(tmp_path, shown_as="out")
    service = [r for r in rows if r.section == "bench-service"]
    assert service and all(r.value == "not measured" for r in service)
    assert all(r.source == "`out/bench-service.json`: missing" for r in service)
    replay = [r for r in rows if r.section == "bench-replay"]
    assert replay and all(r.value.startswith("not measured: file unreadable") for r in replay)
    (run,) = [r for r in rows if r.section == "bench-run"]
    assert run.value.startswith("not measured: not in this JSON (KeyError")
    assert run.source == "`out/bench-run.json`, no timestamp in the JSON"
    (colocated,) = [r for r in rows if r.what.startswith("co-located exchange")]
    assert colocated.value == "not measured (no shm in this bench-wire.json: a file from before it)"

    empty = tmp_path / "empty"
    empty.mkdir()
    for r in summary.rows(empty):
        assert r.value.startswith("not measured"), r


def test_cli_writes_the_section_first_and_replaces_it(tmp_path) -> None:
    _write(tmp_path)
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nintro\n\n<!-- bench:wire -->\nold wire\n<!-- /bench:wire -->\n")
    out = tmp_path / "summary.json"
    args = ["bench", "summary", "--dir", str(tmp_path), "--update-doc", str(md)]
    assert main([*args, "--json", str(out)]) == 0
    assert main(args) == 0  # a second run replaces the section
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n<!-- bench:summary -->\n## Against the floors")
    assert text.count("<!-- bench:summary -->") == 1 and text.index("bench:summary") < text.index(
        "bench:wire"
    )
    assert text.endswith("old wire\n<!-- /bench:wire -->\n")
    assert "| 1.25× paired, 1.50× unpaired (1,000 cells) |" in text
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "summary" and len(payload["rows"]) == len(summary.rows(tmp_path))


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--set", "cells=1"], "summary runs nothing"), (["--dir", "/nonexistent/x"], "not a folder")],
)
def test_cli_refuses_what_a_summary_cannot_do(tmp_path, capsys, extra, message) -> None:
    md = tmp_path / "benchmarks.md"
    assert main(["bench", "summary", "--update-doc", str(md), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not md.exists()  # nothing written


def test_replay_and_run_ratios(tmp_path) -> None:
    replay = {
        "machine": "x, 2030-01-02 09:10 UTC",
        "ratio": 2.0,
        "parallel_ratio": 3.0,
        "replay": {"workers": 1, "bitwise_equal": True},
        "parallel": {"workers": 2, "bitwise_equal": False},
    }
    case = {"backend": "reference", "timestep_s": 86400, "resolution_deg": 10.0}
    run = {
        "machine": "x, 2030-01-02 11:12 UTC",
        "cases": [
            {**case, "transport": "grpc", "ms_per_step": 15.0},
            {**case, "transport": "inprocess", "ms_per_step": 10.0},
            {**case, "backend": "torchscript", "transport": "grpc", "ms_per_step": 99.0},
        ],
    }
    (tmp_path / "bench-replay.json").write_text(json.dumps(replay))
    (tmp_path / "bench-run.json").write_text(json.dumps(run))
    got = {
        r.what: r.value
        for r in summary.rows(tmp_path)
        if r.section in ("bench-replay", "bench-run")
    }
    assert got == {
        "replay run steps/s ÷ the coupled run that recorded it, serial": (
            "2.00× (1 worker, bitwise equal: True)"
        ),
        "replay run steps/s ÷ the coupled run, parallel workers": (
            "3.00× (2 workers, bitwise equal: False)"
        ),
        "coupled run over gRPC ÷ in-process, ms per step, per resolution": (
            "10°: 1.50× (reference, 86400 s steps)"
        ),
    }


def test_emulator_roofline_outside_share_and_like_for_like(tmp_path) -> None:
    phases = {"gather": 1.0, "features": 2.0, "network": 4.0, "closure": 1.0, "phenology": 0.5,
              "scatter": 0.5, "cells": 1.0, "total": 10.0}  # fmt: skip
    calls = [
        {"loader": "torchscript", "batch": 1024, "seconds": 1.0, "peak_gflops": 100.0},
        {"loader": "torchscript", "batch": 4096, "seconds": 0.5, "peak_gflops": 80.0},
    ]
    payload = {
        "machine": "x, 2030-01-02 13:14 UTC",
        "roofline": {"flops_per_row": {"gemm": 20_000}, "row_block": 16384, "backend_batch": 4096},
        "results": [{
            "cells": 1000, "speedup_torchscript_active": 2.0, "speedup_torchscript_all": 0.5,
            "speedup_bound": 4.0, "phases": phases,
            "network": {"rows": 1_000_000, "calls": calls},
        }],
    }  # fmt: skip
    (tmp_path / "bench-emulators.json").write_text(json.dumps(payload))
    got = {r.what: r.value for r in summary.rows(tmp_path) if r.section == "bench-emulators"}
    roof = next(v for w, v in got.items() if w.startswith("flux network alone"))
    # 20 000 FLOPs × 10⁶ rows in 0.5 s = 40 GFLOP/s of a paired 80 GFLOP/s peak
    assert roof == "1,000: 0.50 (40 of 80 GFLOP/s, 4,096 rows per call)"
    share = next(v for w, v in got.items() if w.startswith("emulator step outside"))
    assert share == "1,000: 1.50×"  # (10 − 4) / 4
    like = next(v for w, v in got.items() if w.startswith("like for like:"))
    assert like == "1,000: 0.50×"
    # a run before the fused backend: its rows say so
    fused = {w: v for w, v in got.items() if "`fused`" in w}
    assert len(fused) == 4 and set(fused.values()) == {"not measured"}
    # and one with it
    row = payload["results"][0]
    row["network"]["calls"].append(
        {"loader": "fused", "batch": 4096, "seconds": 0.25, "peak_gflops": 100.0}
    )
    row["phases_fused"] = {**phases, "network": 2.0, "total": 8.0}
    row["speedup_fused_active"], row["speedup_fused_all"] = 3.0, 0.75
    (tmp_path / "bench-emulators.json").write_text(json.dumps(payload))
    got = {r.what: r.value for r in summary.rows(tmp_path) if r.section == "bench-emulators"}
    fused = {w.split("`fused`")[0]: v for w, v in got.items() if "`fused`" in w}
    assert fused == {
        "that speed-up with the ": "1,000: 3.00×",
        "flux network alone, ": "1,000: 0.80 (80 of 100 GFLOP/s, 4,096 rows per call)",
        "emulator step outside the flux network ÷ the network's own time, ": "1,000: 3.00×",
        "like for like with the ": "1,000: 0.75×",
    }
