"""The canopy network of the ``hybrid`` backend (``emulators.nets.canopy``): its algebra is the
reference's (with the reference's own assimilation it reproduces ``canopy_photosynthesis`` to
round-off), its limits are exact (no light, no leaves, no water), its config validates itself,
and TorchScript computes what eager does."""

from __future__ import annotations

import types

import pytest
import torch

from emulators.nets import registry
from emulators.nets.canopy import (
    CanopyConfig,
    CanopyNet,
    ceiling,
    target_fraction,
)
from emulators.recipes.canopy import EXAMPLE_RANGES
from emulators.training.canopy import reference_canopy


def _inputs(n: int = 2000, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.tensor([lo for lo, _ in EXAMPLE_RANGES], dtype=dtype)
    high = torch.tensor([hi for _, hi in EXAMPLE_RANGES], dtype=dtype)
    return low + (high - low) * torch.rand(n, len(EXAMPLE_RANGES), generator=g, dtype=dtype)


def test_with_the_reference_assimilation_the_network_is_the_reference() -> None:
    x = _inputs()
    x[:200, 0] = 0.0  # night
    x[200:400, 5] = 0.0  # no leaves
    y = reference_canopy(x)
    r, ok = target_fraction(x, y[:, 0])
    assert bool(ok.any()) and bool((~ok).any())
    assert bool(((r >= 0) & (r <= 1)).all())
    net = CanopyConfig().build().double()
    net.fraction = types.MethodType(lambda self, x_: r, net)  # type: ignore[method-assign]
    got = net(x)
    for i in range(2):
        scale = float(y[:, i].abs().max())
        assert float((got[:, i] - y[:, i]).abs().max()) <= 1e-10 * scale


def test_limits_are_exact_whatever_the_weights() -> None:
    net = CanopyConfig(hidden=8).build().double()
    x = _inputs(300, seed=1)
    night = x.clone()
    night[:, 0] = 0.0
    y = net(night)
    assert bool((y[:, 0] == 0).all())  # no light: no assimilation
    big_leaf = (1 - torch.exp(-0.5 * night[:, 5])) / 0.5
    cuticular = night[:, 9] * night[:, 11] * big_leaf * 8.314462618 * night[:, 1] / night[:, 2]
    torch.testing.assert_close(y[:, 1], cuticular, rtol=1e-12, atol=0.0)
    leafless = x.clone()
    leafless[:, 5] = 0.0
    assert bool((net(leafless) == 0).all())
    dry = x.clone()
    dry[:, 11] = 0.0  # f_w = 0: no Rubisco capacity, no cuticular conductance
    assert bool((net(dry) == 0).all())
    _, _, cap = ceiling(x)
    assert bool((net(x)[:, 0] <= cap * (1 - torch.exp(-0.5 * x[:, 5])) / 0.5).all())


def test_config_validates_itself() -> None:
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        CanopyConfig(hidden=0)
    with pytest.raises(ValueError, match="layers must be a positive integer"):
        CanopyConfig(layers=True)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['width'\]"):
        registry.config("canopy_mlp", {"width": 3})
    net = registry.build("canopy_mlp", {"hidden": 16, "layers": 3})
    assert isinstance(net, CanopyNet)
    assert sum(isinstance(m, torch.nn.Linear) for m in net.mlp) == 4


def test_torchscript_computes_what_eager_does() -> None:
    net = CanopyConfig().build().eval()
    x = _inputs(500, dtype=torch.float32)
    scripted = torch.jit.script(net)
    assert torch.equal(scripted(x), net(x))
