"""Training of the Transformer flux emulator (``flux_transformer``, Trans-LAI) for comparison.

As in the paper the loss is the mean squared error plus energy- and water-balance penalties,
``Loss = MSE + 0.3·|energy residual| + 0.2·|water residual|`` (SCIENCE.md §1), on the network's
*raw* outputs: besides the five served outputs it predicts the ground heat flux and the soil-water
change directly, and the residuals ``Rn(T_s) − LE − H − G`` and ``ΔW − (P − E − R)·dt`` of those
raw predictions are penalised (each in units of its target's standard deviation). Served fluxes
still go through the shared constraint layer, which closes them exactly whatever the network says.

Training is teacher-forced on random (row, time) samples with windows of the reference's own
features; the evaluation runs it closed-loop like every flux emulator. A windowed model costs
~40× the LSTM per training step, so the closed-loop fine-tuning that may follow
(``closed_iterations``, ``training.transformer_loop``) runs short windows on row subsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from emulators import metrics, physics
from emulators.compiled import closure, flux_step
from emulators.nets import flux as flux_nets
from emulators.nets import registry
from emulators.reference.soil import SoilConfig
from emulators.training import trainer, transformer_loop
from emulators.training.batch import Batch, rollout
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux import TRAIN_SOURCES, VALIDATION_SOURCES, data_hash
from emulators.training.flux_validation import truncate
from emulators.training.trainer import Round, TrainResult, require_positive

Tensor = torch.Tensor
ENERGY_WEIGHT = 0.3  # Trans-LAI λ_energy
WATER_WEIGHT = 0.2  # Trans-LAI λ_water


@dataclass(frozen=True)
class TransformerTrainConfig:
    options: dict[str, Any] = field(default_factory=dict)
    train: tuple[SourceSpec, ...] = TRAIN_SOURCES
    validation: tuple[SourceSpec, ...] = VALIDATION_SOURCES
    iterations: int = 3000
    batch: int = 256
    lr: float = 1e-3
    lr_final: float = 5e-5
    validate_every: int = 1000
    validation_days: int = 30
    seed: int = 0
    threads: int = 1
    # closed-loop fine-tuning after the teacher-forced iterations (``transformer_loop``), off at
    # 0: ``closed_iterations`` optimiser steps, each on ``closed_rows`` random rows running
    # ``closed_window`` steps on their own state from a window of the reference's features,
    # validated every ``closed_validate_every``; with ``cold_weight`` > 0, plus ``cold_rows``
    # fresh starts (``flux_cold``: ``cold_starts`` dates per source, ``cold_window`` steps)
    closed_iterations: int = 0
    closed_rows: int = 256
    closed_window: int = 48
    closed_lr: float = 3e-4
    closed_lr_final: float = 3e-5
    closed_validate_every: int = 50
    cold_weight: float = 0.0
    cold_rows: int = 128
    cold_starts: int = 12
    cold_window: int = 48
    # ``init``: a TorchScript ``flux-transformer`` artifact (a path, or relative to
    # ``emulators/artifacts``; its SHA-256 must start with ``init_sha256``) whose weights the
    # closed-loop stage continues; the teacher-forced stage is then skipped
    init: str = ""
    init_sha256: str = ""

    def __post_init__(self) -> None:
        require_positive(
            self, "iterations", "batch", "validate_every", "validation_days", "threads"
        )
        if self.closed_iterations < 0:
            raise ValueError(f"closed_iterations must be >= 0, got {self.closed_iterations}")
        require_positive(
            self,
            "closed_rows",
            "closed_window",
            "closed_validate_every",
            "cold_rows",
            "cold_starts",
            "cold_window",
        )
        if not 0 < self.closed_lr_final <= self.closed_lr:
            raise ValueError("learning rates must satisfy 0 < closed_lr_final <= closed_lr")
        if self.cold_weight < 0:
            raise ValueError(f"cold_weight must be >= 0, got {self.cold_weight}")
        if self.init and not self.closed_iterations:
            raise ValueError(
                "init: continues the closed-loop stage, so closed_iterations must be > 0"
            )

    @property
    def timestep(self) -> int:
        """s: the Transformer is trained and served at hourly steps."""
        return 3600

    def loop(self) -> trainer.Loop:
        """``iterations`` steps, validated every ``validate_every``; no early stopping."""
        return trainer.Loop(
            steps=self.iterations,
            every=self.validate_every,
            maximise=True,  # free-running NSE of LE and H
            desc="flux_transformer",
            unit="batch",
        )

    def optimiser(self) -> trainer.Optimiser:
        return trainer.Optimiser("adamw", self.lr, self.lr_final, grad_clip=1.0)


#: the ``flux-transformer`` of the morning of 2026-12-07 (:func:`first_config`, trained from
#: scratch 04:40-05:19 UTC), which the shipped recipe continues
INIT = "flux_transformer/init/flux_transformer-2026-12-07.ts"
INIT_SHA256 = "8924698462e257c2"


def first_config() -> TransformerTrainConfig:
    """The config that trained :data:`INIT` from scratch: the weather the shipped ``flux-lstm``
    trains and validates on (``widened.hourly_config``), 3 000 teacher-forced iterations, then
    300 closed-loop ones (``transformer_loop``) on 256 rows × 48 h, with fresh starts (128 rows ×
    48 h, weight 1) as the LSTM's."""
    from emulators.training import widened

    lstm = widened.hourly_config()
    return TransformerTrainConfig(
        train=lstm.train,
        validation=lstm.validation,
        closed_iterations=300,
        cold_weight=1.0,
    )


