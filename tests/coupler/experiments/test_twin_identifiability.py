"""The twin's identifiability options: which parameters the ensemble estimates (the others
held at the truth's hidden values) and which observation types it assimilates; the r² of the
parameters against the observed ensembles (docs/assimilation.md, "Which parameters the twin
can recover, and why")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coupler.errors import InvalidArgument
from coupler.experiments.twin import domain, parameters, run_twin
from coupler.experiments.twin_config import PRIORS, TwinConfig

SHORT = dict(members=4, cells=2, days=17, spinup_days=1, start="2001-06-01", towers=1)
VMAX0, PSICR = (p.index for p in PRIORS)


def _draw(cfg: TwinConfig) -> tuple[torch.Tensor, torch.Tensor]:
    lat, lon, cover = domain(cfg)
    return parameters(
        cfg,
        torch.from_numpy(lat),
        torch.from_numpy(lon),
        cover,
        torch.Generator().manual_seed(1),
        torch.Generator().manual_seed(2),
    )


def test_held_parameters_are_the_truth_and_estimated_ones_the_same_draws() -> None:
    both_ens, both_truth = _draw(TwinConfig(**SHORT))  # type: ignore[arg-type]
    ens, truth = _draw(TwinConfig(**SHORT, estimate=("psicr",)))  # type: ignore[arg-type]
    assert torch.equal(truth, both_truth)
    # vmax0 held: every member has the truth's value; psicr: the same prior draws as before
    assert torch.equal(ens[..., VMAX0], truth[..., VMAX0].expand_as(ens[..., VMAX0]))
    assert torch.equal(ens[..., PSICR], both_ens[..., PSICR])
    assert not torch.equal(both_ens[..., VMAX0], ens[..., VMAX0])
    assert float(ens[..., PSICR].std(0).min()) > 0.0
    none, truth = _draw(TwinConfig(**SHORT, estimate=()))  # type: ignore[arg-type]
    assert torch.equal(none[..., [VMAX0, PSICR]], truth[..., [VMAX0, PSICR]].expand(4, -1, -1, -1))


def test_short_twin_estimating_one_parameter_from_lai_only() -> None:
    result = run_twin(TwinConfig(**SHORT, estimate=("psicr",), observe=("lai",)))  # type: ignore[arg-type]
    s = result["settings"]
    assert s["estimated_parameters"] == ["psicr"] and s["observed"] == ["lai"]
    # only the two LAI composites (days 8 and 16, 2 cells each) are assimilated
    assert result["analyses"] == 2
    assert result["observations_used"] + result["observations_rejected"] == 2 * 2
    assert set(result["parameter_rmse"]) == {
        "psicr_free",
        "psicr_free_spread",
        "psicr_da",
        "psicr_da_spread",
    }
    r2 = result["identifiability_r2"]
    # every observation type is simulated (and scored), whichever are assimilated
    assert set(r2) == {
        f"{e}:psicr:{v}" for e in ("free", "da") for v in ("lai", "hfls", "hfss", "ts")
    }
    assert all(0.0 <= v <= 1.0 for v in r2.values())
    # the free ensemble is never updated: its psicr error equals the prior's of the full set-up
    full = run_twin(TwinConfig(**SHORT))  # type: ignore[arg-type]
    assert result["parameter_rmse"]["psicr_free"] == full["parameter_rmse"]["psicr_free"]
    assert result["series"]["lai_truth"] == full["series"]["lai_truth"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"estimate": ("vmax0", "kmax")}, "estimate"),
        ({"estimate": ("psicr", "psicr")}, "estimate"),
        ({"estimate": "psicr"}, "estimate"),
        ({"observe": ()}, "observe"),
        ({"observe": ("lai", "ndvi")}, "observe"),
    ],
)
def test_identifiability_options_are_validated(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        TwinConfig(**kw)  # type: ignore[arg-type]
    assert (err.value.field, err.value.rule) == (field, "known")


def test_twin_cli_rejects_an_unknown_parameter(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from coupler.cli import main; sys.exit(main())",
        "twin",
        "--estimate",
        "vmax0,gradm",
        "--out",
        str(tmp_path / "r"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "estimate: ('vmax0', 'gradm')" in res.stderr and "rule: known" in res.stderr
    assert not (tmp_path / "r").exists()
