"""make bench-wire end to end on a tiny domain: gRPC replies (TCP, Unix socket, shared memory)
bitwise equal to in-process, every phase and floor measured, the section written (no timing
asserts)."""

from __future__ import annotations

from coupler.bench import doc, wire


def test_wire_benchmark_measures_every_phase_and_writes_its_section(tmp_path) -> None:
    payload = wire.run(cells=256, steps=1, per_cell_sizes=(128,))
    payload["machine"] = "test"
    e = payload["end_to_end"]
    assert e["bitwise_equal"]
    assert e["request_bytes"] > 7 * 256 * 4 and e["reply_bytes"] > 8 * 256 * 8
    assert all(v > 0 for v in e["seconds"].values())
    assert {"overhead", "overhead_paired"} <= e["grpc_unary"].keys()
    for label in ("grpc_unix", "shm"):  # a Unix socket; the co-located path (shared memory)
        assert e["seconds"][label] > 0
        assert {"overhead_paired", "paired_ratio_to_memcpy"} <= e[label].keys()
    assert e["bitwise_equal_f32"] and e["reply_bytes_f32"] < e["reply_bytes"]
    assert {"overhead", "paired_ratio_to_echo"} <= e["grpc_stream_f32"].keys()
    names = [name for _, name, _ in payload["phases"]]
    assert "land step (backend.step)" in names and "serialize reply (join: the one copy)" in names
    assert "shm: write outputs into the segment" in names
    assert "parse request (reader: data as views)" in names
    assert all(seconds > 0 for _, _, seconds in payload["phases"])
    row = payload["per_cell"][0]
    assert row["cells"] == 128 and all(row[k] > 0 for k in ("service_whole", "emulators_blocks"))
    md = doc.update_section(tmp_path / "b.md", "wire", wire.markdown(payload)).read_text()
    assert "<!-- bench:wire -->" in md and "| 128 | bench-emulators |" in md
    assert "| shared memory |" in md
