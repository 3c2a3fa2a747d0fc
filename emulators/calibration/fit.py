"""Training of the parameter generators (and the per-site direct optimisation) through the frozen
flux emulator, in one batched rollout per epoch.

Members: generator 0 learns from every site (the calibration); generator j (1..K) leaves out the
j-th site of every class (leave-one-out within each class: each site is unseen by exactly one
generator, whose prediction is that site's cross-validated parameters); the last member is the
direct per-site optimisation of the 12 parameters. Rows of the rollout are (member, site).

Loss (multi-task, MdPL's LE and H tasks): for each site and task the mean squared error of the
daily fluxes divided by the variance of that site's observations, summed over tasks, averaged
over a member's training sites. Days are split: two of every three days train, every third day
validates; each member keeps the state of its best validation loss, and training stops when no
member has improved for ``patience`` epochs (early stopping). A checkpoint (all members, the
optimiser, the epoch, the best losses) is written after every epoch; ``resume`` goes on from
one (the patience counter restarts).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emulators.calibration import generator as G
from emulators.calibration.sites import Sites
from emulators.calibration.surrogate import DEFAULT_ARTIFACT, Surrogate

log = logging.getLogger(__name__)
Tensor = torch.Tensor
TASKS = ("hfls", "hfss")


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 60
    lr: float = 0.03
    patience: int = 10
    width: int = 32
    seed: int = 0
    loocv: bool = True
    checkpoint: Path | None = None
    resume: Path | None = None  # a checkpoint of the same sites and settings to go on from
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.patience < 1 or self.width < 1:
            raise ValueError("epochs, patience and width must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")


@dataclass
class FitResult:
    """Physical parameters (site, 12) of each method, and the training record."""

    calibrated: np.ndarray  # generator 0 (trained on every site)
    loocv: np.ndarray  # each site from the generator that never saw it (nan when loocv off)
    direct: np.ndarray  # per-site direct optimisation
    default: np.ndarray
    epochs: int
    best_epoch: list[int]
    history: list[dict[str, float]]
    seconds: float
    generators: G.Generators


def fold_of(sites: Sites) -> np.ndarray:
    """(site,) position of each site within its class (0..K−1): the LOOCV fold leaving it out."""
    fold = np.zeros(sites.n, dtype=np.int64)
    for c in np.unique(sites.tile):
        idx = np.flatnonzero(sites.tile == c)
        fold[idx] = np.arange(len(idx))
    return fold


def _loss(sim: dict[str, Tensor], obs: dict[str, Tensor], days: Tensor) -> Tensor:
    """(row,) multi-task loss over the ``days`` mask."""
    total = torch.zeros(sim[TASKS[0]].shape[1])
    for k in TASKS:
        err = (sim[k] - obs[k])[days]
        total = total + (err**2).mean(0) / obs[k].var(0)
    return total


def fit(sites: Sites, cfg: FitConfig, artifact: Path = DEFAULT_ARTIFACT) -> FitResult:
    """Train (module docstring) and return every method's parameters."""
    torch.manual_seed(cfg.seed)
    n = sites.n
    fold = fold_of(sites)
    k = int(fold.max()) + 1 if cfg.loocv else 0
    if cfg.loocv and int(np.bincount(sites.tile).max()) < 2:
        raise ValueError("loocv: leave-one-out within a class needs >= 2 sites per class")
    members = 1 + k
    rows = np.tile(np.arange(n), members + 1)
    sur = Surrogate(sites.subset(rows), artifact)
    feats = torch.as_tensor(sites.features, dtype=torch.float32)
    gens = G.Generators(feats.shape[1], members, cfg.width, cfg.seed)
    gens.set_normalisation(feats)
    direct = G.Direct(n)
    base = G.default_logits(torch.as_tensor(sites.tile))
    mask = torch.ones(members + 1, n)
    for j in range(k):
        mask[1 + j, torch.as_tensor(fold == j)] = 0.0
    obs = {
        key: torch.as_tensor(v, dtype=torch.float32).repeat(1, members + 1)
        for key, v in sites.obs.items()
    }
    day = torch.arange(obs[TASKS[0]].shape[0])
    train_days, val_days = day % 3 != 2, day % 3 == 2
    opt = torch.optim.Adam([*gens.parameters(), *direct.parameters()], lr=cfg.lr)

    def logits() -> Tensor:
        offsets = torch.cat([gens(feats), direct().unsqueeze(0)])  # (members + 1, site, 12)
        return (base + offsets).reshape(-1, base.shape[-1])

    best = torch.full((members + 1,), float("inf"))
    best_logits = (base.unsqueeze(0) + torch.zeros(members + 1, 1, 1)).clone()
    best_epoch = [0] * (members + 1)
    history: list[dict[str, float]] = []
    stale, start, epoch, first = 0, time.perf_counter(), 0, 1
    if cfg.resume is not None:
        state = torch.load(cfg.resume, weights_only=False)
        if tuple(state["best_logits"].shape) != tuple(best_logits.shape):
            raise ValueError(
                f"resume: {cfg.resume} holds {tuple(state['best_logits'].shape)} parameters, "
                f"these sites and settings need {tuple(best_logits.shape)}"
            )
        gens.load_state_dict(state["generators"])
        direct.load_state_dict(state["direct"])
        opt.load_state_dict(state["optimiser"])
        best, best_logits = state["best"], state["best_logits"]
        best_epoch = list(state["best_epoch"])
        epoch = int(state["epoch"])  # the last epoch done; go on with the next
        first = epoch + 1
    bar = tqdm(
        range(first, cfg.epochs + 1), desc="calibrate", unit="epoch", disable=not cfg.progress
    )
    for epoch in bar:
        opt.zero_grad()
        lg = logits()
        sim = sur.rollout(G.to_parameters(lg))
        per_row = _loss(sim, obs, train_days).reshape(members + 1, n)
        per_member = (per_row * mask).sum(1) / mask.sum(1)
        per_member.sum().backward()
        opt.step()
        with torch.no_grad():
            val = (_loss(sim, obs, val_days).reshape(members + 1, n) * mask).sum(1) / mask.sum(1)
            better = val < best
            for m in torch.nonzero(better).flatten().tolist():
                best[m] = val[m]
                best_logits[m] = lg.reshape(members + 1, n, -1)[m].detach()
                best_epoch[m] = epoch
        stale = 0 if bool(better.any()) else stale + 1
        record = {
            "epoch": float(epoch),
            "train_calibration": float(per_member[0].detach()),
            "val_calibration": float(val[0]),
            "val_direct": float(val[-1]),
        }
        history.append(record)
        bar.set_postfix(train=f"{record['train_calibration']:.3f}", val=f"{val[0]:.3f}")
        if cfg.checkpoint is not None:
            _save(cfg.checkpoint, gens, direct, opt, epoch, best, best_logits, best_epoch)
        if stale >= cfg.patience:
            log.info("early stop at epoch %d (no member improved for %d)", epoch, stale)
            break
    params = G.to_parameters(best_logits).numpy().astype(np.float64)
    loocv = np.full((n, base.shape[-1]), np.nan)
    for j in range(k):
        loocv[fold == j] = params[1 + j][fold == j]
    return FitResult(
        calibrated=params[0],
        loocv=loocv,
        direct=params[-1],
        default=G.to_parameters(base).numpy().astype(np.float64),
        epochs=epoch,
        best_epoch=best_epoch,
        history=history,
        seconds=time.perf_counter() - start,
        generators=gens,
    )


def _save(
    path: Path,
    gens: G.Generators,
    direct: G.Direct,
    opt: torch.optim.Optimizer,
    epoch: int,
    best: Tensor,
    best_logits: Tensor,
    best_epoch: list[int],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "generators": gens.state_dict(),
            "direct": direct.state_dict(),
            "optimiser": opt.state_dict(),
            "epoch": epoch,
            "best": best,
            "best_logits": best_logits,
            "best_epoch": best_epoch,
        },
        tmp,
    )
    tmp.replace(path)
