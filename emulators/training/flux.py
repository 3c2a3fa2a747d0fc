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

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emulators.compiled import closure, flux_step
from emulators.nets import flux as flux_nets
from emulators.nets import flux_ensemble, registry
from emulators.reference.soil import SoilConfig
from emulators.training import flux_cold, trainer
from emulators.training.batch import Batch, for_net
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux_validation import truncate, validation_score, validation_scores
from emulators.training.sources import (
    DAILY_TRAIN_SOURCES,
    DAILY_VALIDATION_SOURCES,
    TRAIN_SOURCES,
    VALIDATION_SOURCES,
)
from emulators.training.start_spread import StartSpread
from emulators.training.trainer import Round, TrainResult, require_positive

log = logging.getLogger(__name__)
Tensor = torch.Tensor
EVAP_MIN = 1e-9  # kg m-2 s-1: below this |E| the transpiration share is not a target


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
    # cold starts (``flux_cold``): fresh windows from the initial state, zero-state restarts,
    # fine-tuning from a TorchScript artifact; all off by default
    cold_weight: float = 0.0
    cold_starts: int = 12
    cold_window: int = 48
    cold_rows: int = 768
    reset_fraction: float = 0.0
    init: str = ""
    init_sha256: str = ""
    # weight of the squared window-mean error of LE and H per row (scaled by their std): the
    # bias term of KGE, which a per-step MSE weighs no more than any other error; off by default
    bias_weight: float = 0.0
    # spin-up iterations at the start of every closed-loop window for the rows whose recurrent
    # state is zero there (fresh windows, zero-state restarts; validation from step 0), as the
    # served backend spins them up (``flux_step.spin_up_state``); 0: they start from zero
    train_spin_up: int = 0
    # trained networks (TorchScript path relative to emulators/artifacts, SHA-256 prefix) that
    # form an ensemble with the one this config trains, merged after it into one wider network
    # (``nets.flux_ensemble``: the members' mean); () trains one network alone (and is not
    # recorded in the manifest: ``recipes.base.recorded_config``)
    members: tuple[tuple[str, str], ...] = field(default=(), metadata={"recorded": "when set"})
    # (water, temperature): the fresh-start windows of the training start from soil water and
    # temperatures drawn around the backends' initial state (``start_spread.StartSpread``: half-
    # widths, relative soil water [1] and K); (0, 0) starts them all from that state
    cold_initial_spread: tuple[float, float] = field(
        default=(0.0, 0.0), metadata={"recorded": "when set"}
    )

    def __post_init__(self) -> None:
        if self.architecture != "flux_lstm":
            raise ValueError(
                f"architecture: recurrent training supports 'flux_lstm', got {self.architecture!r}"
            )
        require_positive(
            self, "epochs", "window", "windows_per_epoch", "patience", "threads", "validation_days"
        )
        if self.timestep < 1 or (86_400 % self.timestep and self.timestep % 86_400):
            raise ValueError(
                f"timestep must divide a day or be a multiple of it (s), got {self.timestep}"
            )
        if not 0 < self.lr_final <= self.lr:
            raise ValueError("learning rates must satisfy 0 < lr_final <= lr")
        require_positive(self, "cold_starts", "cold_window", "cold_rows")
        if len(self.cold_initial_spread) != 2:
            raise ValueError("cold_initial_spread: must be (water, temperature)")
        try:
            StartSpread(*self.cold_initial_spread)
        except ValueError as err:
            raise ValueError(f"cold_initial_spread: {err}") from None
        if self.cold_weight < 0:
            raise ValueError(f"cold_weight must be >= 0, got {self.cold_weight}")
        if not 0.0 <= self.reset_fraction <= 1.0:
            raise ValueError(f"reset_fraction must be in [0, 1], got {self.reset_fraction}")
        if self.bias_weight < 0:
            raise ValueError(f"bias_weight must be >= 0, got {self.bias_weight}")
        spin = self.train_spin_up
        if isinstance(spin, bool) or not isinstance(spin, int) or spin < 0:
            raise ValueError(f"train_spin_up must be an integer >= 0, got {self.train_spin_up!r}")
        for k, member in enumerate(self.members):
            if not (
                isinstance(member, tuple)
                and len(member) == 2
                and all(isinstance(v, str) and v for v in member)
            ):
                raise ValueError(
                    f"members[{k}] must be a (TorchScript path, SHA-256 prefix) pair of "
                    f"non-empty strings, got {member!r}"
                )

    @property
    def start_spread(self) -> StartSpread:
        """:attr:`cold_initial_spread` as the fresh-start windows draw it."""
        return StartSpread(*self.cold_initial_spread)

    def loop(self) -> trainer.Loop:
        """``epochs`` of ``windows_per_epoch`` windows, validated and checkpointed every epoch."""
        per_epoch = self.windows_per_epoch
        return trainer.Loop(
            steps=self.epochs * per_epoch,
            every=per_epoch,
            epoch_steps=per_epoch,
            patience=self.patience,
            maximise=True,  # free-running NSE of LE and H
            desc=self.artifact,
            unit="window",
            echo=True,
        )

    def optimiser(self) -> trainer.Optimiser:
        return trainer.Optimiser(
            "adam", self.lr, self.lr_final, "cosine-closed", None, self.grad_clip
        )