def shipped_config() -> TransformerTrainConfig:
    """The training config of the shipped ``flux-transformer``: :data:`INIT` (the two stages of
    :func:`first_config`) continued closed-loop for 600 more iterations at half the learning
    rate (1.5e-4 → 1.5e-5), seed 1 (docs/emulators.md, "Closed-loop fine-tuning")."""
    return replace(
        first_config(),
        closed_iterations=600,
        closed_lr=1.5e-4,
        closed_lr_final=1.5e-5,
        seed=1,
        init=INIT,
        init_sha256=INIT_SHA256,
    )


def _inputs_at(batch: Batch, t: Tensor, r: Tensor) -> flux_step.RowInputs:
    return flux_step.RowInputs(
        forcing={k: v[t, r] for k, v in batch.forcing.items()},
        w=batch.state["w"][t, r],
        ts_prev=batch.state["ts"][t, r],
        tsoil=batch.state["tsoil"][t, r],
        cleaf=batch.state["cleaf"][t, r],
        params=batch.params[r],
        tile=batch.tile[r],
        const={k: v[r] for k, v in batch.const.items()},
        doy=batch.doy[t, r],
        local_hour=torch.remainder(batch.sod[t, r] / 3600.0 + batch.lon[r] / 15.0, 24.0),
    )


def _sample(
    batch: Batch, t_end: Tensor, r: Tensor, window: int, soil: SoilConfig
) -> dict[str, Any]:
    xs = []
    for j in range(window):
        x, _ = flux_step.features(_inputs_at(batch, t_end - window + 1 + j, r), soil)
        xs.append(x)
    inp = _inputs_at(batch, t_end, r)
    _, surf = flux_step.features(inp, soil)
    o = {k: v[t_end, r] for k, v in batch.outputs.items()}
    emis = inp.const["emissivity"]
    rlds, rsds = inp.forcing["rlds"], inp.forcing["rsds"]
    rns_ref = rsds * (1 - surf.albedo) + rlds - physics.upwelling_longwave(o["ts"], rlds, emis)
    w_next = batch.state["w"][torch.clamp(t_end + 1, max=batch.steps - 1), r]
    return {
        "window": torch.stack(xs, 1),
        "inp": inp,
        "surf": surf,
        "g_ref": rns_ref - o["hfls"] - o["hfss"],
        "dw_ref": w_next - inp.w,
    }


def _statistics(
    batch: Batch, window: int, soil: SoilConfig, gen: torch.Generator
) -> dict[str, Tensor]:
    t = torch.randint(window, batch.steps - 1, (4096,), generator=gen)
    r = torch.randint(0, batch.rows, (4096,), generator=gen)
    x, _ = flux_step.features(_inputs_at(batch, t, r), soil)
    s = _sample(batch, t, r, 1, soil)
    tg = _targets_at(batch, t, r)
    y = torch.stack([tg[n] for n, _, _ in closure.FLUX_OUTPUTS] + [s["g_ref"], s["dw_ref"]], -1)
    xs = x.double().std(0)
    return {
        "x_mean": x.double().mean(0),
        "x_std": torch.where(xs > 1e-8, xs, torch.ones_like(xs)),
        "y_mean": y.double().mean(0),
        "y_std": y.double().std(0).clamp_min(1e-9),
    }


def _targets_at(batch: Batch, t: Tensor, r: Tensor) -> dict[str, Tensor]:
    o = {k: v[t, r] for k, v in batch.outputs.items()}
    evap = o["evspsbl"]
    ok = evap.abs() > 1e-9
    return {
        "ts_minus_tas": o["ts"] - batch.forcing["tas"][t, r],
        "hfss": o["hfss"],
        "hfls_demand": o["hfls"],
        "tran_share": torch.where(ok, o["tran"] / evap.where(ok, 1.0), 0.0),
        "gpp": o["gpp"],
        "share_mask": ok.to(evap.dtype),
    }


