"""Several flux emulators' held-out rows side by side (``emulators.training.skill_compare``):
counts, gained and lost rows against the first, rows every network misses and the sign of their
mean errors; the CLI's ``misses --compare``; refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coupler.cli import main
from emulators.recipes import ARTIFACTS
from emulators.training.skill_compare import compare, markdown


def _row(source: str, nse: float, kge: float, bias: float, **extra: object) -> dict[str, object]:
    return {"source": source, "variable": "hfss", "units": "W m-2", "nse": nse, "kge": kge,
            "bias": bias, "pearson_r": 0.99, "std_ratio": 1.0, **extra}  # fmt: skip


BASE = [
    _row("a", 0.99, 0.99, 0.1),  # met by all
    _row("b", 0.99, 0.90, 2.0),  # missed by all, same sign
    _row("c", 0.96, 0.99, -1.0, start="fresh", window="first 48 h"),  # missed by all, signs differ
    _row("d", 0.98, 0.96, 0.5),  # lost by the candidate
    _row("e", 0.95, 0.99, 0.5),  # gained by the candidate
    _row("all held-out", 0.5, 0.5, 9.0),  # pooled: not a row
]
OTHER = [
    _row("a", 0.99, 0.99, -0.1),
    _row("b", 0.99, 0.92, 1.0),
    _row("c", 0.95, 0.99, 1.0, start="fresh", window="first 48 h"),
    _row("d", 0.98, 0.94, 0.5),
    _row("e", 0.98, 0.99, 0.5),
]


def test_counts_gains_losses_and_the_rows_every_network_misses() -> None:
    c = compare({"G": BASE, "seed 1": OTHER})
    assert c.total == 5 and c.meeting == {"G": 2, "seed 1": 2}
    assert c.gained == {"seed 1": [("e", "continuous", "whole", "hfss")]}
    assert c.lost == {"seed 1": [("d", "continuous", "whole", "hfss")]}
    assert c.missed_by_all == [
        ("b", "continuous", "whole", "hfss"), ("c", "fresh", "first 48 h", "hfss"),
    ]  # fmt: skip
    assert c.one_sign == [("b", "continuous", "whole", "hfss")]
    text = markdown(c)
    assert "| seed 1 | 2 | 1 / 1 |" in text
    assert "Missed by every network: 2 rows, 1 of them with a mean error of one sign" in text
    assert "seed 1 lost: d / continuous / whole / hfss" in text
    assert (
        "missed by every network: b / continuous / whole / hfss; "
        "c / fresh / first 48 h / hfss (signs differ)"
    ) in text


def test_a_zero_mean_error_is_no_sign() -> None:
    c = compare({"A": [_row("b", 0.9, 0.9, 0.0)], "B": [_row("b", 0.9, 0.9, 0.0)]})
    assert c.missed_by_all and not c.one_sign


def test_refusals() -> None:
    with pytest.raises(ValueError, match="at least two networks"):
        compare({"G": BASE})
    with pytest.raises(ValueError, match="B has other held-out rows than A"):
        compare({"A": BASE, "B": OTHER[:3]})
    with pytest.raises(ValueError, match="A has no held-out LE/H rows"):
        compare({"A": [], "B": OTHER})


def test_the_cli_compares_artifact_directories(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The shipped manifest against a copy with one row moved below the targets."""
    other = tmp_path / "candidate"
    other.mkdir()
    shutil.copy(ARTIFACTS / "flux_lstm" / "manifest.json", other / "manifest.json")
    manifest = json.loads((other / "manifest.json").read_text())
    for r in manifest["skill"]:
        if r.get("source") == "tmy3-greensboro" and r["variable"] == "hfls" and "start" not in r:
            r["nse"] = 0.5
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert main(["emulators", "misses", "flux-lstm", "--compare", str(other)]) == 0
    out = capsys.readouterr().out
    assert f"| {other} |" in out and " 0 / 1 |" in out
    assert f"{other} lost: tmy3-greensboro / continuous / whole / hfls" in out
    assert main(["emulators", "evaluate", "flux-lstm", "--compare", str(other)]) == 2
    assert "--compare: only with the misses action" in capsys.readouterr().err
