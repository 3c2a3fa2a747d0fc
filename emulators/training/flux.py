"""Training of the recurrent flux emulator (``flux_lstm``) against reference tile trajectories.

Closed-loop truncated back-propagation through time: the year is cut into windows of ``window``
steps; at each window start the physical state (soil water, skin and soil temperatures) is reset
to the reference's, then the emulator runs *on its own state* through the constraint layer
(``emulators.compiled.flux_step``) for the window, so it learns to stay on track when fed its own
outputs, as it is when served. The LSTM state is carried (detached) across windows, so the network
sees long-run hidden states. Rows start at random window offsets each epoch, which mixes seasons
inside every batch. LAI is the reference's (the LAI emulator is trained separately).

Loss: mean squared error of the five outputs, each scaled by the standard deviation of its target;
ts and hfls are compared *after* the constraint layer (what the coupler receives).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emulators.compiled import closure, flux_step
from emulators.metrics import nse
from emulators.nets import flux as flux_nets
from emulators.nets import registry
from emulators.reference.soil import SoilConfig
from emulators.training.batch import Batch, rollout
from emulators.training.data import SourceSpec, simulate

log = logging.getLogger(__name__)
Tensor = torch.Tensor
EVAP_MIN = 1e-9  # kg m-2 s-1: below this |E| the transpiration share is not a target

# The default split. Training: three synthetic seeds (global random cells) and two real station
# years; validation (early stopping): a fourth synthetic seed. Evaluation (``evaluate``) uses other
# seeds, sites and years, never seen here.
TRAIN_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=11, cells=48),
    SourceSpec("synthetic", seed=12, cells=48),
    SourceSpec("synthetic", seed=13, cells=48),
    SourceSpec("epw-amsterdam", seed=14, replicas=16, options={"missing_pr": "zero"}),
    SourceSpec("pcse-wageningen", seed=15, replicas=16, options={"years": (1985, 1985)}),
)
VALIDATION_SOURCES: tuple[SourceSpec, ...] = (SourceSpec("synthetic", seed=21, cells=24),)

# The daily emulator (``flux-lstm-daily``): reference trajectories at 86 400 s steps are ~24x
# cheaper, so more synthetic cells (random land cells from 58 S to 72 N: tropical to boreal) and
# two years each; real station years: Wageningen 1984-1985. Early stopping: another synthetic
# seed. Held out (``evaluate.FLUX_DAILY_HELD_OUT``): another seed, the TMY3 stations, Amsterdam,
# Wageningen 1995 and Payerne.
DAILY_TRAIN_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=41, cells=96, days=730),
    SourceSpec("synthetic", seed=42, cells=96, days=730),
    SourceSpec("synthetic", seed=43, cells=96, days=730),
    SourceSpec("pcse-wageningen", seed=45, replicas=16, options={"years": (1984, 1985)}),
)
DAILY_VALIDATION_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=51, cells=48, days=730),
)


@dataclass(frozen=True)
class FluxTrainConfig:
    architecture: str = "flux_lstm"
    options: dict[str, Any] = field(default_factory=dict)
    artifact: str = "flux_lstm"  # artifact directory (and checkpoint stem)
    timestep: int = 3600  # s, the step of the reference trajectories and of the emulator
    train: tuple[SourceSpec, ...] = TRAIN_SOURCES
    validation: tuple[SourceSpec, ...] = VALIDATION_SOURCES
    epochs: int = 24
    window: int = 48
    windows_per_epoch: int = 50
    lr: float = 3e-3
    lr_final: float = 2e-4
    grad_clip: float = 1.0
    patience: int = 4
    seed: int = 0
    threads: int = 1  # see docs/emulators.md: 2 OpenMP threads stall on a shared 2-core box
    validation_days: int = 120

    def __post_init__(self) -> None:
        if self.architecture != "flux_lstm":
            raise ValueError(
                f"architecture: recurrent training supports 'flux_lstm', got {self.architecture!r}"
            )
        for name in (
            "epochs",
            "window",
            "windows_per_epoch",
            "patience",
            "threads",
            "validation_days",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.timestep < 1 or (86_400 % self.timestep and self.timestep % 86_400):
            raise ValueError(
                f"timestep must divide a day or be a multiple of it (s), got {self.timestep}"
            )
        if not 0 < self.lr_final <= self.lr:
            raise ValueError("learning rates must satisfy 0 < lr_final <= lr")


def daily_config() -> FluxTrainConfig:
    """The training configuration of ``flux-lstm-daily`` (same architecture, 86 400 s steps):
    60-day windows, validation free-running over two years."""
    return FluxTrainConfig(
        artifact="flux_lstm_daily",
        timestep=86_400,
        train=DAILY_TRAIN_SOURCES,
        validation=DAILY_VALIDATION_SOURCES,
        epochs=14,
        window=60,
        windows_per_epoch=45,
        validation_days=730,
    )


@dataclass
class TrainResult:
    model: flux_nets.FluxLSTM
    history: list[dict[str, float]]
    best_epoch: int
    data_hash: str


def data_hash(specs: tuple[SourceSpec, ...], timestep: int = 3600) -> str:
    """Hash of the training sources (and of the timestep, when not the hourly default)."""
    import hashlib

    blob = "|".join(s.key() for s in specs) + ("" if timestep == 3600 else f"|dt={timestep}")
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _targets(batch: Batch, t: Tensor) -> dict[str, Tensor]:
    r = torch.arange(batch.rows)
    o = {k: v[t, r] for k, v in batch.outputs.items()}
    evap = o["evspsbl"]
    share = torch.where(
        evap.abs() > EVAP_MIN, o["tran"] / evap.where(evap.abs() > EVAP_MIN, 1.0), 0.0
    )
    return {
        "ts_minus_tas": o["ts"] - batch.forcing["tas"][t, r],
        "hfss": o["hfss"],
        "hfls_demand": o["hfls"],
        "tran_share": share,
        "gpp": o["gpp"],
        "ts": o["ts"],
        "hfls": o["hfls"],
        "share_mask": (evap.abs() > EVAP_MIN).to(evap.dtype),
    }


def normalisation(
    batch: Batch, soil: SoilConfig, samples: int = 400, seed: int = 0
) -> dict[str, Tensor]:
    """Feature and output mean/std over ``samples`` random steps of the teacher-forced batch."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randint(0, batch.steps, (samples,), generator=g)
    xs, ys = [], []
    for s in steps.tolist():
        t = torch.full((batch.rows,), s, dtype=torch.long)
        inp = batch.row_inputs(
            t, batch.state["w"][s], batch.state["ts"][s], batch.state["tsoil"][s]
        )
        x, _ = flux_step.features(inp, soil)
        tg = _targets(batch, t)
        xs.append(x)
        ys.append(torch.stack([tg[name] for name, _, _ in closure.FLUX_OUTPUTS], -1))
    x = torch.cat(xs).double()
    y = torch.cat(ys).double()
    x_std = x.std(0)
    x_std = torch.where(x_std > 1e-8, x_std, torch.ones_like(x_std))
    return {
        "x_mean": x.mean(0),
        "x_std": x_std,
        "y_mean": y.mean(0),
        "y_std": y.std(0).clamp_min(1e-12),
    }