def for_timestep(config: Any, timestep: int, artifact: str, **budget: Any) -> Any:
    """``config`` (a flux or LAI training config) for reference trajectories at ``timestep`` s:
    the daily sources at steps of a day (else the hourly ones), the artifact directory and the
    ``budget`` changes. A daily emulator is its hourly recipe at another timestep."""
    daily = timestep >= 86_400
    return dataclasses.replace(
        config,
        artifact=artifact,
        timestep=timestep,
        train=DAILY_TRAIN_SOURCES if daily else TRAIN_SOURCES,
        validation=DAILY_VALIDATION_SOURCES if daily else VALIDATION_SOURCES,
        **budget,
    )


def daily_config() -> FluxTrainConfig:
    """The first training configuration of ``flux-lstm-daily`` (same architecture, 86 400 s
    steps; shipped 2026-11-23 to 2026-12-07): 60-day windows, validation free-running over two
    years. The shipped recipe's adds ``training.widened.DAILY_WIDE`` (``widened.daily_config``)."""
    config: FluxTrainConfig = for_timestep(
        FluxTrainConfig(),
        86_400,
        "flux_lstm_daily",
        epochs=14,
        window=60,
        windows_per_epoch=45,
        validation_days=730,
    )
    return config


def coldstart_config() -> FluxTrainConfig:
    """``flux-lstm``'s training config with ``flux_cold.COLDSTART_OPTIONS``: the spun-up network
    (``flux_cold.PARENT``) fine-tuned with fresh-start windows and zero-state restarts."""
    return dataclasses.replace(FluxTrainConfig(), **flux_cold.COLDSTART_OPTIONS)


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


def _errors(closed: closure.Closed, tg: dict[str, Tensor], scale: Tensor) -> Tensor:
    """(2, row) errors of the closed LE and H of one step, scaled by their std."""
    return torch.stack(
        [
            (closed.fields["hfls"] - tg["hfls"]) / scale[2],
            (closed.fields["hfss"] - tg["hfss"]) / scale[1],
        ]
    )


