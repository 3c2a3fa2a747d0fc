"""Architectures: registered by name, configs validate themselves, recurrent state explicit."""

from __future__ import annotations

import pytest
import torch

import emulators.nets.flux
import emulators.nets.lai  # noqa: F401  (registers lai)
from emulators import export
from emulators.compiled.closure import N_FLUX_OUTPUTS
from emulators.compiled.features import FLUX_FEATURES, N_FLUX_FEATURES
from emulators.compiled.lai_step import N_LAI_FEATURES
from emulators.nets import registry
from emulators.nets.flux import FluxLSTM, FluxTransformer, FluxTransformerStep, Normaliser


def test_emulator_architectures_are_registered() -> None:
    assert {"flux_lstm", "flux_transformer", "lai"} <= set(registry.names())


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("flux_lstm", "hidden", 0),
        ("flux_lstm", "head_hidden", -1),
        ("flux_transformer", "window", 0),
        ("lai", "layers", 0),
        ("lai", "members", 0),
        ("lai", "members", True),
    ],
)
def test_bad_config_names_the_field(name: str, field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        registry.config(name, {field: value})


def test_transformer_heads_must_divide_d_model() -> None:
    with pytest.raises(ValueError, match="divisible"):
        registry.config("flux_transformer", {"d_model": 30, "heads": 4})


def test_flux_lstm_steps_with_explicit_state() -> None:
    torch.manual_seed(0)
    model = registry.build("flux_lstm", {"hidden": 8, "head_hidden": 4})
    assert isinstance(model, FluxLSTM)
    x = torch.randn(5, 3, N_FLUX_FEATURES)
    h = torch.zeros(3, 8)
    c = torch.zeros(3, 8)
    ys = []
    for t in range(5):
        y, h, c = model(x[t], h, c)
        assert y.shape == (3, N_FLUX_OUTPUTS) and h.shape == (3, 8) and c.shape == (3, 8)
        ys.append(y)
    # the state carries memory: the same input with another history gives another output
    y_fresh, _, _ = model(x[4], torch.zeros(3, 8), torch.zeros(3, 8))
    assert not torch.allclose(y_fresh, ys[4])
    # rows are independent: stepping a subset of rows gives the same values
    y_sub, _, _ = model(x[0][:1], torch.zeros(1, 8), torch.zeros(1, 8))
    assert torch.allclose(y_sub, ys[0][:1], atol=1e-6)


def test_transformer_and_lai_shapes() -> None:
    t = registry.build("flux_transformer", {"window": 6, "d_model": 16, "heads": 2, "layers": 1})
    assert isinstance(t, FluxTransformer)
    # five served outputs plus the two raw outputs the energy/water penalties act on
    assert t(torch.randn(4, 6, N_FLUX_FEATURES)).shape == (4, N_FLUX_OUTPUTS + 2)
    step = FluxTransformerStep(t)
    x = torch.randn(4, N_FLUX_FEATURES)
    h = torch.zeros(4, step.hidden)
    y, h2, _ = step(x, h, torch.zeros(4, 1))
    assert y.shape == (4, N_FLUX_OUTPUTS) and h2.shape == h.shape
    # the window state shifts: the newest normalised features sit at the end
    assert torch.allclose(h2[:, -N_FLUX_FEATURES:], t.inputs(x))
    lai = registry.build("lai", {"hidden": 8})
    assert lai(torch.randn(7, N_LAI_FEATURES)).shape == (7, 1)


def test_normaliser_round_trip_and_refuses_bad_statistics() -> None:
    norm = Normaliser(3)
    norm.set(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 0.5, 1.0]))
    x = torch.randn(4, 3)
    assert torch.allclose(norm.inverse(norm(x)), x, atol=1e-6)
    with pytest.raises(ValueError, match="std"):
        norm.set(torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="shapes"):
        norm.set(torch.zeros(2), torch.ones(2))


def test_feature_names_are_unique_and_have_units() -> None:
    names = [f.name for f in FLUX_FEATURES]
    assert len(names) == len(set(names)) == N_FLUX_FEATURES
    assert all(f.units for f in FLUX_FEATURES)


def test_transformer_step_scripts_and_matches_eager() -> None:
    """The served form (TorchScript) of the transformer step equals the eager module."""
    t = registry.build("flux_transformer", {"window": 4, "d_model": 16, "heads": 2, "layers": 1})
    step = FluxTransformerStep(t).eval()
    with export.torchscript_quiet():
        scripted = torch.jit.script(step)
    x = torch.randn(5, N_FLUX_FEATURES)
    h = torch.randn(5, step.hidden)
    c = torch.zeros(5, 1)
    want = step(x, h, c)
    got = scripted(x, h, c)
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a, b)
