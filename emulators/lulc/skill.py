"""Reference downscalers and fine-scale skill scores of land-cover fractions.

Baselines (same coarse input as the network):

* ``area_weighted``: each coarse cell's fractions copied to all its fine pixels (nearest
  neighbour); conserves exactly, has no sub-cell structure.
* ``bilinear``: bilinear interpolation of the coarse fractions to pixel centres (edge cells
  replicated), clipped at 0 and renormalised to sum 1 per pixel; does not conserve.
* ``mask_aware``: a stronger reference that knows the fine water mask: water/ice gets the
  pixel's surface-water fraction (``features.water_fraction``) and the other classes share the
  rest in coarse proportion, then the conservation layer makes it exact.

Scores over all pixels of the evaluated tiles (and separately over pixels of *mixed* coarse
cells, whose largest class fraction is below 1): accuracy of the dominant class (argmax),
mean absolute fraction error (mean over pixels and the 8 classes, in fraction units), per-class
intersection-over-union of the dominant-class maps and its mean over classes present, and the
largest aggregation error ``max |block mean − coarse|``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from emulators.lulc.conservation import aggregation_error, conserve, upsample
from emulators.lulc.features import FEATURE_NAMES
from emulators.parameters import LandCover

Downscaler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def area_weighted(coarse: torch.Tensor, features: torch.Tensor, factor: int) -> torch.Tensor:
    return upsample(coarse.to(torch.float64), factor)


def bilinear(coarse: torch.Tensor, features: torch.Tensor, factor: int) -> torch.Tensor:
    up = F.interpolate(
        coarse.to(torch.float64), scale_factor=factor, mode="bilinear", align_corners=False
    )
    up = up.clamp_min(0.0)
    return up / up.sum(dim=1, keepdim=True).clamp_min(1e-30)


def mask_aware(coarse: torch.Tensor, features: torch.Tensor, factor: int) -> torch.Tensor:
    land = features[:, FEATURE_NAMES.index("land_area_fraction")].to(torch.float64)
    lake = features[:, FEATURE_NAMES.index("lake_area_fraction")].to(torch.float64)
    water = (1.0 - land + lake).clamp(0.0, 1.0)
    c = upsample(coarse.to(torch.float64), factor)
    w = LandCover.WATER_ICE
    landc = torch.cat([c[:, :w], c[:, w + 1 :]], dim=1)
    landc = landc / landc.sum(dim=1, keepdim=True).clamp_min(1e-30)
    guess = torch.cat([landc * (1.0 - water[:, None]), water[:, None]], dim=1) + 1e-6
    return conserve(guess, coarse, factor, iterations=20)


BASELINES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "area_weighted": area_weighted,
    "bilinear": bilinear,
    "mask_aware": mask_aware,
}


@dataclass
class Scores:
    """Running confusion counts and absolute errors (accumulated tile batch by tile batch)."""

    n_classes: int
    confusion: np.ndarray  # (true, predicted) pixel counts
    confusion_mixed: np.ndarray
    abs_error: float = 0.0
    abs_error_mixed: float = 0.0
    pixels: int = 0
    pixels_mixed: int = 0
    max_aggregation_error: float = 0.0

    @classmethod
    def empty(cls, n_classes: int) -> Scores:
        z = np.zeros((n_classes, n_classes), dtype=np.int64)
        return cls(n_classes, z, z.copy())

    def add(self, pred: torch.Tensor, truth: torch.Tensor, coarse: torch.Tensor, factor: int):
        """Accumulate a batch: ``pred``/``truth`` (B, K, H, W), ``coarse`` (B, K, h, w)."""
        pred64, truth64 = pred.to(torch.float64), truth.to(torch.float64)
        k = self.n_classes
        mixed = upsample((coarse.max(dim=1, keepdim=True).values < 1.0 - 1e-6).double(), factor)
        mixed = mixed[:, 0].bool()
        t_arg, p_arg = truth64.argmax(dim=1), pred64.argmax(dim=1)
        idx = (t_arg * k + p_arg).flatten()
        self.confusion += np.bincount(idx.numpy(), minlength=k * k).reshape(k, k)
        self.confusion_mixed += np.bincount(idx[mixed.flatten()].numpy(), minlength=k * k).reshape(
            k, k
        )
        err = (pred64 - truth64).abs().mean(dim=1)
        self.abs_error += float(err.sum())
        self.abs_error_mixed += float(err[mixed].sum())
        self.pixels += int(err.numel())
        self.pixels_mixed += int(mixed.sum())
        c = coarse.to(torch.float64)
        c = c / c.sum(dim=1, keepdim=True)
        self.max_aggregation_error = max(
            self.max_aggregation_error, aggregation_error(pred64, c, factor)
        )

    def table(self) -> dict[str, float | dict[str, float]]:
        """The scores as a flat dict (fractions in [0, 1])."""
        out: dict[str, float | dict[str, float]] = {}
        for tag, conf, err, n in (
            ("", self.confusion, self.abs_error, self.pixels),
            ("_mixed", self.confusion_mixed, self.abs_error_mixed, self.pixels_mixed),
        ):
            out[f"accuracy{tag}"] = float(np.trace(conf) / max(conf.sum(), 1))
            out[f"mae{tag}"] = err / max(n, 1)
            iou = _iou(conf)
            out[f"iou{tag}"] = {LandCover(i).short: v for i, v in iou.items()}
            out[f"mean_iou{tag}"] = float(np.mean(list(iou.values()))) if iou else float("nan")
        out["max_aggregation_error"] = self.max_aggregation_error
        out["pixels"] = float(self.pixels)
        out["pixels_mixed"] = float(self.pixels_mixed)
        return out


def _iou(conf: np.ndarray) -> dict[int, float]:
    """Per-class IoU of the dominant-class maps, for classes present in truth or prediction."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    return {i: float(tp[i] / union[i]) for i in range(conf.shape[0]) if union[i] > 0}
