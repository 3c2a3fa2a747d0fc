"""The assimilation benchmark runs end to end on a small domain and writes its section."""

from __future__ import annotations

from pathlib import Path

from coupler.bench import assimilation, doc


def test_bench_small_domain_and_markdown(tmp_path: Path) -> None:
    payload = assimilation.run(ny=16, nx=16, observations=40, repeats=1, threads=(1,))
    assert payload["cells"] == 256 and payload["state_columns"] == 1024
    assert {r["filter"] for r in payload["results"]} == {"eakf", "letkf", "etkf"}
    assert all(r["n_used"] == 40 and r["seconds"] > 0 for r in payload["results"])
    # localised: an observation touches fewer columns than the whole state
    assert 0 < payload["columns_per_observation"] < payload["state_columns"]
    payload["machine"] = "test"
    md = assimilation.markdown(payload)
    path = doc.update_section(tmp_path / "b.md", "assimilation", md)
    assert "| EAKF | yes | 1 |" in path.read_text()
