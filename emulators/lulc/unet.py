"""The LULC downscaling U-Net (AI4Land phase 1), registered as ``lulc_unet``.

Inputs (float32): ``coarse`` (B, 8, h, w) class fractions of coarse cells (1, ``LandCover``
order) and ``features`` (B, 9, 8h, 8w) fine static features in physical units
(``emulators.lulc.features.FEATURES``). The network normalises the features with stored
statistics, sees them next to the nearest-upsampled coarse fractions, and predicts fine logits
that are added to ``log(coarse + ε)`` (so an untrained network *is* the area-weighted baseline:
its last layer starts at zero). The softmax then goes through the conservation layer
(``emulators.lulc.conservation``), inside the module and inside every exported graph. Output:
(B, 8, 8h, 8w) float64 fine fractions in [0, 1], summing to 1 per pixel and aggregating exactly
to ``coarse`` (after renormalising it to sum 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emulators.lulc.conservation import conserve, upsample
from emulators.lulc.features import N_FEATURES
from emulators.nets.registry import register
from emulators.parameters import N_CLASSES


@register("lulc_unet")
@dataclass(frozen=True)
class LulcUNetConfig:
    """Architecture of the downscaler. ``widths``: channels per U-Net level (each level after the
    first halves the resolution, so fine sizes must be multiples of 2^(levels−1) and of
    ``factor``)."""

    factor: int = 8
    widths: tuple[int, ...] = (16, 32, 64)
    n_classes: int = N_CLASSES
    n_features: int = N_FEATURES
    sinkhorn_iterations: int = 10
    prior_eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"factor: must be >= 1, got {self.factor}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths: need at least one positive width, got {self.widths}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.factor % (2 ** (len(self.widths) - 1)):
            raise ValueError(
                f"factor: {self.factor} must be a multiple of 2^(levels-1) = "
                f"{2 ** (len(self.widths) - 1)} for widths {self.widths}"
            )
        if self.n_classes < 2 or self.n_features < 0:
            raise ValueError(
                f"n_classes must be >= 2 and n_features >= 0, got "
                f"{self.n_classes}, {self.n_features}"
            )
        if self.sinkhorn_iterations < 0:
            raise ValueError(f"sinkhorn_iterations: must be >= 0, got {self.sinkhorn_iterations}")
        if not 0.0 < self.prior_eps < 1.0:
            raise ValueError(f"prior_eps: must be in (0, 1), got {self.prior_eps}")

    def build(self) -> LulcUNet:
        return LulcUNet(self)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LulcUNet(nn.Module):
    """U-Net + prior + conservation layer; see the module docstring."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: LulcUNetConfig) -> None:
        super().__init__()
        self.config = config
        self.factor = config.factor
        self.iterations = config.sinkhorn_iterations
        self.prior_eps = config.prior_eps
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
        w = config.widths
        self.down = nn.ModuleList()
        cin = config.n_classes + config.n_features
        for width in w:
            self.down.append(_double_conv(cin, width))
            cin = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(w[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, width, 2, stride=2))
            self.merge.append(_double_conv(2 * width, width))
            cin = width
        self.head = nn.Conv2d(cin, config.n_classes, 1)
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Feature statistics (physical units) used to standardise the inputs."""
        if mean.shape != self.feature_mean.shape or std.shape != self.feature_std.shape:
            raise ValueError(
                f"normalisation: expected shape {tuple(self.feature_mean.shape)}, got "
                f"{tuple(mean.shape)} and {tuple(std.shape)}"
            )
        if not bool((std > 0).all()):
            raise ValueError("normalisation: feature_std must be > 0")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def logits(self, coarse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) float32 correction logits of the U-Net (before prior and conservation)."""
        z = (features - self.feature_mean[None, :, None, None]) / self.feature_std[
            None, :, None, None
        ]
        x = torch.cat([upsample(coarse, self.factor), z], dim=1)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, coarse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        c64 = coarse.to(torch.float64)
        prior = torch.log(upsample(c64, self.factor) + self.prior_eps)
        logit = self.logits(coarse, features).to(torch.float64) + prior
        return conserve(torch.softmax(logit, dim=1), c64, self.factor, self.iterations)


def check_inputs(coarse: torch.Tensor, features: torch.Tensor, config: LulcUNetConfig) -> None:
    """Raise ValueError naming the input and the rule it breaks (eager entry points)."""
    if coarse.ndim != 4 or coarse.shape[1] != config.n_classes:
        raise ValueError(
            f"coarse: expected shape (batch, {config.n_classes}, h, w), got {tuple(coarse.shape)}"
        )
    b, _, h, w = coarse.shape
    expect = (b, config.n_features, h * config.factor, w * config.factor)
    if tuple(features.shape) != expect:
        raise ValueError(f"features: expected shape {expect}, got {tuple(features.shape)}")
    levels = 2 ** (len(config.widths) - 1)
    if (h * config.factor) % levels:
        raise ValueError(f"coarse: fine size {h * config.factor} not divisible by {levels}")
    if not bool(torch.isfinite(coarse).all()):
        raise ValueError("coarse: non-finite value")
    if not bool(torch.isfinite(features).all()):
        raise ValueError("features: non-finite value")
    if float(coarse.min()) < 0.0 or float(coarse.max()) > 1.0:
        raise ValueError(
            f"coarse: fractions must lie in [0, 1], got [{float(coarse.min()):.3g}, "
            f"{float(coarse.max()):.3g}]"
        )
    dev = float((coarse.to(torch.float64).sum(dim=1) - 1.0).abs().max())
    if dev > 1e-4:
        raise ValueError(f"coarse: class fractions must sum to 1 per cell (off by {dev:.3g})")


def downscale(model: LulcUNet, coarse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Checked eager downscaling: :func:`check_inputs` (ValueError naming the input and the
    rule), then the model in eval mode without gradients → (B, K, H, W) float64 fractions."""
    check_inputs(coarse, features, model.config)
    model.eval()
    with torch.no_grad():
        out: torch.Tensor = model(coarse.float(), features.float())
    return out