def _loss(closed: closure.Closed, y: Tensor, tg: dict[str, Tensor], scale: Tensor) -> Tensor:
    terms = [
        ((closed.ts - tg["ts"]) / scale[0]) ** 2,
        ((y[:, 1] - tg["hfss"]) / scale[1]) ** 2,
        ((closed.fields["hfls"] - tg["hfls"]) / scale[2]) ** 2,
        tg["share_mask"] * ((y[:, 3] - tg["tran_share"]) / scale[3]) ** 2,
        ((y[:, 4] - tg["gpp"]) / scale[4]) ** 2,
    ]
    return torch.stack([t.mean() for t in terms]).sum()


def validate(model: flux_nets.FluxLSTM, batch: Batch, soil: SoilConfig) -> dict[str, float]:
    """Free-running NSE of LE and H over the validation batch (pooled over rows and time)."""
    model.eval()
    out = rollout(model, batch, model.hidden, soil, fields=("hfls", "hfss"))
    model.train()
    return {
        f"nse_{k}": float(nse(out[k].double().numpy(), batch.outputs[k].double().numpy()))
        for k in ("hfls", "hfss")
    }


def train(
    config: FluxTrainConfig,
    cache: Path | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    soil = SoilConfig()
    dt = config.timestep
    trajs = [simulate(s, dt, progress=progress, cache=cache) for s in config.train]
    batch = Batch.of(trajs, torch.float32, soil)
    val = Batch.of([simulate(s, dt, progress=progress, cache=cache) for s in config.validation])
    val = _truncate(val, config.validation_days * int(86_400 // val.dt))
    model = registry.build(config.architecture, config.options)
    if not isinstance(model, flux_nets.FluxLSTM):
        raise TypeError("flux training needs a FluxLSTM")
    stats = normalisation(batch, soil, seed=config.seed)
    model.inputs.set(stats["x_mean"], stats["x_std"])
    model.outputs.set(stats["y_mean"], stats["y_std"])
    scale = stats["y_std"].float()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    w = config.window
    chunks = batch.steps // w
    period = chunks * w
    per_epoch = config.windows_per_epoch  # windows wrap around the record (offsets mod period)
    total = config.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda k: (
            (config.lr_final / config.lr)
            + (1 - config.lr_final / config.lr)
            * 0.5
            * (1 + math.cos(math.pi * min(k, total) / total))
        ),
    )
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    best, best_epoch, best_state = -math.inf, -1, copy.deepcopy(model.state_dict())
    r = torch.arange(batch.rows)
    offsets = torch.randint(0, chunks, (batch.rows,), generator=gen) * w
    h = torch.zeros(batch.rows, model.hidden)
    c = torch.zeros(batch.rows, model.hidden)
    k_global = 0
    for epoch in range(config.epochs):
        running = 0.0
        bar = tqdm(
            range(per_epoch),
            desc=f"{config.artifact} epoch {epoch + 1}/{config.epochs}",
            unit="window",
            disable=not progress,
        )
        for k in bar:
            t_start = (offsets + k_global * w) % period
            k_global += 1
            wv = batch.state["w"][t_start, r]
            ts = batch.state["ts"][t_start, r]
            tsoil = batch.state["tsoil"][t_start, r]
            loss = torch.zeros(())
            for j in range(w):
                t = t_start + j
                inp = batch.row_inputs(t, wv, ts, tsoil)
                closed, y, h, c = flux_step.step(model, inp, h, c, soil, batch.dt)
                loss = loss + _loss(closed, y, _targets(batch, t), scale)
                wv, ts, tsoil = closed.w, closed.ts, closed.tsoil
            loss = loss / w
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            h, c = h.detach(), c.detach()
            running = 0.9 * running + 0.1 * loss.item() if k else loss.item()
            bar.set_postfix(loss=f"{running:.4f}")
        scores = validate(model, val, soil)
        score = 0.5 * (scores["nse_hfls"] + scores["nse_hfss"])
        history.append({"epoch": epoch + 1, "train_loss": running, **scores})
        log.info("epoch %d: loss %.4f, validation %s", epoch + 1, running, scores)
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {running:.4f} validation {scores}")
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "history": history,
                },
                checkpoint_dir / f"{config.artifact}-last.pt",
            )
        if score > best:
            best, best_epoch, best_state = score, epoch + 1, copy.deepcopy(model.state_dict())
        elif epoch + 1 - best_epoch >= config.patience:
            log.info("early stopping after epoch %d (best %d)", epoch + 1, best_epoch)
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, history, best_epoch, data_hash(config.train, config.timestep))


def _truncate(batch: Batch, steps: int) -> Batch:
    s = min(steps, batch.steps)
    return Batch(
        forcing={k: v[:s] for k, v in batch.forcing.items()},
        state={k: v[:s] for k, v in batch.state.items()},
        outputs={k: v[:s] for k, v in batch.outputs.items()},
        params=batch.params,
        tile=batch.tile,
        lon=batch.lon,
        doy=batch.doy[:s],
        sod=batch.sod[:s],
        const=batch.const,
        dt=batch.dt,
        labels=batch.labels,
        row_source=batch.row_source,
    )
