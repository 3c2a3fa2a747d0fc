"""The one training loop of the emulator recipes (flux LSTM, flux Transformer, LAI, LULC U-Net).

What differs between the emulators is *what one optimiser step's loss is* and *how a model is
validated*: a :class:`Problem` supplies those two (it owns its training set, random generators and
any state carried between steps, e.g. the LSTM state across windows). What is the same is the
loop, and it lives here once: optimiser and learning-rate schedule, gradient clipping, validation
every ``every`` steps and after the last, the best weights kept (by a validation score to minimise
or maximise, with an optional minimum improvement), early stopping after ``patience`` epochs
without improvement, an optional time limit, checkpoints, one progress bar.

Numerics: the loop draws no random numbers itself and calls the problem in a fixed order (loss,
zero_grad, backward, clip, step, schedule; validation after the step that ends a round), so a
problem that draws its batches from its own seeded generators gives the same batches, optimiser
steps and weights on every run with the same seed and thread count.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
Tensor = torch.Tensor


@dataclass(frozen=True)
class Optimiser:
    """Optimiser, learning-rate schedule and gradient clipping. ``schedule``: ``"cosine"`` is
    torch's ``CosineAnnealingLR`` from ``lr`` to ``lr_final`` over the run; ``"cosine-closed"``
    the closed-form cosine factor ``r + (1 − r)·½(1 + cos(π k/K))``, r = lr_final/lr, through
    ``LambdaLR`` (the two differ in the last bits, so each recipe keeps the one it was trained
    with). ``weight_decay`` None: torch's default for ``kind``."""

    kind: Literal["adam", "adamw"]
    lr: float
    lr_final: float = 0.0
    schedule: Literal["cosine", "cosine-closed"] = "cosine"
    weight_decay: float | None = None
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("adam", "adamw"):
            raise ValueError(f"kind: must be 'adam' or 'adamw', got {self.kind!r}")
        if self.schedule not in ("cosine", "cosine-closed"):
            raise ValueError(
                f"schedule: must be 'cosine' or 'cosine-closed', got {self.schedule!r}"
            )
        if not 0 <= self.lr_final <= self.lr or self.lr <= 0:
            raise ValueError("learning rates must satisfy 0 <= lr_final <= lr, 0 < lr")
        if self.schedule == "cosine-closed" and self.lr_final <= 0:
            raise ValueError("learning rates must satisfy 0 < lr_final <= lr")

    def build(
        self, params: Iterable[nn.Parameter], steps: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        options: dict[str, Any] = {"lr": self.lr}
        if self.weight_decay is not None:
            options["weight_decay"] = self.weight_decay
        cls = torch.optim.Adam if self.kind == "adam" else torch.optim.AdamW
        opt = cls(params, **options)
        if self.schedule == "cosine":
            return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, self.lr_final)
        lr, lr_final = self.lr, self.lr_final
        return opt, torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda k: (
                (lr_final / lr)
                + (1 - lr_final / lr) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))
            ),
        )


@dataclass(frozen=True)
class Loop:
    """How long to train and when to validate and stop. An *epoch* is ``epoch_steps`` optimiser
    steps: the unit of the history, of the best epoch and of ``patience``."""

    steps: int
    every: int
    epoch_steps: int = 1
    patience: int | None = None
    maximise: bool = False
    min_delta: float = 0.0
    max_minutes: float | None = None
    desc: str = "training"
    unit: str = "step"
    echo: bool = False  # also write each validation record above the progress bar

    def __post_init__(self) -> None:
        for name in ("steps", "every", "epoch_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes: must be > 0, got {self.max_minutes}")


@dataclass
class Round:
    """Handed to :meth:`Problem.validate`: optimiser steps done, the epoch they make, the
    training losses since the previous validation and the loop's start (``time.perf_counter``)."""

    step: int
    epoch: int
    losses: list[float]
    started: float


