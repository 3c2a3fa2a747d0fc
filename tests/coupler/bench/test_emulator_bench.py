"""``make bench-emulators`` runs both backends on the same cells and reports both ratios."""

from __future__ import annotations

import torch

from coupler.bench import emulators as bench


def test_bench_runs_and_reports_active_and_identical_work() -> None:
    payload = bench.run(cells=(40,), steps=1, threads=1)
    (row,) = payload["results"]
    assert row["cells"] == 40 and row["all_tiles"] == 320
    assert 40 <= row["active_tiles"] <= 120  # 1-3 classes per cell
    for key in ("torchscript_active", "torchscript_all", "aoti_active", "aoti_all"):
        assert row[key] > 0 and row[f"speedup_{key}"] == row["reference"] / row[key]
    assert row["network_only"] > 0
    assert row["speedup_bound"] == row["reference"] / row["network_only"]
    payload["machine"] = "test"
    md = bench.markdown(payload)
    assert md.count("| 40 |") == 5 and "identical-work" in md and "bound on speed-up" in md


def test_bench_cover_has_one_to_three_classes() -> None:
    static = bench._static(500, seed=1)
    per_cell = (static.cover > 0).sum(-1)
    assert int(per_cell.min()) >= 1 and int(per_cell.max()) <= 3
    assert torch.allclose(static.cover.sum(-1), torch.ones(500, dtype=torch.float64))
