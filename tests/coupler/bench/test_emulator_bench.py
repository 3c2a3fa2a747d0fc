"""``make bench-emulators`` runs both backends on the same cells and reports the speed-ups, the
flux network under the CPU's float32 roofline, the phases of a step and the like-for-like
ratios."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
import torch

from coupler.bench import emulators as bench
from coupler.bench import roofline
from coupler.bench.emulators_doc import backend_call, outside_share
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.phases import PHASES


def test_bench_runs_and_reports_roofline_phases_and_like_for_like() -> None:
    payload = bench.run(cells=(40,), steps=1, threads=1)
    (row,) = payload["results"]
    assert row["cells"] == 40 and row["all_tiles"] == 320
    assert 40 <= row["active_tiles"] <= 120  # 1-3 classes per cell
    keys = ("torchscript_active", "torchscript_all", "aoti_active", "aoti_all", "fused_active",
            "fused_all")  # fmt: skip
    for key in (*keys, "hybrid_all", "transformer_active"):
        assert row[key] > 0 and row[f"speedup_{key}"] == row["reference"] / row[key]
    assert row["network_only"] > 0
    assert row["speedup_bound"] == row["reference"] / row["network_only"]
    roof = payload["roofline"]
    assert roof["matmul_before"]["gflops"] > 0 and roof["copy_after"]["gb_per_s"] > 0
    assert roof["flops_counted"] == roof["flops_per_row"]["gemm"]  # analytic == torch's counter
    assert row["network"]["rows"] == row["active_tiles"]  # the rows of a real step
    loaders = {c["loader"] for c in row["network"]["calls"]}
    assert loaders == {"torchscript", "aoti", "onnx", "fused"}
    for key in ("phases", "phases_blocks", "phases_fused", "phases_fused_eager"):
        phases = row[key]
        assert set(phases) == {*PHASES, "cells", "total"}
        assert abs(sum(phases[p] for p in (*PHASES, "cells")) - phases["total"]) < 1e-9
        assert outside_share(phases) > 0
    call = backend_call(payload, row)
    assert call["loader"] == "torchscript" and 0 < call["fraction"]
    assert backend_call(payload, row, "fused")["loader"] == "fused"
    payload["machine"] = "test"
    md = bench.markdown(payload)
    # speed-ups (6 emulator + hybrid + transformer), network calls (4 TorchScript batches, aoti,
    # onnx, fused), phases (all, blocks, fused, fused with eager physics), like-for-like
    # rows, not substrings: a measured value of 40 (e.g. a peak of 40 GFLOP/s) is "| 40 |" too
    assert sum(line.startswith("| 40 |") for line in md.splitlines()) == 8 + 7 + 4 + 2
    assert "| hybrid | all |" in md and "| transformer | active |" in md
    assert "| fused | active |" in md and "| 40 | all (fused) |" in md
    assert "| 40 | all (fused, eager physics) |" in md and "compiled by Inductor" in md
    assert "The `fused` backend's network is that kernel" in md
    for text in ("identical-work", "fraction of peak", "outside the network ÷ network",
                 "Like for like", "FlopCounterMode"):  # fmt: skip
        assert text in md, text
    # the widths in the prose are the loaded network's (the shipped flux-lstm: H = 48, the 42
    # features and two measurement heights in)
    assert roof["network_config"]["hidden"] == 48
    assert "(44 → 432, 48 → 192, 5 × 48 → 16 heads)" in md and "964 bytes" in md
    # a JSON from before ``network_config``: the first shipped network (H = 32)
    del payload["roofline"]["network_config"]
    del row["hybrid_all"], row["speedup_hybrid_all"]  # nor a hybrid row (before 2026-12-06)
    del row["transformer_active"], row["speedup_transformer_active"]
    for key in ("fused_active", "fused_all"):  # nor a fused backend (before 2026-12-07)
        del row[key], row[f"speedup_{key}"]
    del row["phases_fused"], row["phases_fused_eager"]
    row["network"]["calls"] = [c for c in row["network"]["calls"] if c["loader"] != "fused"]
    old = bench.markdown(payload)
    assert old.count("| 40 |") == 4 + 6 + 2 + 2
    assert "`fused`" not in old and "| fused |" not in old
    assert "(42 → 288, 32 → 128, 5 × 32 → 16 heads)" in old and "700 bytes" in old


def test_flux_flops_follow_the_config() -> None:
    f = roofline.flux_lstm_flops({"n_features": 42, "hidden": 32, "n_outputs": 5,
                                  "head_hidden": 16})  # fmt: skip
    assert (f["input"], f["recurrent"], f["heads"]) == (2 * 42 * 288, 2 * 32 * 128, 2 * 5 * 32 * 16)
    assert f["gemm"] == 37_504


@pytest.mark.parametrize("options", [{"hidden": 48}, {"physics": True}])
def test_flux_flops_agree_with_torch_flop_counter(options: dict[str, object]) -> None:
    """The candidates' configs (H = 48; derived inputs): counted = torch's FlopCounterMode."""
    from emulators.manifest import Manifest

    cfg = {"n_features": 42, "hidden": 32, "n_outputs": 5, "head_hidden": 16, **options}
    manifest = SimpleNamespace(architecture="flux_lstm", config=cfg)
    counted = roofline.counted_flops(cast(Manifest, manifest))
    assert roofline.flux_lstm_flops(cfg)["gemm"] == counted
    assert counted == {"hidden": 62_400, "physics": 40_384}[next(iter(options))]


def test_captured_rows_are_what_the_network_receives() -> None:
    import numpy as np

    from coupler.bench.emulators import _static
    from coupler.bench.reference import _forcing
    from emulators.protocol import StepClock

    backend = EmulatorBackend(EmulatorConfig(device="cpu", row_block=64))
    static = _static(100, seed=3)
    clock = StepClock(0, np.datetime64("2001-06-01T10:00:00"), 3600.0)
    fresh = backend.initial_state(static, clock)
    rows = int((static.cover > 0).sum())
    spin_up = backend.flux_for(3600.0).spin_up
    # a session's first step: the spin-up's calls on the never-stepped rows, then the step's
    x, _, _ = roofline.capture_rows(
        backend, lambda: backend.step(fresh, static, _forcing(100), clock)
    )
    width = 44  # the shipped flux-lstm: 42 features and the two measurement heights
    assert x.shape == ((1 + spin_up) * rows, width)
    state, _ = backend.step(fresh, static, _forcing(100), clock)
    x, h, c = roofline.capture_rows(
        backend, lambda: backend.step(state, static, _forcing(100), clock.advance())
    )
    assert x.shape == (rows, width) and x.dtype == torch.float32
    assert h.shape == c.shape == (x.shape[0], backend.hidden)
    assert "_run_flux" not in vars(backend)  # the recorder is removed


def test_bench_cover_has_one_to_three_classes() -> None:
    static = bench._static(500, seed=1)
    per_cell = (static.cover > 0).sum(-1)
    assert int(per_cell.min()) >= 1 and int(per_cell.max()) <= 3
    assert torch.allclose(static.cover.sum(-1), torch.ones(500, dtype=torch.float64))
