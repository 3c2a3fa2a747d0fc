"""``python -m emulators.training.compare``: the skill tables of docs/emulators.md from
``skill.json`` reports (targets met per column, pooled, worst; old → new per source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.training import compare


def report(
    path: Path, values: dict[tuple[str, str | None, str | None], tuple[float, float]]
) -> Path:
    records = []
    for (source, start, window), (nse, kge) in values.items():
        for var in ("hfls", "hfss"):
            r = {"source": source, "variable": var, "nse": nse, "kge": kge}
            if start is not None:
                r |= {"start": start, "window": window}
            records.append(r)
    path.write_text(json.dumps({"skill": records}))
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    old = report(
        tmp_path / "old.json",
        {
            ("a", None, None): (0.98, 0.96),
            ("b", None, None): (0.96, 0.99),  # NSE below target
            ("a", "fresh", "first 48 h"): (0.97, 0.949),  # KGE below target
            ("all held-out", None, None): (0.975, 0.97),
        },
    )
    new = report(
        tmp_path / "new.json",
        {
            ("a", None, None): (0.99, 0.99),
            ("b", None, None): (0.97, 0.95),  # both exactly at the targets: met
            ("a", "fresh", "first 48 h"): (0.98, 0.96),
            ("all held-out", None, None): (0.98, 0.97),
        },
    )
    return old, new


def test_summary_counts_targets_pooled_and_worst(two: tuple[Path, Path]) -> None:
    rows = compare.summary_rows([("old", compare.load(two[0])), ("new", compare.load(two[1]))])
    old_le, old_h, new_le = rows[2], rows[3], rows[4]
    assert old_le.startswith("| old | LE | 1/2; 0.975/0.970; min 0.960 | 0/1; –; min 0.970 | – |")
    assert old_h.startswith("| old | H | 1/2;")
    assert new_le.startswith("| new | LE | 2/2; 0.980/0.970; min 0.970 | 1/1; –; min 0.980 |")


def test_per_source_marks_misses_in_bold(two: tuple[Path, Path]) -> None:
    lines = compare.per_source_tables(compare.load(two[0]), compare.load(two[1]), "old → new")
    b = next(line for line in lines if line.startswith("| b |"))
    assert b.startswith("| b | **0.960 / 0.990** → 0.970 / 0.950 | – → – |")
    a = next(line for line in lines if line.startswith("| a |"))
    assert "| **0.970 / 0.949** → 0.980 / 0.960 |" in a


def test_cli_prints_and_refuses_bad_arguments(
    two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare.main([f"old={two[0]}", f"new={two[1]}"]) == 0
    assert "| new | H | 2/2;" in capsys.readouterr().out
    assert compare.main(["--per-source", str(two[0]), str(two[1])]) == 0
    assert "H: NSE / KGE, old → new" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        compare.main([str(two[0])])  # no NAME=
    assert "expected NAME=path/to/skill.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main(["--per-source", str(two[0])])
    assert "exactly two reports" in capsys.readouterr().err
