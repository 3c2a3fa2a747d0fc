"""Which skill target each held-out row misses (``emulators.training.skill_gaps``): the mean of
the reference and the bias room recovered from a row's KGE, r, σ ratio and bias are the closed
form's (checked against series built with a known mean and KGE computed by
``emulators.metrics``); rows are classified by the target they miss; ``landcoupler emulators
misses`` prints the shipped manifest's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from coupler.cli import main
from emulators import metrics
from emulators.manifest import Manifest
from emulators.recipes import ARTIFACTS
from emulators.training.skill_gaps import KGE_MIN, figure, kge_bias_room, markdown, misses


def _series(mean: float, bias: float, scale: float = 1.02) -> tuple[np.ndarray, np.ndarray]:
    """A reference with ``mean`` and a spread of 60, and a simulation with correlation < 1, σ
    ratio near ``scale`` and mean error ``bias``."""
    t = np.arange(24 * 14, dtype=np.float64)
    obs = mean + 60.0 * np.sin(2 * np.pi * t / 24)
    wiggle = 6.0 * np.sin(2 * np.pi * t / 7.3)
    sim = mean + scale * (obs - mean) + wiggle
    return sim - sim.mean() + mean + bias, obs


def _scores(sim: np.ndarray, obs: np.ndarray) -> tuple[float, float, float, float]:
    c = metrics.kge_components(sim, obs)
    return float(c.kge), float(c.r), float(c.gamma), float(np.mean(sim - obs))


@pytest.mark.parametrize(("mean", "bias"), [(1.6, -2.5), (9.4, 2.8), (80.0, 3.3), (-4.5, -1.0)])
def test_the_reference_mean_and_the_bias_room_are_the_closed_form(mean: float, bias: float) -> None:
    sim, obs = _series(mean, bias)
    kge, r, gamma, b = _scores(sim, obs)
    mean_ref, allowed = kge_bias_room(kge, r, gamma, b)
    assert mean_ref == pytest.approx(abs(obs.mean()), rel=1e-9)
    assert allowed is not None and allowed > 0
    # the simulation with exactly the allowed mean error (same sign) has KGE = the target
    shifted = sim - b + math.copysign(allowed, b)
    assert float(metrics.kge(shifted, obs)) == pytest.approx(KGE_MIN, abs=1e-9)
    # and a smaller one passes, a larger one misses
    assert float(metrics.kge(sim - b + 0.9 * math.copysign(allowed, b), obs)) > KGE_MIN
    assert float(metrics.kge(sim - b + 1.1 * math.copysign(allowed, b), obs)) < KGE_MIN


def test_no_room_where_correlation_and_spread_alone_miss() -> None:
    sim, obs = _series(50.0, 1.0, scale=1.2)  # σ ratio ≈ 1.2: |γ − 1| > 0.05
    kge, r, gamma, b = _scores(sim, obs)
    mean_ref, allowed = kge_bias_room(kge, r, gamma, b)
    assert allowed is None and mean_ref == pytest.approx(50.0, rel=1e-9)
    assert kge_bias_room(0.99, 0.995, 1.0, 0.0) == (None, None)  # no bias: no mean to recover


def _row(source: str, variable: str, nse: float, kge: float, **extra: object) -> dict[str, object]:
    return {"source": source, "variable": variable, "units": "W m-2", "nse": nse, "kge": kge,
            "bias": 1.0, "pearson_r": 0.99, "std_ratio": 1.0, **extra}  # fmt: skip


def test_rows_are_classified_by_the_target_they_miss() -> None:
    records = [
        _row("a", "hfls", 0.99, 0.99),
        _row("a", "hfss", 0.96, 0.99, start="fresh", window="first 48 h"),
        _row("b", "hfls", 0.98, 0.90, start="resumed", window="whole"),
        _row("b", "hfss", 0.90, 0.80),
        _row("all held-out", "hfss", 0.50, 0.50),  # pooled: not a source
        _row("a", "gpp", 0.10, 0.10),  # not LE or H
    ]
    total, found = misses(records)
    assert total == 4
    assert [(m.source, m.variable, m.fails) for m in found] == [
        ("a", "hfss", "NSE"), ("b", "hfls", "KGE"), ("b", "hfss", "NSE and KGE"),
    ]  # fmt: skip
    assert (found[1].start, found[1].window, found[0].window) == ("resumed", "whole", "first 48 h")
    text = markdown(total, found)
    assert text.startswith("1 of 4 held-out rows meet NSE ≥ 0.97 and KGE ≥ 0.95; 3 miss: 2 NSE")
    assert "1 KGE only, of which 1 by their mean error alone" in text
    assert "| b | resumed | whole | hfls | 0.980 | 0.900 | KGE | +1.00 W m-2 |" in text
    assert markdown(1, []).startswith("1 of 1 held-out rows meet")


def test_the_figure_draws_every_miss_once_in_its_panel() -> None:
    records = [
        _row("a", "hfss", 0.96, 0.99, start="fresh", window="first 48 h"),
        _row("b", "hfls", 0.98, 0.90, start="resumed", window="whole", pearson_r=0.995),
        _row("c", "hfss", 0.98, 0.70, std_ratio=1.3),  # r and γ alone miss: not in the left panel
    ]
    _, found = misses(records)
    left, right = figure(found, title="t").axes
    drawn = [{ln.get_gid() for ln in ax.get_lines()} for ax in (left, right)]
    assert drawn[0] == {"b/resumed/whole/hfls", "diagonal"}
    assert drawn[1] == {"a/fresh/first 48 h/hfss", "target"}
    (point,) = [ln for ln in left.get_lines() if ln.get_gid() == "b/resumed/whole/hfls"]
    assert float(point.get_ydata()[0]) == 1.0  # |bias|
    assert float(point.get_xdata()[0]) == pytest.approx(found[1].allowed_bias)


def test_the_cli_prints_the_shipped_manifests_misses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "misses.png"
    assert main(["emulators", "misses", "flux-lstm", "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    total, found = misses(Manifest.load(ARTIFACTS / "flux_lstm").skill)
    assert f"{total - len(found)} of {total} held-out rows meet" in out
    assert out.count("\n| ") == len(found) + 1  # header and one line per miss
    assert f"plot: {png}" in out
    assert main(["emulators", "misses", "lai"]) == 2
    assert "lai's manifest has no held-out rows by start" in capsys.readouterr().err
    assert main(["emulators", "evaluate", "flux-lstm", "--plot", str(png)]) == 2
    assert "--plot: only with the misses action" in capsys.readouterr().err
