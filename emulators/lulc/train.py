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

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from emulators.lulc.data import Batch, LulcData
from emulators.lulc.unet import LulcUNet, LulcUNetConfig

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


@dataclass
class TrainResult:
    model: LulcUNet
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = ""
    seconds: float = 0.0


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
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = model_config.build()
    model.set_normalisation(*data.normalisation())
    crops = data.train_crops()
    if not crops:
        raise ValueError("training data: no training crops hold land")
    val = tile_batches(data, data.tiles("val"), data.config.val_seed)
    steps = max(config.crops_per_epoch // config.batch_size, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
    seeds = np.asarray(data.config.train_seeds)
    result = TrainResult(model)
    best_loss, best_state, since_best = float("inf"), copy.deepcopy(model.state_dict()), 0
    t0 = time.perf_counter()
    bar = tqdm(total=config.epochs * steps, desc="lulc-unet", unit="batch", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        model.train()
        running = 0.0
        for _ in range(steps):
            pick = rng.integers(0, len(crops), size=config.batch_size)
            seed_pick = rng.choice(seeds, size=config.batch_size)
            batch = data.batch(
                [(int(s), *crops[int(i)]) for s, i in zip(seed_pick, pick, strict=True)],
                data.config.tile,
            )
            loss = cross_entropy(model(batch.coarse, batch.features), batch.fine)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
            bar.update(1)
        val_loss, val_acc = evaluate_loss(model, val)
        row = {
            "epoch": float(epoch),
            "train_loss": running / steps,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - t0,
        }
        result.history.append(row)
        log.info(
            "epoch %d: train %.4f, val %.4f, val accuracy %.4f, %.0f s",
            epoch,
            row["train_loss"],
            val_loss,
            val_acc,
            row["seconds"],
        )
        bar.set_postfix(
            train=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}", acc=f"{val_acc:.4f}"
        )
        improved = val_loss < best_loss - 1e-5
        if improved:
            best_loss, best_state, since_best = val_loss, copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch
        else:
            since_best += 1
        if checkpoint_dir is not None:
            _checkpoint(checkpoint_dir, model, opt, epoch, result.history, config, improved)
        if since_best >= config.patience:
            result.stopped = f"early stopping: no validation improvement for {since_best} epochs"
            break
        if row["seconds"] > 60 * config.max_minutes:
            result.stopped = f"time limit {config.max_minutes:g} min reached"
            break
    else:
        result.stopped = f"all {config.epochs} epochs"
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t0
    log.info("lulc-unet: %s; best epoch %d", result.stopped, result.best_epoch)
    return result


def _checkpoint(
    directory: Path,
    model: LulcUNet,
    opt: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    config: TrainConfig,
    best: bool,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "history": history,
        "train_config": asdict(config),
    }
    torch.save(state, directory / "last.pt")
    if best:
        torch.save(state, directory / "best.pt")
