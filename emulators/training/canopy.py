"""Training of the canopy emulator of the ``hybrid`` backend (``canopy-mlp``).

Samples are (time, row) entries drawn at random from the reference tile trajectories of the
hourly flux emulator's training weather (the same cached sources: ``widened.hourly_config()``),
each one a call of the reference's canopy photosynthesis: the inputs it received in that step
(shortwave, the previous skin temperature as leaf temperature, pressure, relative humidity,
CO₂, LAI and water stress from the state, the row's parameters) and its outputs, recomputed
exactly from them (``photosynthesis.canopy_photosynthesis``). The network learns
r = A / min(V_m/2, ε PAR) (``nets.canopy``) by mean squared error where r is defined (leaves and
light); the validation score is the RMSE of canopy conductance relative to its mean over a
validation source, the quantity the energy balance sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators import landstep, physics
from emulators import parameters as P
from emulators.nets import canopy as canopy_nets
from emulators.nets import registry
from emulators.reference import photosynthesis
from emulators.reference.model import DEFAULT_CO2_PPM
from emulators.reference.soil import SoilConfig
from emulators.training import trainer
from emulators.training.data import SourceSpec, Trajectory, simulate
from emulators.training.flux import data_hash
from emulators.training.sources import VALIDATION_SOURCES
from emulators.training.trainer import Round, TrainResult, require_positive

Tensor = torch.Tensor
_PARAM = {spec.name: i for i, spec in enumerate(P.PARAMETERS)}


def _train_sources() -> tuple[SourceSpec, ...]:
    from emulators.training import widened

    return tuple(widened.hourly_config().train)


@dataclass(frozen=True)
class CanopyTrainConfig:
    architecture: str = "canopy_mlp"
    options: dict[str, Any] = field(default_factory=dict)
    train: tuple[SourceSpec, ...] = field(default_factory=_train_sources)
    validation: tuple[SourceSpec, ...] = VALIDATION_SOURCES
    timestep: int = 3600
    samples_per_source: int = 200_000  # (time, row) draws per source, before keeping daylight
    batch: int = 1024
    epochs: int = 40
    lr: float = 3e-3
    seed: int = 0
    threads: int = 2
    artifact: str = "canopy_mlp"

    def __post_init__(self) -> None:
        require_positive(self, "samples_per_source", "batch", "epochs", "threads", "timestep")
        if not self.train or not self.validation:
            raise ValueError("train and validation need at least one source each")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        registry.config(self.architecture, self.options)  # the network options validate


def canopy_inputs(
    traj: Trajectory, t: np.ndarray, r: np.ndarray, soil: SoilConfig | None = None
) -> Tensor:
    """(n, 12) float64 inputs of the reference's canopy photosynthesis at steps ``t`` and rows
    ``r`` of ``traj`` (``nets.canopy.CANOPY_INPUTS`` order), exactly as ``ReferenceBackend``
    forms them from the state before the step."""
    soil = soil or SoilConfig()

    def f64(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64))

    forcing = {k: f64(v[t, r]) for k, v in traj.forcing.items()}
    params = f64(traj.params[r])
    tile = torch.as_tensor(traj.tile[r]).long()
    const = {k: v[tile] for k, v in landstep.class_constants(soil, torch.float64).items()}
    surf = landstep.surface(
        f64(traj.state["w"][t, r]), f64(traj.state["cleaf"][t, r]), params, const, soil
    )
    ta, qa, ps = forcing["tas"], forcing["huss"], forcing["ps"]
    co2 = forcing.get("co2", torch.full_like(ta, DEFAULT_CO2_PPM))
    cols = [
        forcing["rsds"],
        f64(traj.state["ts"][t, r]),
        ps,
        physics.relative_humidity(qa, ta, ps),
        co2,
        surf.lai,
        *(params[:, _PARAM[n]] for n in ("vmax0", "effcon", "gradm", "binter", "rlfv")),
        surf.f_w,
    ]
    return torch.stack(cols, dim=-1)


def reference_canopy(x: Tensor) -> Tensor:
    """(n, 2) the reference's (GPP, conductance) at canopy inputs ``x`` (n, 12)."""
    kw: dict[str, Any] = {n: x[:, i] for i, (n, _, _) in enumerate(canopy_nets.CANOPY_INPUTS)}
    out = photosynthesis.canopy_photosynthesis(**kw)
    return torch.stack([out.gpp, out.conductance], dim=-1)


