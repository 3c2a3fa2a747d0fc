"""Training of the canopy network (``training.canopy``): the samples are exactly the reference's
canopy calls (recomputed from a trajectory's recorded state, they give its recorded GPP), the
training is deterministic and learns, and its config validates itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emulators import constants as C
from emulators import landstep
from emulators.reference.soil import SoilConfig
from emulators.training import canopy
from emulators.training.data import SourceSpec, simulate
from emulators.training.trainer import weights_digest

TRAIN = SourceSpec("synthetic", seed=5, cells=3, days=6, spinup_days=3)


def test_samples_are_the_reference_canopy_calls(tmp_path: Path) -> None:
    traj = simulate(TRAIN, 3600, progress=False, cache=tmp_path)
    rng = np.random.default_rng(0)
    t = rng.integers(0, traj.steps, 4000)
    r = rng.integers(0, traj.rows, 4000)
    x = canopy.canopy_inputs(traj, t, r)
    gpp = canopy.reference_canopy(x)[:, 0]
    vegetated = landstep.class_constants(SoilConfig(), torch.float64)["vegetated"]
    cover = torch.as_tensor(traj.params[r, 4], dtype=torch.float64) * vegetated[traj.tile[r]]
    tile_gpp = gpp * C.MOLAR_MASS_C * cover  # what the reference writes per tile
    recorded = torch.as_tensor(traj.outputs["gpp"][t, r], dtype=torch.float64)
    day = recorded > 1e-3 * float(recorded.max())
    assert int(day.sum()) > 500
    torch.testing.assert_close(tile_gpp[day], recorded[day], rtol=2e-4, atol=0.0)


def test_training_is_deterministic_and_learns(tmp_path: Path) -> None:
    cfg = canopy.CanopyTrainConfig(
        train=(TRAIN,),
        validation=(TRAIN,),
        samples_per_source=4000,
        epochs=30,
        threads=1,
        batch=64,
        options={"hidden": 16},
    )
    first = canopy.train(cfg, cache=tmp_path, progress=False)
    second = canopy.train(cfg, cache=tmp_path, progress=False)
    assert weights_digest(first.model) == weights_digest(second.model)
    # other (step, row) draws of the training source: in-distribution skill
    val = canopy.Samples.draw([simulate(TRAIN, 3600, progress=False, cache=tmp_path)], 4000, 9)
    torch.manual_seed(0)
    untrained = canopy.validation_errors(canopy.registry.build("canopy_mlp", {"hidden": 16}), val)
    trained = canopy.validation_errors(first.model, val)
    assert trained["conductance_rrmse"] < 0.5 * untrained["conductance_rrmse"]
    best = first.history[first.best_epoch - 1]["conductance_rrmse"]
    assert best == min(h["conductance_rrmse"] for h in first.history)
    assert trained["conductance_rrmse"] != best  # another draw of the validation source
    assert first.extra["samples"]["validation"] == 4000


def test_config_validates_itself() -> None:
    with pytest.raises(ValueError, match="samples_per_source must be >= 1"):
        canopy.CanopyTrainConfig(samples_per_source=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        canopy.CanopyTrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="train and validation need at least one source"):
        canopy.CanopyTrainConfig(train=())
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['depth'\]"):
        canopy.CanopyTrainConfig(options={"depth": 2})
