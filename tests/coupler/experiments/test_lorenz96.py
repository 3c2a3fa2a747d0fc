"""Lorenz-96 validation against published benchmarks (Sakov & Oke 2008 in DAPPER), fast
versions: fewer cycles and looser bounds than the documented 5 000-cycle acceptance runs
(docs/assimilation.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from coupler.assimilation.config import FilterConfig, FilterKind, InflationConfig, InflationKind
from coupler.errors import InvalidArgument
from coupler.experiments.lorenz96 import Lorenz96, TwinConfig, run_twin


def test_lorenz96_tendency_and_fixed_point() -> None:
    model = Lorenz96()
    x = torch.full((40,), 8.0, dtype=torch.float64)
    assert torch.equal(model.tendency(x), torch.zeros(40, dtype=torch.float64))
    x = torch.arange(40, dtype=torch.float64)
    i = 5
    want = (x[i + 1] - x[i - 2]) * x[i - 1] - x[i] + 8.0
    assert model.tendency(x)[i].item() == pytest.approx(want.item())
    # batched members step independently
    xs = torch.stack([x, x.flip(0)])
    torch.testing.assert_close(model.step(xs)[1], model.step(x.flip(0)))


def _fixed(kind: FilterKind, factor: float) -> FilterConfig:
    return FilterConfig(
        kind=kind, inflation=InflationConfig(kind=InflationKind.FIXED, factor=factor)
    )


@pytest.mark.parametrize(
    ("kind", "factor", "radius", "bound"),
    [
        (FilterKind.EAKF, 1.02, None, 0.21),  # published 0.178; acceptance (5000 cycles) 0.20
        (FilterKind.EAKF, 1.02, 4.0, 0.23),  # published ~0.20; acceptance 0.22
        (FilterKind.ENKF, 1.06, None, 0.25),  # published 0.218
        (FilterKind.ETKF, 1.02, None, 0.21),  # published 0.178
    ],
)
def test_twin_experiment_reaches_published_rmse(
    kind: FilterKind, factor: float, radius: float | None, bound: float
) -> None:
    out = run_twin(
        TwinConfig(filter=_fixed(kind, factor), cycles=600, spinup=200, localization_radius=radius)
    )
    assert out["rmse_analysis"] <= bound
    assert out["rmse_analysis"] < out["rmse_forecast"]
    assert 0.7 < out["spread_analysis"] / out["rmse_analysis"] < 1.5
    assert 3.0 < out["rmse_climatology"] < 4.2  # published climatology ~3.6
    assert out["mean_obs_used"] > 39.0


def test_no_inflation_is_worse_than_inflation() -> None:
    """A sanity check that the comparison has teeth: N=10 without inflation or localisation
    does far worse than the tuned filter."""
    out = run_twin(TwinConfig(filter=FilterConfig(), members=10, cycles=300, spinup=100))
    assert out["rmse_analysis"] > 0.4


def test_twin_config_is_validated() -> None:
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(members=1)
    assert err.value.field == "members"
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(filter=FilterConfig(kind=FilterKind.LETKF))
    assert err.value.field == "localization"


def test_cli_prints_json() -> None:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from coupler.cli import main; sys.exit(main())",
        "lorenz96",
        "--filter",
        "letkf",
        "--members",
        "20",
        "--inflation",
        "1.05",
        "--localization",
        "4",
        "--cycles",
        "150",
        "--spinup",
        "100",
        "--seed",
        "3",
        "--json",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(res.stdout)
    assert out["filter"] == "letkf" and out["members"] == 20 and out["localization_radius"] == 4.0
    assert out["cycles"] == 150 and out["inflation_factor"] == 1.05
    assert 0.0 < out["rmse_analysis"] < 0.5
    assert {"spread_analysis", "rmse_forecast"} <= out.keys()
    bad = subprocess.run(
        [*cmd[:-1], "--members", "1", "--json"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "members" in bad.stderr