class _Samples:
    """The Transformer's loss (the module docstring) on ``batch`` random (row, time) windows."""

    def __init__(
        self,
        net: flux_nets.FluxTransformer,
        batch: Batch,
        val: Batch,
        config: TransformerTrainConfig,
    ) -> None:
        self.model, self.batch, self.val, self.config = net, batch, val, config
        self.soil = SoilConfig()
        self.gen = torch.Generator().manual_seed(config.seed)
        stats = _statistics(batch, net.window, self.soil, self.gen)
        net.inputs.set(stats["x_mean"], stats["x_std"])
        net.outputs.set(stats["y_mean"], stats["y_std"])
        self.scale = stats["y_std"].float()
        self.penalties = (torch.zeros(()), torch.zeros(()))

    def loss(self, step: int) -> Tensor:
        batch, net, scale, w = self.batch, self.model, self.scale, self.model.window
        t_end = torch.randint(w, batch.steps - 1, (self.config.batch,), generator=self.gen)
        r = torch.randint(0, batch.rows, (self.config.batch,), generator=self.gen)
        s = _sample(batch, t_end, r, w, self.soil)
        tg = _targets_at(batch, t_end, r)
        y = net(s["window"])
        mse = torch.stack(
            [
                (((y[:, 0] - tg["ts_minus_tas"]) / scale[0]) ** 2).mean(),
                (((y[:, 1] - tg["hfss"]) / scale[1]) ** 2).mean(),
                (((y[:, 2] - tg["hfls_demand"]) / scale[2]) ** 2).mean(),
                (tg["share_mask"] * ((y[:, 3] - tg["tran_share"]) / scale[3]) ** 2).mean(),
                (((y[:, 4] - tg["gpp"]) / scale[4]) ** 2).mean(),
                (((y[:, 5] - s["g_ref"]) / scale[5]) ** 2).mean(),
                (((y[:, 6] - s["dw_ref"]) / scale[6]) ** 2).mean(),
            ]
        ).sum()
        inp, surf = s["inp"], s["surf"]
        tas = inp.forcing["tas"]
        rlds = inp.forcing["rlds"]
        rns = (
            inp.forcing["rsds"] * (1 - surf.albedo)
            + rlds
            - physics.upwelling_longwave(tas + y[:, 0], rlds, inp.const["emissivity"])
        )
        energy = (rns - y[:, 2] - y[:, 1] - y[:, 5]) / scale[5]
        evap = y[:, 2] / physics.latent_heat_vaporisation(tas)
        runoff = batch.outputs["mrro"][t_end, r]
        water = (y[:, 6] - (inp.forcing["pr"] - evap - runoff) * batch.dt) / scale[6]
        self.penalties = (energy.detach(), water.detach())
        return mse + ENERGY_WEIGHT * energy.abs().mean() + WATER_WEIGHT * water.abs().mean()

    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        step = flux_nets.FluxTransformerStep(self.model).eval()
        with torch.no_grad():
            out = rollout(
                step, self.val, step.hidden, self.soil, fields=("hfls", "hfss"), c_width=1
            )
        step.train()
        scores = {
            k: float(metrics.nse(out[k].double().numpy(), self.val.outputs[k].double().numpy()))
            for k in ("hfls", "hfss")
        }
        energy, water = self.penalties
        record = {
            "iteration": done.step,
            "loss": done.losses[-1],
            "energy_penalty": energy.abs().mean().item(),
            "water_penalty": water.abs().mean().item(),
            **{f"nse_{k}": v for k, v in scores.items()},
        }
        return 0.5 * (scores["hfls"] + scores["hfss"]), record


def train(
    config: TransformerTrainConfig, cache: Path | None = None, progress: bool = True
) -> TrainResult:
    """Train ``flux_transformer``; the result's ``model`` is the network itself (served through
    ``FluxTransformerStep``). With ``config.init``: the closed-loop stage alone, from its
    weights."""
    if config.init:  # the network first (its build draws random numbers), then the seed
        net = _initial(config)
        trainer.seed(config.seed, config.threads)
        result = TrainResult(net, [], 0, stopped=f"initialised from {config.init}")
    else:
        net, result = _teacher_forced(config, cache, progress)
    if config.closed_iterations:
        result = transformer_loop.fine_tune(net, result, config, cache, progress)
    result.data_hash = data_hash(config.train)
    return result


def _teacher_forced(
    config: TransformerTrainConfig, cache: Path | None, progress: bool
) -> tuple[flux_nets.FluxTransformer, TrainResult]:
    """The first stage from scratch: the network and its teacher-forced training result."""
    trainer.seed(config.seed, config.threads)
    batch = Batch.of([simulate(s, progress=progress, cache=cache) for s in config.train])
    val = Batch.of([simulate(s, progress=progress, cache=cache) for s in config.validation])
    val = truncate(val, config.validation_days * int(86_400 // val.dt))
    net = _build(config)
    problem = _Samples(net, batch, val, config)
    return net, trainer.fit(problem, config.loop(), config.optimiser(), progress)


def _build(config: TransformerTrainConfig) -> flux_nets.FluxTransformer:
    net = registry.build("flux_transformer", config.options)
    if not isinstance(net, flux_nets.FluxTransformer):
        raise TypeError("flux_transformer must build a FluxTransformer")
    return net


def _initial(config: TransformerTrainConfig) -> flux_nets.FluxTransformer:
    """The network of ``config.init`` (its TorchScript weights, sha256-checked)."""
    from emulators.training.flux_cold import load_init

    net = _build(config)
    step = flux_nets.FluxTransformerStep(net)
    load_init(step, config.init, config.init_sha256)
    return net