def closed_loop(
    model: flux_step.RecurrentNet,
    batch: Batch,
    start: tuple[Tensor, Tensor, Tensor, Tensor],
    h: Tensor,
    c: Tensor,
    steps: int,
    soil: SoilConfig,
    scale: Tensor,
    bias_weight: float = 0.0,
    spin_up: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """(mean loss, h, c) of ``steps`` closed-loop steps of the recurrent ``model`` (any network
    with the calling convention ``(x, h, c) -> (y, h, c)``) from ``start`` = (per-row time
    indices, soil water, skin and soil temperatures there), each step through the constraint layer
    on the state the previous one left (:func:`_loss` per step, scaled by ``scale``); with
    ``bias_weight``, plus that weight times the squared window-mean error of LE and H per row,
    averaged over rows. ``spin_up``: at the first step, rows with zero recurrent state are spun
    up by that many iterations first (``flux_step.spin_up_rows``, differentiated through), as
    the served backend does."""
    t_start, wv, ts, tsoil = start
    loss = torch.zeros(())
    bias = torch.zeros(2, batch.rows) if bias_weight else None
    for j in range(steps):
        t = t_start + j
        inp = batch.row_inputs(t, wv, ts, tsoil)
        first = spin_up if j == 0 else 0
        closed, y, h, c = flux_step.step(model, inp, h, c, soil, batch.dt, spin_up=first)
        tg = _targets(batch, t)
        loss = loss + _loss(closed, y, tg, scale)
        if bias is not None:
            bias = bias + _errors(closed, tg, scale)
        wv, ts, tsoil = closed.w, closed.ts, closed.tsoil
    if bias is not None:
        return loss / steps + bias_weight * ((bias / steps) ** 2).sum(0).mean(), h, c
    return loss / steps, h, c


class _Windows:
    """The flux LSTM's loss (the module docstring): optimiser step ``k`` runs window ``k`` of every
    row, from the row's random offset plus ``k`` windows (wrapping around the record), and carries
    the LSTM state to the next window."""

    def __init__(
        self,
        model: flux_nets.FluxLSTM,
        batch: Batch,
        val: Batch,
        config: FluxTrainConfig,
        cold: Batch | None = None,
        cold_val: Batch | None = None,
    ) -> None:
        self.model, self.batch, self.val, self.config = model, batch, val, config
        self.cold, self.cold_val = cold, cold_val
        self.soil = SoilConfig()
        stats = normalisation(batch, self.soil, seed=config.seed)
        if not config.init:  # fine-tuning keeps the normalisation it was trained with
            model.inputs.set(stats["x_mean"], stats["x_std"])
            model.outputs.set(stats["y_mean"], stats["y_std"])
        self.scale = stats["y_std"].float()
        self.gen = torch.Generator().manual_seed(config.seed + 1)  # cold rows and restarts
        chunks = batch.steps // config.window
        self.period = chunks * config.window
        gen = torch.Generator().manual_seed(config.seed)
        self.rows = torch.arange(batch.rows)
        self.offsets = torch.randint(0, chunks, (batch.rows,), generator=gen) * config.window
        self.h = torch.zeros(batch.rows, model.hidden)
        self.c = torch.zeros(batch.rows, model.hidden)

    def loss(self, step: int) -> Tensor:
        batch, w, r = self.batch, self.config.window, self.rows
        t_start = (self.offsets + step * w) % self.period
        wv = batch.state["w"][t_start, r]
        ts = batch.state["ts"][t_start, r]
        tsoil = batch.state["tsoil"][t_start, r]
        h, c = self.h, self.c
        if self.config.reset_fraction > 0:
            keep = torch.rand(batch.rows, generator=self.gen) >= self.config.reset_fraction
            h, c = h * keep[:, None], c * keep[:, None]
        loss = self._run(batch, t_start, wv, ts, tsoil, h, c, w, keep_state=True)
        if self.cold is not None:
            n = min(self.config.cold_rows, self.cold.rows)
            sub = flux_cold.rows(self.cold, torch.randperm(self.cold.rows, generator=self.gen)[:n])
            zero = torch.zeros(n, self.model.hidden)
            t0 = torch.zeros(n, dtype=torch.long)
            s = sub.state
            cold = self._run(sub, t0, s["w"][0], s["ts"][0], s["tsoil"][0], zero, zero, None)
            loss = loss + self.config.cold_weight * cold
        return loss

    def _run(
        self,
        batch: Batch,
        t_start: Tensor,
        wv: Tensor,
        ts: Tensor,
        tsoil: Tensor,
        h: Tensor,
        c: Tensor,
        window: int | None,
        keep_state: bool = False,
    ) -> Tensor:
        """Mean loss of a closed-loop window of ``window`` steps (default ``cold_window``)."""
        w = self.config.cold_window if window is None else window
        loss, h, c = closed_loop(
            self.model,
            batch,
            (t_start, wv, ts, tsoil),
            h,
            c,
            w,
            self.soil,
            self.scale,
            self.config.bias_weight,
            self.config.train_spin_up,
        )
        if keep_state:
            self.h, self.c = h.detach(), c.detach()
        return loss

    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        scores = validation_scores(
            self.model, self.val, self.cold_val, self.config.cold_window, self.soil,
            spin_up=self.config.train_spin_up,
        )  # fmt: skip
        running = done.losses[0]  # exponential moving average over the epoch's windows
        for value in done.losses[1:]:
            running = 0.9 * running + 0.1 * value
        record = {"epoch": done.epoch, "train_loss": running, **scores}
        return validation_score(scores), record


def train(
    config: FluxTrainConfig,
    cache: Path | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    # the pinned members first: a bad pin is refused before an hour of training, not after
    pinned = [flux_cold.load_member(path, sha) for path, sha in config.members]
    trainer.seed(config.seed, config.threads)
    batch, val, cold, cold_val = batches(config, cache, progress)
    model = registry.build(config.architecture, config.options)
    if not isinstance(model, flux_nets.FluxLSTM):
        raise TypeError("flux training needs a FluxLSTM")
    if config.init:
        flux_cold.load_init(model, config.init, config.init_sha256)
    batch, val = for_net(batch, model), for_net(val, model)
    cold = None if cold is None else for_net(cold, model)
    cold_val = None if cold_val is None else for_net(cold_val, model)
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = trainer.Checkpoints(checkpoint_dir / f"{config.artifact}-last.pt")
    problem = _Windows(model, batch, val, config, cold, cold_val)
    result = trainer.fit(problem, config.loop(), config.optimiser(), progress, checkpoints)
    result.data_hash = data_hash(config.train, config.timestep)
    if batch.height_features:
        result.extra["heights"] = height_ranges([b for b in (batch, cold) if b is not None])
    if config.members:
        result.model = flux_ensemble.merge([*pinned, model])
        log.info("flux ensemble: %d pinned member(s) + the trained one", len(pinned))
    return result


def height_ranges(batches: Sequence[Batch]) -> dict[str, list[float]]:
    """The (low, high) wind and temperature heights [m] the rows of ``batches`` ran at: what a
    network with the height features serves (``artifacts.trained_heights``)."""
    heights = torch.cat([b.row_heights() for b in batches])  # type: ignore[misc]
    low, high = heights.min(0).values.tolist(), heights.max(0).values.tolist()
    return {"wind": [low[0], high[0]], "temperature": [low[1], high[1]]}


def batches(
    config: Any, cache: Path | None, progress: bool
) -> tuple[Batch, Batch, Batch | None, Batch | None]:
    """The batches of a closed-loop flux training ``config`` (its ``train``, ``validation``,
    ``validation_days``, ``timestep`` and ``flux_cold`` fields): training (float32), the first
    ``validation_days`` of the validation sources, and, when ``cold_weight`` > 0, the fresh
    starts of the training sources and those of the validation sources (4 dates each, the
    fresh window's days plus two)."""
    dt = config.timestep
    trajs = [simulate(s, dt, progress=progress, cache=cache) for s in config.train]
    batch = Batch.of(trajs, torch.float32, SoilConfig())
    val = Batch.of([simulate(s, dt, progress=progress, cache=cache) for s in config.validation])
    val = truncate(val, config.validation_days * int(86_400 // val.dt))
    cold = flux_cold.cold_batch(config, cache, progress)
    cold_val = None
    if cold is not None:
        days = 2 + flux_cold.window_days(config)
        specs = flux_cold.cold_specs(config.validation, 4, days, dt)
        cold_val = Batch.of([simulate(s, dt, progress=progress, cache=cache) for s in specs])
    return batch, val, cold, cold_val
