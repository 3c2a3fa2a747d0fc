"""The LAI ensemble (``lai`` with ``members`` > 1): members trained exactly as one-network runs
with consecutive seeds, served as their mean ΔLAI, exported like any LAI emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emulators.compiled.lai_step import N_LAI_FEATURES
from emulators.export import load_torchscript
from emulators.manifest import Manifest
from emulators.nets import registry
from emulators.nets.lai import LAIConfig, LAIEmulator, LAIEnsemble
from emulators.recipes import get
from emulators.recipes.base import ARTIFACTS, recorded_config
from emulators.training.data import SourceSpec
from emulators.training.lai import daily_config
from emulators.training.trainer import weights_digest


def _syn(seed: int, days: int) -> SourceSpec:
    return SourceSpec("synthetic", seed=seed, cells=1, days=days, spinup_days=5)


#: the golden tiny ``lai-daily`` training of tests/emulators/recipes/test_recipes.py
TINY = {"train": (_syn(41, 60),), "validation": (_syn(51, 30),)}
TINY |= {"sample": 100, "eval_every": 5, "patience": 10, "epochs": 40, "window": 5}


def _members(seed: int, n: int) -> list[LAIEmulator]:
    torch.manual_seed(seed)
    out = []
    for _ in range(n):
        m = registry.build("lai", {"hidden": 8})
        assert isinstance(m, LAIEmulator)
        m.inputs.set(torch.linspace(1, 2, N_LAI_FEATURES), torch.linspace(2, 3, N_LAI_FEATURES))
        m.outputs.set(torch.zeros(1), torch.full((1,), 0.05))
        out.append(m.eval())
    return out


def test_the_ensemble_is_the_mean_of_its_members() -> None:
    members = _members(0, 3)
    net = LAIEnsemble.of(LAIConfig(hidden=8, members=3), members)
    assert isinstance(registry.build("lai", {"members": 3}), LAIEnsemble)
    assert isinstance(registry.build("lai", {}), LAIEmulator)
    x = torch.randn(11, N_LAI_FEATURES) * 2 + 1.5
    with torch.no_grad():
        mean = sum(m(x) for m in members) / 3
        assert torch.allclose(net(x), mean, atol=1e-7, rtol=0)
        one = LAIEnsemble.of(LAIConfig(hidden=8, members=1), members[:1])
        assert torch.equal(one(x), members[0](x))  # one member: exactly that network


def test_the_ensemble_refuses_a_wrong_count_and_another_normalisation() -> None:
    members = _members(0, 2)
    with pytest.raises(ValueError, match="members: expected 3 networks, got 2"):
        LAIEnsemble.of(LAIConfig(hidden=8, members=3), members)
    members[1].inputs.set(torch.zeros(N_LAI_FEATURES), torch.ones(N_LAI_FEATURES))
    with pytest.raises(ValueError, match="member 1 has another inputs normalisation"):
        LAIEnsemble.of(LAIConfig(hidden=8, members=2), members)


def test_members_are_the_one_network_runs_of_consecutive_seeds(tmp_path: Path) -> None:
    """Member k of a seed-s ensemble is bitwise the one-network run with seed s + k; member 0
    is the golden tiny training (test_recipes.py's hash), so an ensemble changes no single run."""
    torch.set_num_threads(1)
    single = {}
    for seed in (0, 1):
        recipe = get("lai-daily", **TINY, options={}, seed=seed)
        single[seed] = recipe.fit(recipe.config(), tmp_path, progress=False).model
    # the tiny lai-daily golden (tests/emulators/recipes/test_recipes.py: one per known machine)
    assert weights_digest(single[0]) in ("5744f1ad9016402b", "4a6e72f2b811fa94")
    recipe = get("lai-daily", **TINY, options={"members": 2})
    result = recipe.fit(recipe.config(), tmp_path, progress=False)
    net = result.model
    assert isinstance(net, LAIEnsemble)
    for k in (0, 1):
        mine, theirs = net.members[k].state_dict(), single[k].mlp.state_dict()
        assert all(torch.equal(mine[name], theirs[name]) for name in theirs)
    assert [m["member"] for m in result.extra["members"]] == [0, 1]
    assert {row["member"] for row in result.history} == {0.0, 1.0}
    assert result.extra["ensemble_val_rmse_veg"] > 0
    # exported like any LAI emulator: the manifest says how many members, no one best epoch
    directory = tmp_path / "art"
    record = recipe.training_record(recipe.config(), result, 1.0)
    assert "best_epoch" not in record and len(record["members"]) == 2
    recipe.export_model(net, directory, record, compile_aoti=False)
    manifest = Manifest.load(directory)
    assert manifest.config["members"] == 2 and manifest.export_checks["onnx"] <= 1e-5
    ts = load_torchscript(manifest.artifact_path(directory, "torchscript"))
    x = net.inputs.mean + net.inputs.std * torch.randn(9, N_LAI_FEATURES)
    assert torch.equal(ts(x), net(x))
    eager = recipe.eager(directory)
    assert isinstance(eager, LAIEnsemble) and torch.equal(eager(x), net(x))


def test_lai_daily_ships_an_ensemble_of_three() -> None:
    cfg = daily_config()
    assert cfg.options == {"hidden": 128, "members": 3} and cfg.seed == 0
    assert get("lai-daily").config() == cfg


def test_the_shipped_lai_daily_is_the_recipe_s_ensemble() -> None:
    """The committed artifact is what ``landcoupler emulators train lai-daily`` trains: its
    training config is the recipe's, three members, each with its own best epoch."""
    manifest = Manifest.load(ARTIFACTS / "lai_daily")
    assert manifest.config["members"] == 3
    recipe_config = json.loads(json.dumps(recorded_config(get("lai-daily").config())))
    assert manifest.training["config"] == recipe_config
    assert [m["member"] for m in manifest.training["members"]] == [0, 1, 2]
    assert "best_epoch" not in manifest.training
    net = get("lai-daily").eager(ARTIFACTS / "lai_daily")
    assert isinstance(net, LAIEnsemble) and len(net.members) == 3


def test_a_bad_member_count_is_refused_before_any_data_or_training(tmp_path: Path) -> None:
    recipe = get("lai-daily", **TINY, options={"members": 0})
    with pytest.raises(ValueError, match="lai: members must be a positive integer, got 0"):
        recipe.fit(recipe.config(), tmp_path, progress=False)
    recipe = get("lai-daily", **TINY, options={"member": 2})
    with pytest.raises(ValueError, match=r"lai: unknown option\(s\) \['member'\]"):
        recipe.fit(recipe.config(), tmp_path, progress=False)
