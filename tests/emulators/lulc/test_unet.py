"""The registered U-Net: shapes, config validation, input checks, prior, gradients."""

from __future__ import annotations

import pytest
import torch

from emulators.lulc.conservation import aggregation_error, upsample
from emulators.lulc.unet import LulcUNet, LulcUNetConfig, check_inputs, downscale
from emulators.nets import registry


def _inputs(b: int = 2, h: int = 3, w: int = 4, factor: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.softmax(3 * torch.randn(b, 8, h, w, generator=g), dim=1)
    features = torch.randn(b, 9, factor * h, factor * w, generator=g)
    return coarse.float(), features


def test_registered_by_name_and_shapes() -> None:
    assert "lulc_unet" in registry.names()
    model = registry.build("lulc_unet", {"widths": (8, 16)})
    assert isinstance(model, LulcUNet)
    coarse, features = _inputs()
    out = model.eval()(coarse, features)
    assert out.shape == (2, 8, 24, 32)
    assert out.dtype == torch.float64
    assert model.logits(coarse, features).shape == (2, 8, 24, 32)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"factor": 0}, "factor"),
        ({"widths": ()}, "widths"),
        ({"widths": (8, 0)}, "widths"),
        ({"factor": 6, "widths": (8, 16, 32)}, "factor"),
        ({"sinkhorn_iterations": -1}, "sinkhorn_iterations"),
        ({"prior_eps": 0.0}, "prior_eps"),
        ({"n_classes": 1}, "n_classes"),
    ],
)
def test_config_validation_names_the_field(options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LulcUNetConfig(**options)


def test_unknown_option_is_refused_by_the_registry() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        registry.config("lulc_unet", {"depth": 3})


def test_untrained_network_is_the_area_weighted_baseline() -> None:
    """The head starts at zero: output = coarse fractions spread uniformly (exactly)."""
    model = LulcUNetConfig(widths=(8, 16)).build().eval()
    coarse, features = _inputs(seed=1)
    with torch.no_grad():
        out = model(coarse, features)
    c = coarse.double() / coarse.double().sum(dim=1, keepdim=True)
    assert torch.allclose(out, upsample(c, 8), atol=1e-12)


def test_trained_like_output_conserves_and_gradients_flow() -> None:
    model = LulcUNetConfig(widths=(8, 16)).build()
    with torch.no_grad():
        model.head.weight.normal_(0.0, 1.0)
    coarse, features = _inputs(seed=2)
    out = model(coarse, features)
    c = coarse.double() / coarse.double().sum(dim=1, keepdim=True)
    assert aggregation_error(out, c, 8) <= 1e-6
    target = torch.softmax(torch.randn_like(out), dim=1)
    loss = -(target * torch.log(out.clamp_min(1e-12))).sum(dim=1).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    head_grad = model.head.weight.grad
    assert head_grad is not None and float(head_grad.abs().sum()) > 0.0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c, f: (c[:, :7], f), "coarse: expected shape"),
        (lambda c, f: (c, f[:, :, :-8]), "features: expected shape"),
        (lambda c, f: (c * 2, f), "coarse: fractions must lie in"),
        (lambda c, f: (c * 0.5, f), "must sum to 1"),
        (
            lambda c, f: (c, f.index_fill(1, torch.tensor([3]), float("nan"))),
            "features: non-finite",
        ),
    ],
)
def test_bad_inputs_are_named(mutate, message: str) -> None:
    coarse, features = _inputs()
    c, f = mutate(coarse, features)
    with pytest.raises(ValueError, match=message):
        check_inputs(c, f, LulcUNetConfig())


def test_good_inputs_pass_the_check_and_downscale() -> None:
    coarse, features = _inputs()
    check_inputs(coarse, features, LulcUNetConfig())
    model = LulcUNetConfig(widths=(8, 16)).build()
    out = downscale(model, coarse, features)
    assert out.shape == (2, 8, 24, 32) and not out.requires_grad
    with pytest.raises(ValueError, match="coarse: fractions must lie in"):
        downscale(model, -coarse, features)


def test_normalisation_is_validated() -> None:
    model = LulcUNetConfig(widths=(8, 16)).build()
    with pytest.raises(ValueError, match="feature_std"):
        model.set_normalisation(torch.zeros(9), torch.zeros(9))
    with pytest.raises(ValueError, match="normalisation: expected shape"):
        model.set_normalisation(torch.zeros(3), torch.ones(3))
