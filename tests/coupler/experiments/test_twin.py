"""The twin experiment runs end to end (short) and writes its report; the full experiment's
numbers are in docs/assimilation.md (`landcoupler twin`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coupler.errors import InvalidArgument
from coupler.experiments import twin_report as report
from coupler.experiments.twin import run_twin
from coupler.experiments.twin_config import TwinConfig


def test_short_twin_and_report(tmp_path: Path) -> None:
    cfg = TwinConfig(members=4, cells=2, days=17, spinup_days=1, start="2001-06-01", towers=1)
    result = run_twin(cfg)
    assert result["analyses"] == 17
    # per day: 2 LST + 2 fluxes at the tower; LAI composites on days 8 and 16 (2 cells each)
    assert result["observations_used"] + result["observations_rejected"] == 17 * 4 + 2 * 2
    assert sum(result["lai_rank_histogram"]) == 4 and len(result["lai_rank_histogram"]) == 5
    for key in (
        "lai_rmsd_free",
        "lai_rmsd_analysis",
        "spread_rmse_ratio",
        "hfls_rmse_free",
        "hfls_rmse_analysis",
        "hfss_rmse_analysis",
        "ts_rmse_free",
        "ts_rmse_analysis",
    ):
        assert result[key] >= 0.0
    # free and assimilating members start identical: before the first LAI analysis their LAI
    # series differ only through the daily LST/flux analyses
    assert len(result["series"]["lai_truth"]) == 17
    paths = report.write(result, tmp_path)
    summary = json.loads(paths["json"].read_text())
    assert "series" not in summary and summary["settings"]["members"] == 4
    assert "| LAI (daily mean) |" in paths["markdown"].read_text()
    assert paths["png"].stat().st_size > 10_000


def test_short_twin_with_an_emulator_ensemble() -> None:
    """The ensembles on the torchscript emulator backend, the truth on the reference model:
    the same observations (the truth does not depend on the ensemble's backend), other
    ensemble statistics."""
    kw = dict(members=4, cells=2, days=9, spinup_days=1, start="2001-06-01", towers=1)
    ref = run_twin(TwinConfig(**kw))  # type: ignore[arg-type]
    emu = run_twin(TwinConfig(**kw, backend="torchscript"))  # type: ignore[arg-type]
    assert emu["settings"]["backend"] == "torchscript"
    assert emu["settings"]["truth_backend"] == "reference"
    assert emu["series"]["lai_truth"] == ref["series"]["lai_truth"]
    assert emu["series"]["lai_free"] != ref["series"]["lai_free"]
    assert emu["analyses"] == 9 and emu["observations_used"] > 0
    for key in ("lai_rmsd_free", "lai_rmsd_analysis", "hfls_rmse_analysis", "ts_rmse_analysis"):
        assert 0.0 <= emu[key] < float("inf"), key


def test_twin_config_validation() -> None:
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(towers=40, cells=16)
    assert err.value.field == "towers"
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(timestep=7000)
    assert err.value.field == "timestep"
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(backend="triton")
    assert (err.value.field, err.value.rule) == ("backend", "known_backend")


def test_twin_cli_json(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from coupler.cli import main; sys.exit(main())",
        "twin",
        "--members",
        "3",
        "--cells",
        "1",
        "--days",
        "9",
        "--spinup-days",
        "0",
        "--out",
        str(tmp_path / "r"),
        "--json",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(res.stdout)
    assert out["settings"]["days"] == 9 and "lai_rmsd_ratio" in out
    assert (tmp_path / "r" / "twin.png").exists()
