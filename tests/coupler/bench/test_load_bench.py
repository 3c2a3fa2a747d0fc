"""``make bench-load`` on a tiny load: four real ``landcoupler serve`` servers (today's,
unbatched with one torch thread, batched, batched with two worker processes behind a front),
every reply bitwise the in-process run, no step lost or doubled, and the section written."""

from __future__ import annotations

import json

from coupler.bench import doc, load


def test_the_load_benchmark_checks_every_reply_and_writes_its_section(tmp_path) -> None:
    payload = load.run(sessions=6, steps=8, cells=64, threads=3, window_ms=5.0, today_steps=2,
                       unbatched_steps=3, echo_calls=5)  # fmt: skip
    assert [r["name"] for r in payload["runs"]] == ["today", "unbatched", "batched", "workers"]
    for r in payload["runs"]:
        assert r["errors"] == 0, r["error_messages"]
        assert r["mismatched_replies"] == 0
        assert r["steps_done"] == r["total_steps"] == 6 * r["steps"]
        assert r["server_steps"] == r["total_steps"]  # none doubled (retries would not count)
        assert r["server_retries"] == 0
        assert r["resend_ok"] == 6  # every session ended at exactly its last index
        assert r["rss_end_mib"] > 0 and r["server_cpu_s"] > 0
    batched, workers = payload["runs"][-2:]
    assert batched["mean_batch_sessions"] is not None and batched["mean_batch_sessions"] >= 1.0
    assert "--batch-window-ms" in batched["args"] and payload["ratios"]
    assert workers["processes"] == 3 and workers["front_cpu_ms_per_step"] > 0
    assert batched["processes"] == 1 and batched["front_cpu_ms_per_step"] is None
    assert set(payload["ratios"]) == {"batched/today", "batched/unbatched", "workers/batched"}
    md = tmp_path / "benchmarks.md"
    doc.update_section(md, "load", load.markdown(payload))
    text = md.read_text()
    assert "<!-- bench:load -->" in text and "| batched, `--torch-threads 1` | 8 | 48 |" in text
    assert "`--workers 2` (front + 2 worker processes) | 8 | 48 |" in text
    assert json.loads(json.dumps(payload, default=str))["benchmark"] == "load"


def test_bench_set_options_take_the_types_of_the_run_defaults() -> None:
    import pytest

    from coupler.cli.bench import _params

    got = _params(load.run, ["sessions=20", "window_ms=0.5", "stream=true", "steps=100"])
    assert got == {"sessions": 20, "window_ms": 0.5, "stream": True, "steps": 100}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        _params(load.run, ["session=20"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        _params(load.run, ["steps"])


def test_the_load_probe_times_the_pieces_of_a_served_batched_step() -> None:
    from coupler.bench import load_probe

    r = load_probe.probe(sessions=4, steps=6, threads=2, window_ms=5.0, stream=False)
    assert r["errors"] == [] and r["server_cpu_ms_per_step"] > 0
    calls, ms = r["pieces_calls"], r["pieces_ms_per_step"]
    assert calls["session step (transaction)"] == 4 * 6 + 4  # and each session's resend
    assert calls["servicer Step (unary)"] == 4 * 6 + 4
    assert calls["batcher (all of it)"] == calls["validation"] == 4 * 6
    assert 1 <= calls["joined backend step (leader)"] <= 4 * 6
    # nested pieces include what they call
    assert ms["servicer Step (unary)"] >= ms["session step (transaction)"] >= ms["validation"]