@dataclass
class Samples:
    """Canopy inputs (n, 12) float64 and the reference's outputs (n, 2)."""

    x: Tensor
    y: Tensor

    @staticmethod
    def draw(trajs: list[Trajectory], per_source: int, seed: int) -> Samples:
        """``per_source`` random (step, row) entries of each trajectory's physical rows."""
        rng = np.random.default_rng(seed)
        xs = []
        for traj0 in trajs:
            traj, _ = traj0.physical()
            t = rng.integers(0, traj.steps, per_source)
            r = rng.integers(0, traj.rows, per_source)
            xs.append(canopy_inputs(traj, t, r))
        x = torch.cat(xs)
        return Samples(x, reference_canopy(x))


class _Problem:
    """Mini-batches of r where defined; validated by the conductance's relative RMSE."""

    def __init__(self, model: canopy_nets.CanopyNet, train: Samples, val: Samples, cfg: Any):
        self._model = model
        r, ok = canopy_nets.target_fraction(train.x, train.y[:, 0])
        self.x, self.r = train.x[ok].float(), r[ok].float()
        self.val = val
        self.batch = cfg.batch
        self.steps_per_epoch = max(1, len(self.x) // cfg.batch)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.order = torch.randperm(len(self.x), generator=self.gen)

    @property
    def model(self) -> canopy_nets.CanopyNet:
        return self._model

    def loss(self, step: int) -> Tensor:
        k = step % self.steps_per_epoch
        if k == 0 and step:
            self.order = torch.randperm(len(self.x), generator=self.gen)
        idx = self.order[k * self.batch : (k + 1) * self.batch]
        return ((self._model.fraction(self.x[idx]) - self.r[idx]) ** 2).mean()

    @torch.no_grad()
    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        score = validation_errors(self._model, self.val)
        return score["conductance_rrmse"], {"epoch": done.epoch, **score}


@torch.no_grad()
def validation_errors(model: torch.nn.Module, val: Samples) -> dict[str, float]:
    """RMSE of GPP and conductance relative to their means over ``val`` [1]."""
    y = model(val.x.float()).double()
    out = {}
    for i, name in enumerate(("gpp", "conductance")):
        rmse = float(((y[:, i] - val.y[:, i]) ** 2).mean().sqrt())
        out[f"{name}_rrmse"] = rmse / max(float(val.y[:, i].abs().mean()), 1e-30)
    return out


def train(
    config: CanopyTrainConfig, cache: Path | None = None, progress: bool = True
) -> TrainResult:
    """Train ``config.architecture`` on samples of ``config.train``; the best weights by the
    validation conductance error."""
    trainer.seed(config.seed, config.threads)
    model = registry.build(config.architecture, config.options)
    if not isinstance(model, canopy_nets.CanopyNet):
        raise TypeError(f"{config.architecture} does not build a CanopyNet")

    def trajs(specs: tuple[SourceSpec, ...]) -> list[Trajectory]:
        return [simulate(s, config.timestep, progress=progress, cache=cache) for s in specs]

    train_set = Samples.draw(trajs(config.train), config.samples_per_source, config.seed)
    val_set = Samples.draw(trajs(config.validation), config.samples_per_source, config.seed + 1)
    problem = _Problem(model, train_set, val_set, config)
    epoch = problem.steps_per_epoch
    result = trainer.fit(
        problem,
        trainer.Loop(
            steps=config.epochs * epoch, every=epoch, epoch_steps=epoch, desc="canopy-mlp"
        ),
        trainer.Optimiser("adam", config.lr),
        progress=progress,
    )
    result.data_hash = data_hash(config.train + config.validation, config.timestep)
    result.extra = {"samples": {"train": len(problem.x), "validation": len(val_set.x)}}
    return result