class Problem(Protocol):
    """One recipe's training set and loss as the loop sees them."""

    @property
    def model(self) -> nn.Module:
        """The network being trained (its parameters are optimised)."""
        ...

    def loss(self, step: int) -> Tensor:
        """The loss of optimiser step ``step`` (0-based; draws its own batch)."""
        ...

    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        """(the score that picks the best weights, the history record)."""
        ...


@dataclass
class TrainResult:
    """The best weights (loaded into ``model``, eval mode) and how the run went."""

    model: Any
    history: list[dict[str, float]]
    best_epoch: int
    data_hash: str = ""
    stopped: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoints:
    """After every validation: ``{epoch, model, optimizer, history, **extra}`` to ``last``, and
    to ``best`` when the validation improved."""

    last: Path
    best: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def save(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        epoch: int,
        history: list[dict[str, float]],
        improved: bool,
    ) -> None:
        self.last.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "history": history,
            **self.extra,
        }
        torch.save(state, self.last)
        if improved and self.best is not None:
            torch.save(state, self.best)


def require_positive(config: Any, *names: str) -> None:
    """Training-config validation: each of ``names`` must be >= 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")


def seed(value: int, threads: int) -> None:
    """Seed torch's global generator (network initialisation) and set the intra-op threads (a
    different thread count changes float summation order: not bitwise reproducible)."""
    torch.manual_seed(value)
    torch.set_num_threads(threads)


def fit(
    problem: Problem,
    loop: Loop,
    optimiser: Optimiser,
    progress: bool = True,
    checkpoints: Checkpoints | None = None,
) -> TrainResult:
    """Train ``problem.model`` (see the module docstring); returns the best weights."""
    model = problem.model
    opt, sched = optimiser.build(model.parameters(), loop.steps)
    history: list[dict[str, float]] = []
    best, best_epoch, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    stopped = f"all {loop.steps // loop.epoch_steps} epochs"
    losses: list[float] = []
    started = time.perf_counter()
    bar = tqdm(total=loop.steps, desc=loop.desc, unit=loop.unit, disable=not progress)
    model.train()
    for k in range(loop.steps):
        loss = problem.loss(k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if optimiser.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), optimiser.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.update(1)
        if (k + 1) % loop.every and k + 1 < loop.steps:
            continue
        done = Round(k + 1, (k + 1) // loop.epoch_steps, losses, started)
        losses = []
        score, row = problem.validate(done)
        model.train()
        history.append(row)
        log.info("%s epoch %d: %s", loop.desc, done.epoch, row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds")})
        if progress and loop.echo:
            tqdm.write(f"{loop.desc} epoch {done.epoch}: {row}")
        value = -score if loop.maximise else score
        improved = value < best - loop.min_delta
        if improved:
            best, best_epoch, best_state = value, done.epoch, copy.deepcopy(model.state_dict())
        if checkpoints is not None:
            checkpoints.save(model, opt, done.epoch, history, improved)
        if loop.patience is not None and done.epoch - best_epoch >= loop.patience:
            stopped = (
                f"early stopping: no validation improvement for {done.epoch - best_epoch} epochs"
            )
            break
        if loop.max_minutes is not None and time.perf_counter() - started > 60 * loop.max_minutes:
            stopped = f"time limit {loop.max_minutes:g} min reached"
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    log.info("%s: %s; best epoch %d", loop.desc, stopped, best_epoch)
    return TrainResult(
        model, history, best_epoch, stopped=stopped, seconds=time.perf_counter() - started
    )


def weights_digest(model: nn.Module) -> str:
    """SHA-256 (16 hex digits) of a model's state dict, names and raw bytes in name order: equal
    digests are bitwise-equal weights (the golden tiny trainings of the tests use it)."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode() + value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_best(path: Path, model: nn.Module, config: Any) -> None:
    """The trained weights and the (dataclass) training config, for inspection or fine-tuning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": asdict(config)}, path)
