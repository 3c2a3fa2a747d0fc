"""The ``hybrid`` backend (``emulators.compiled.hybrid``): with an exact canopy it is the reference
model (to float32 rounding of the canopy inputs), the coupler builds it by name, it is not
batched across sessions, and the shipped ``canopy-mlp`` holds a short held-out run against the
reference, continuous and from fresh and resumed starts, at the flux emulators' targets (NSE ≥
0.97, KGE ≥ 0.95 for LE and H; the full table: ``landcoupler emulators evaluate canopy-mlp``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from coupler.core import registry
from emulators.compiled.hybrid import HybridBackend
from emulators.reference import ReferenceBackend
from emulators.training.canopy import reference_canopy
from emulators.training.data import SourceSpec, simulate
from emulators.training.evaluate_hybrid import evaluate_hybrid, rollout

ARTIFACT = Path(__file__).parents[3] / "emulators/artifacts/canopy_mlp"
SHORT = SourceSpec("tmy3-greensboro", seed=32, replicas=2, spinup_days=20, record_days=10)


def _exact(x: torch.Tensor) -> torch.Tensor:
    return reference_canopy(x.double()).float()


def test_with_an_exact_canopy_the_hybrid_is_the_reference(tmp_path: Path) -> None:
    spec = SourceSpec("synthetic", seed=3, cells=2, days=4, spinup_days=2)
    traj = simulate(spec, 3600, progress=False, cache=tmp_path)
    exact = rollout(lambda c: HybridBackend(c, net=_exact), spec, traj, 0)
    ref = rollout(ReferenceBackend, spec, traj, 0)
    for v in ("hfls", "hfss", "ts"):
        scale = np.abs(ref[v]).max()
        assert np.abs(exact[v] - ref[v]).max() <= 1e-3 * scale, v
    # and the reference rerun from its recorded state is its recorded trajectory
    np.testing.assert_allclose(ref["hfss"], traj.outputs["hfss"], rtol=0, atol=1e-2)


def test_the_coupler_builds_it_by_name_and_does_not_batch_it() -> None:
    backend = registry.create("hybrid")
    assert isinstance(backend, HybridBackend) and backend.name == "hybrid"
    assert backend.batch_cells == 0
    assert backend.manifest.architecture == "canopy_mlp"
    with pytest.raises(ValueError, match="loader: must be one of"):
        HybridBackend(loader="tensorrt")
    with pytest.raises(ValueError, match=r"loader: must be one of .*, got 'fused'"):
        HybridBackend(loader="fused")  # an operator for the flux LSTM only


def test_the_shipped_network_holds_a_short_held_out_run(tmp_path: Path) -> None:
    manifest = evaluate_hybrid(
        ARTIFACT, tmp_path / "report", tmp_path, progress=False, specs=[SHORT], save=False
    )
    rows = [r for r in manifest.skill if r["variable"] in ("hfls", "hfss")]
    assert {r.get("start", "continuous") for r in rows} == {"continuous", "fresh", "resumed"}
    assert len(rows) == 2 * (1 + 2 * 3) * 2  # source and pooled; continuous + 2 starts × 3
    for r in rows:
        assert r["nse"] >= 0.97 and r["kge"] >= 0.95, r
    assert (tmp_path / "report" / "skill.md").exists()


@pytest.mark.parametrize("loader", ["aoti", "onnx"])
def test_the_shipped_formats_agree_on_night_leafless_and_dry_rows(loader: str) -> None:
    from emulators.compiled.artifacts import load_artifact
    from emulators.manifest import Manifest
    from emulators.recipes.canopy import EXAMPLE_RANGES

    manifest = Manifest.load(ARTIFACT)
    g = torch.Generator().manual_seed(3)
    low = torch.tensor([lo for lo, _ in EXAMPLE_RANGES])
    high = torch.tensor([hi for _, hi in EXAMPLE_RANGES])
    x = low + (high - low) * torch.rand(400, len(EXAMPLE_RANGES), generator=g)
    x[:100, 0], x[100:200, 5], x[200:300, 11] = 0.0, 0.0, 0.0
    ts = load_artifact(manifest, ARTIFACT, "torchscript", "cpu")(x)
    other = torch.as_tensor(np.asarray(load_artifact(manifest, ARTIFACT, loader, "cpu")(x)))
    assert bool(torch.isfinite(other).all())
    assert bool((ts[:100, 0] == 0).all()) and bool((ts[100:300] == 0).all())
    torch.testing.assert_close(other, ts, rtol=1e-5, atol=1e-12)


DAILY = SourceSpec("tmy3-greensboro", seed=33, replicas=2, spinup_days=20, record_days=40)


def test_the_shipped_network_holds_a_short_held_out_run_at_daily_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hybrid serves any step: at daily steps (the daily flux emulator's protocol: fresh and
    resumed starts, the first 2 days vs the rest) it holds the targets too; the CLI's
    ``--timestep`` writes that report and leaves the manifest's hourly skill as it was."""
    from coupler.cli import main
    from emulators.manifest import Manifest

    manifest = evaluate_hybrid(
        ARTIFACT, tmp_path / "report", tmp_path, progress=False, specs=[DAILY], save=False,
        timestep=86_400,
    )  # fmt: skip
    rows = [r for r in manifest.skill if r["variable"] in ("hfls", "hfss")]
    assert {r.get("start", "continuous") for r in rows} == {"continuous", "fresh", "resumed"}
    for r in rows:
        assert r["nse"] >= 0.97 and r["kge"] >= 0.95, r
    assert "86400 s steps" in (tmp_path / "report" / "skill.md").read_text()
    assert Manifest.load(ARTIFACT).skill != manifest.skill  # not saved
    # the CLI refuses --timestep where it has no meaning, naming the option
    for argv in (["evaluate", "flux-lstm"], ["train", "canopy-mlp"]):
        assert main(["emulators", *argv, "--timestep", "86400", "--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "timestep: flux-lstm is evaluated at the step it was trained for" in err
    assert "--timestep: only with the evaluate action" in err
