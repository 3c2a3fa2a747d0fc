"""An ensemble in the flux LSTM's training (``FluxTrainConfig.members``): pinned TorchScript
networks, checked against their SHA-256, merged with the network the config trains into one wider
``flux_lstm`` whose outputs are the members' mean; malformed or mismatched pins are refused
naming the field."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from emulators.nets import registry
from emulators.nets.flux import FluxLSTM
from emulators.training import flux
from emulators.training.data import SourceSpec
from emulators.training.flux import FluxTrainConfig

SPEC = SourceSpec("synthetic", seed=3, cells=2, days=4, spinup_days=2)


def _config(**changes: object) -> FluxTrainConfig:
    base = FluxTrainConfig(
        train=(SPEC,),
        validation=(SPEC,),
        window=6,
        epochs=1,
        windows_per_epoch=2,
        validation_days=2,
        options={"hidden": 8},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FluxLSTM]:
    torch.manual_seed(5)
    net = registry.build("flux_lstm", {"hidden": 6, "head_hidden": 4})
    assert isinstance(net, FluxLSTM)
    f = net.inputs.mean.shape[0]
    with torch.no_grad():
        net.inputs.set(torch.randn(f), torch.rand(f) + 0.5)
    path = tmp_path_factory.mktemp("pinned") / "member.ts"
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    return path, net.eval()


def test_the_trained_network_joins_the_pinned_one_as_their_mean(
    cache: Path, pinned: tuple[Path, FluxLSTM]
) -> None:
    path, member = pinned
    alone = flux.train(_config(), cache=cache, progress=False).model
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    result = flux.train(_config(members=((str(path), sha),)), cache=cache, progress=False)
    merged = result.model
    assert isinstance(merged, FluxLSTM) and merged.hidden == 6 + 8
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, merged.inputs.mean.shape[0], generator=g) * 3
    with torch.no_grad():
        y = merged(x, torch.zeros(16, 14), torch.zeros(16, 14))[0]
        a = member(x, torch.zeros(16, 6), torch.zeros(16, 6))[0]
        b = alone(x, torch.zeros(16, 8), torch.zeros(16, 8))[0]
    assert torch.allclose(y, (a + b) / 2, rtol=1e-5, atol=1e-4 * float(y.abs().max()))
    assert not torch.allclose(y, b, rtol=1e-3)


def test_a_pin_with_another_hash_is_refused_naming_the_field(
    cache: Path, pinned: tuple[Path, FluxLSTM]
) -> None:
    with pytest.raises(ValueError, match=r"members: .* has SHA-256 .*, the config wants 0000"):
        flux.train(_config(members=((str(pinned[0]), "0000"),)), cache=cache, progress=False)


@pytest.mark.parametrize("bad", [("only-a-path",), ("", "abcd"), ["a.ts", "abcd"]])
def test_malformed_members_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"members\[0\] must be a \(TorchScript path"):
        _config(members=(bad,))


def test_the_measured_two_seed_ensemble_is_one_get_away() -> None:
    """``CANDIDATES["E2"]``: candidate G from seed 1, with the pinned network of seed 0 (the
    file and hash in the repository) as its first member."""
    import emulators.recipes as recipes
    from emulators.training import flux_cold
    from emulators.training.widened import CANDIDATES, HOURLY_INIT

    config = recipes.get("flux-lstm", **CANDIDATES["E2"]).config()
    g = recipes.get("flux-lstm", **CANDIDATES["G"]).config()
    assert dataclasses.replace(config, seed=0, members=()) == g and config.seed == 1
    [(path, sha)] = config.members
    assert path == HOURLY_INIT
    member = flux_cold.load_member(path, sha)
    assert member.hidden == 48 and not member.physics


def test_members_are_recorded_in_the_manifest_only_when_set() -> None:
    """Manifests trained before the option existed stay what their training wrote."""
    from emulators.recipes.base import recorded_config
    from emulators.training.widened import CANDIDATES

    assert "members" not in recorded_config(_config())
    assert "members" in dataclasses.asdict(_config())
    pinned = CANDIDATES["E2"]["members"]
    assert recorded_config(_config(members=pinned))["members"] == pinned
