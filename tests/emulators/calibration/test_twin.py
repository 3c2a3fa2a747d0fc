"""A tiny MdPL twin end to end: the generator trained through the frozen flux emulator lowers
the flux error of the reference model vs the hidden parameters, leave-one-out predictions never
see the held-out site, the emulator's weights stay frozen, and the CLI writes its products."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from coupler.cli import main
from emulators import io
from emulators import parameters as P
from emulators.calibration.experiment import flux_rmse
from emulators.calibration.fit import FitConfig, fit, fold_of
from emulators.calibration.sites import TwinConfig, make_sites
from emulators.calibration.surrogate import load_frozen

TINY = TwinConfig(sites_per_class=2, classes=2, days=40, spinup_days=5, first_day=150, seed=1)
FIT = FitConfig(epochs=8, lr=0.05, progress=False)


@pytest.fixture(scope="module")
def sites() -> Any:
    return make_sites(TINY)


@pytest.fixture(scope="module")
def result(sites: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    ckpt = tmp_path_factory.mktemp("cal") / "checkpoint.pt"
    return fit(sites, dataclasses.replace(FIT, checkpoint=ckpt)), ckpt


def test_twin_sites_have_hidden_parameters_in_range(sites: Any) -> None:
    assert sites.n == 4 and sorted(set(sites.tile.tolist())) == [0, 1]
    P.check_parameters(torch.as_tensor(sites.hidden))
    defaults = P.default_table().numpy()[sites.tile]
    assert not np.allclose(sites.hidden, defaults)
    assert sites.obs["hfls"].shape == (40, 4)
    assert not np.array_equal(sites.obs["hfls"], sites.truth["hfls"])  # noisy


def test_calibration_lowers_the_flux_error(sites: Any, result: Any) -> None:
    res, ckpt = result
    P.check_parameters(torch.as_tensor(res.calibrated))
    # the start is the class defaults (a default on a range bound sits 1e-4 of the range inside)
    low, high = (t.numpy() for t in P.bounds())
    start = (res.default - P.default_table().numpy()[sites.tile]) / (high - low)
    assert np.abs(start).max() <= 1.01e-4
    before, after = flux_rmse(sites, res.default), flux_rmse(sites, res.calibrated)
    assert after["hfls"] + after["hfss"] < 0.9 * (before["hfls"] + before["hfss"])
    assert res.history[-1]["train_calibration"] < res.history[0]["train_calibration"]
    state = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == res.epochs and "generators" in state


def test_loocv_never_sees_the_held_out_site(sites: Any, result: Any) -> None:
    res, _ = result
    assert np.isfinite(res.loocv).all()
    fold = fold_of(sites)
    victim = int(np.flatnonzero(fold == 0)[0])
    changed = sites.subset(np.arange(sites.n))
    changed.obs = {k: v.copy() for k, v in sites.obs.items()}
    for k in changed.obs:
        changed.obs[k][:, victim] += 40.0  # the held-out site's observations change a lot
    res2 = fit(changed, FIT)
    assert np.array_equal(res2.loocv[victim], res.loocv[victim])
    assert not np.array_equal(res2.calibrated[victim], res.calibrated[victim])


def test_resume_from_a_checkpoint_goes_on_bitwise(sites: Any, tmp_path: Path) -> None:
    short = dataclasses.replace(FIT, epochs=3, loocv=False, checkpoint=tmp_path / "a.pt")
    fit(sites, short)
    resumed = fit(sites, dataclasses.replace(short, epochs=5, resume=tmp_path / "a.pt"))
    straight = fit(sites, dataclasses.replace(short, epochs=5, checkpoint=None))
    assert resumed.epochs == straight.epochs == 5
    assert np.array_equal(resumed.calibrated, straight.calibrated)
    assert np.array_equal(resumed.direct, straight.direct)
    with pytest.raises(ValueError, match="resume"):
        fit(sites, dataclasses.replace(FIT, epochs=5, resume=tmp_path / "a.pt"))  # loocv shape


def test_emulator_weights_are_frozen() -> None:
    net, hidden, _ = load_frozen()
    assert all(not p.requires_grad for p in net.parameters())
    assert hidden == 32  # the pinned network of 2026-11-23, not the served flux-lstm-daily


def test_the_twin_keeps_the_network_its_figures_come_from() -> None:
    """The served daily emulator was retrained (2026-12-07); calibration's default stays the
    2026-11-23 network (the cold-start fine-tuning's parent, same file), sha256-checked."""
    from emulators.calibration.surrogate import DEFAULT_ARTIFACT
    from emulators.manifest import Manifest
    from emulators.training.flux_cold import DAILY_PARENT, DAILY_PARENT_SHA256, init_path

    manifest = Manifest.load(DEFAULT_ARTIFACT)
    path = manifest.artifact_path(DEFAULT_ARTIFACT, "torchscript")  # verifies the sha256
    assert path == init_path(DAILY_PARENT)
    assert manifest.artifacts["torchscript"]["sha256"].startswith(DAILY_PARENT_SHA256)


def test_loocv_needs_two_sites_per_class() -> None:
    one = make_sites(TwinConfig(sites_per_class=1, classes=2, days=30, spinup_days=2))
    with pytest.raises(ValueError, match="loocv"):
        fit(one, FitConfig(epochs=1, progress=False))


def test_cli_writes_report_taylor_and_map(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    argv = [
        "calibrate", "--out", str(out), "--sites-per-class", "2", "--classes", "2",
        "--days", "30", "--epochs", "2", "--no-loocv", "--no-progress", "--da-members", "4",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    # the ensemble filter's estimate (an assimilating session) is evaluated like the others
    assert set(report["rmse_wm2"]) == {"default", "calibrated", "direct", "filter"}
    for k in ("hfls", "hfss", "hfls_r", "hfss_r"):
        assert np.isfinite(report["rmse_wm2"]["filter"][k]), k
    assert set(report["rmse_wm2"]["filter"]["by_class"]) == {"ebf", "dfw"}
    assert all(np.isfinite(row["error_filter"]) for row in report["parameters"])
    da = report["filter"]
    assert da["members"] == 4 and da["observations"] == 2 * 4 * 29  # LE, H; 4 sites; 29 days
    assert da["estimated"] and set(da["estimated"]) <= set(P.PARAMETER_NAMES)
    assert report["albedo_error"]["default"] > 0 and set(report["emulator_floor_wm2"]) == {
        "hfls",
        "hfss",
    }
    assert set(report["rmse_wm2"]["calibrated"]["by_class"]) == {"ebf", "dfw"}
    assert [p["parameter"] for p in report["parameters"]] == list(P.PARAMETER_NAMES)
    assert (out / "taylor.png").stat().st_size > 1000
    ds = io.open_zarr(str(out / "parameters.zarr"))
    assert ds["vegh"].attrs["units"] == "m" and ds.attrs["Conventions"].startswith("CF")
    assert ds.sizes["cell"] == 4


def test_cli_no_da_skips_the_filter(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    argv = [
        "calibrate", "--out", str(out), "--sites-per-class", "2", "--classes", "1",
        "--days", "30", "--epochs", "1", "--no-loocv", "--no-progress", "--no-da",
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["rmse_wm2"]) == {"default", "calibrated", "direct"}
    assert "filter" not in report and "error_filter" not in report["parameters"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--da-members", "1"], "--da-members: must be in 2..1000, got 1"),
        (["--da-members", "1001"], "--da-members: must be in 2..1000, got 1001"),
    ],
)
def test_cli_refuses_bad_filter_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "cal"
    assert main(["calibrate", "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # refused before anything was made or written


@pytest.mark.parametrize(
    "args",
    [["--da-members", "many"], ["--da-inflation", "fixed"], ["--da-parameters", "some"]],
)
def test_cli_parser_refuses_bad_filter_choices(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calibrate", *args])
    assert info.value.code == 2
    assert args[0] in capsys.readouterr().err
