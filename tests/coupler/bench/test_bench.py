"""Benchmark drivers run end to end on tiny sizes and write their doc sections (no timing
asserts)."""

from __future__ import annotations

import json

from coupler.bench import doc, reference, replay, service


def test_reference_and_service_benchmarks_write_their_sections(tmp_path) -> None:
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nintro stays\n")
    ref = reference.run(cells=(64,), steps=2, threads=(1,))
    ref["machine"] = "test"
    svc = service.run(cells=(128,), steps=1)
    svc["machine"] = "test"
    assert [r["cells"] for r in ref["results"]] == [64]
    row = svc["results"][0]
    assert row["bytes_in"] == 8 * 128 * 7
    assert all(row[k] > 0 for k in ("inprocess", "grpc_unary", "grpc_stream", "bare_grpc"))
    doc.update_section(md, "reference", reference.markdown(ref))
    doc.update_section(md, "service", service.markdown(svc))
    doc.update_section(md, "reference", reference.markdown(ref))  # replaced, not appended
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nintro stays")
    assert text.count("<!-- bench:reference -->") == 1 and "| 128 |" in text
    out = doc.write_json(tmp_path / "b.json", svc)
    assert json.loads(out.read_text())["benchmark"] == "service"


def test_replay_benchmark_replays_its_own_record_bitwise(tmp_path) -> None:
    payload = replay.run(days=3)
    assert payload["replay"]["bitwise_equal"] and payload["replay"]["steps"] == 5
    assert payload["parallel"]["bitwise_equal"] and payload["parallel"]["workers"] >= 1
    assert payload["parallel_ratio"] > 0 and payload["cores"] >= 1
    assert payload["coupled"]["steps"] == 3 and payload["ratio"] > 0
    assert all(n <= 1000 for n in payload["objects_per_rank"])
    md = doc.update_section(tmp_path / "b.md", "replay", replay.markdown(payload)).read_text()
    assert "<!-- bench:replay -->" in md and "replay, serial" in md and "workers" in md
