"""Training of the downscaling U-Net on random crops of the training regions.

Loss: cross-entropy ``−Σ_k T_k log Q_k`` between the truth fractions ``T`` and the *conserved*
output ``Q`` (the gradient flows through the conservation layer), averaged over pixels. AdamW
with a cosine learning-rate schedule; the validation loss on the fixed validation tiles (other
regions, another generator seed) is checked every epoch, the best weights are kept, and training
stops after ``patience`` epochs without improvement (or at ``max_minutes``). Checkpoints
(``last.pt``, ``best.pt``: weights, optimiser, epoch, history) go to the checkpoint directory.
Seeded: the same seed and data give the same weights on the same machine and thread count.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from emulators.lulc.data import Batch, LulcData
from emulators.lulc.unet import LulcUNet, LulcUNetConfig
from emulators.training import trainer
from emulators.training.trainer import Round, TrainResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 25
    batch_size: int = 16
    crops_per_epoch: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 6
    threads: int = 2
    max_minutes: float = 60.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "crops_per_epoch", "patience", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(
                f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        if not self.max_minutes > 0:
            raise ValueError(f"max_minutes: must be > 0, got {self.max_minutes}")

    def loop(self) -> trainer.Loop:
        """``epochs`` of ``crops_per_epoch`` crops; the validation loss must improve by 1e-5."""
        steps = max(self.crops_per_epoch // self.batch_size, 1)
        return trainer.Loop(
            steps=self.epochs * steps,
            every=steps,
            epoch_steps=steps,
            patience=self.patience,
            min_delta=1e-5,
            max_minutes=self.max_minutes,
            desc="lulc-unet",
            unit="batch",
        )

    def optimiser(self) -> trainer.Optimiser:
        return trainer.Optimiser("adamw", self.lr, weight_decay=self.weight_decay)


def cross_entropy(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of ``−Σ_k T_k log Q_k`` (nats); ``pred``/``truth`` (B, K, H, W)."""
    logq = torch.log(pred.clamp_min(1e-12))
    return -(truth.to(pred.dtype) * logq).sum(dim=1).mean()


def tile_batches(
    data: LulcData, tiles: list[tuple[int, int]], seed: int, chunk: int = 32
) -> list[Batch]:
    """The fixed ``tiles`` (row, col) of truth realisation ``seed``, in batches of ``chunk``."""
    return [
        data.batch([(seed, r, c) for r, c in tiles[i : i + chunk]], data.config.tile)
        for i in range(0, len(tiles), chunk)
    ]


def evaluate_loss(model: LulcUNet, batches: list[Batch]) -> tuple[float, float]:
    """(mean cross-entropy, dominant-class accuracy) of ``model`` over ``batches``."""
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for b in batches:
            pred = model(b.coarse, b.features)
            total += float(cross_entropy(pred, b.fine)) * b.fine.shape[0]
            correct += int((pred.argmax(1) == b.fine.argmax(1)).sum())
            n += b.fine.shape[0]
    pixels = n * batches[0].fine.shape[-1] * batches[0].fine.shape[-2] if batches else 1
    return total / max(n, 1), correct / max(pixels, 1)


class _Crops:
    """The U-Net's loss on ``batch_size`` random training crops (numpy generator seeded with the
    config's seed) of random training seeds; validation on the fixed validation tiles."""

    def __init__(self, model: LulcUNet, data: LulcData, config: TrainConfig) -> None:
        self.model, self.data, self.config = model, data, config
        self.rng = np.random.default_rng(config.seed)
        model.set_normalisation(*data.normalisation())
        self.crops = data.train_crops()
        if not self.crops:
            raise ValueError("training data: no training crops hold land")
        self.val = tile_batches(data, data.tiles("val"), data.config.val_seed)
        self.seeds = np.asarray(data.config.train_seeds)

    def loss(self, step: int) -> torch.Tensor:
        size = self.config.batch_size
        pick = self.rng.integers(0, len(self.crops), size=size)
        seed_pick = self.rng.choice(self.seeds, size=size)
        batch = self.data.batch(
            [(int(s), *self.crops[int(i)]) for s, i in zip(seed_pick, pick, strict=True)],
            self.data.config.tile,
        )
        return cross_entropy(self.model(batch.coarse, batch.features), batch.fine)

    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        val_loss, val_acc = evaluate_loss(self.model, self.val)
        return val_loss, {
            "epoch": float(done.epoch),
            "train_loss": sum(done.losses) / len(done.losses),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - done.started,
        }


def train(
    data: LulcData,
    model_config: LulcUNetConfig,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a fresh ``lulc_unet`` on ``data`` (see the module docstring)."""
    if model_config.factor != data.config.factor:
        raise ValueError(f"factor: model {model_config.factor} != data {data.config.factor}")
    trainer.seed(config.seed, config.threads)
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = trainer.Checkpoints(
            checkpoint_dir / "last.pt", checkpoint_dir / "best.pt", {"train_config": asdict(config)}
        )
    problem = _Crops(model_config.build(), data, config)
    return trainer.fit(problem, config.loop(), config.optimiser(), progress, checkpoints)
