"""Closed-loop fine-tuning of the Transformer flux emulator (``flux_transformer``).

Teacher forcing (``training.transformer``) never shows the network its own errors: served, its
window holds the features of *its* past steps, and the soil water and temperatures in them are
the ones its own fluxes left. Here it is trained as it is served, as the LSTM is
(``training.flux``), behind the recurrent calling convention (``FluxTransformerStep``):

* **spun-up windows** — every optimiser step takes ``closed_rows`` random rows of the training
  batch at random times t₀; their window is filled with the normalised features of the W − 1
  steps before t₀ computed from the reference's own state (what a session that had followed the
  reference would carry), the physical state is the reference's at t₀, and the network then
  runs ``closed_window`` steps on its own state through the constraint layer
  (``flux.closed_loop``, the LSTM's loss);
* **fresh starts** — with ``cold_weight`` > 0, ``cold_rows`` rows of the fresh-start batch
  (``flux_cold``: the training sources without spin-up, from the backends' initial state) run
  ``cold_window`` steps from step 0 with an empty window (zeros, as a session starts), their
  loss added with that weight.

A windowed network costs ~40× the LSTM per training step (measured on the widened batch: 1.4 s
vs 0.034 s per step for 3 200 rows, one thread), hence row subsets instead of every row. The
weights kept are those of the best validation (the teacher-forced weights, validated first,
when no fine-tuned validation beats them): free-running NSE of LE and H over the validation
sources, and with fresh starts half of it plus a quarter each of LE's and H's NSE over the
first ``cold_window`` steps of fresh starts of the validation sources: the LSTM's own
validation (``flux_validation.validation_scores``, ``flux_validation.validation_score``), with
c of width 1.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from emulators.compiled import flux_step
from emulators.nets.flux import FluxTransformer, FluxTransformerStep
from emulators.reference.soil import SoilConfig
from emulators.training import flux, flux_cold, flux_validation, trainer
from emulators.training.batch import Batch
from emulators.training.trainer import Round, TrainResult

if TYPE_CHECKING:
    from emulators.training.transformer import TransformerTrainConfig

Tensor = torch.Tensor


def prefill(net: FluxTransformer, batch: Batch, t0: Tensor, soil: SoilConfig) -> Tensor:
    """(row, (W − 1)·F): the normalised features of the W − 1 steps before the per-row times
    ``t0`` (each ≥ W − 1), with the reference's state at each of those steps, laid out as
    ``FluxTransformerStep`` carries its window in ``h``."""
    r = torch.arange(batch.rows)
    s = batch.state
    past = []
    for j in range(net.window - 1, 0, -1):
        t = t0 - j
        x, _ = flux_step.features(
            batch.row_inputs(t, s["w"][t, r], s["ts"][t, r], s["tsoil"][t, r]), soil
        )
        past.append(net.inputs(x))
    return torch.stack(past, 1).reshape(batch.rows, -1)


class _ClosedLoop:
    """The fine-tuning's loss and validation (module docstring) as ``trainer.fit`` sees them."""

    def __init__(
        self,
        net: FluxTransformer,
        batch: Batch,
        val: Batch,
        config: TransformerTrainConfig,
        cold: Batch | None,
        cold_val: Batch | None,
    ) -> None:
        self.net, self.batch, self.val, self.config = net, batch, val, config
        self.cold, self.cold_val = cold, cold_val
        self.step = FluxTransformerStep(net)
        self.soil = SoilConfig()
        self.scale = flux.normalisation(batch, self.soil, seed=config.seed)["y_std"].float()
        self.gen = torch.Generator().manual_seed(config.seed + 2)
        if batch.steps <= net.window - 1 + config.closed_window:
            raise ValueError(
                f"closed_window: {config.closed_window} steps after a window of "
                f"{net.window - 1} need more than the batch's {batch.steps} steps"
            )

    @property
    def model(self) -> FluxTransformerStep:
        return self.step

    def loss(self, step: int) -> Tensor:
        del step  # every optimiser step draws its own rows and times
        cfg, batch, past = self.config, self.batch, self.net.window - 1
        n = min(cfg.closed_rows, batch.rows)
        sub = flux_cold.rows(batch, torch.randperm(batch.rows, generator=self.gen)[:n])
        t0 = torch.randint(past, batch.steps - cfg.closed_window, (n,), generator=self.gen)
        with torch.no_grad():
            h = prefill(self.net, sub, t0, self.soil)
        r, s = torch.arange(n), sub.state
        start = (t0, s["w"][t0, r], s["ts"][t0, r], s["tsoil"][t0, r])
        c = torch.zeros(n, 1)
        loss, _, _ = flux.closed_loop(
            self.step, sub, start, h, c, cfg.closed_window, self.soil, self.scale
        )
        if self.cold is not None:
            m = min(cfg.cold_rows, self.cold.rows)
            fresh = flux_cold.rows(
                self.cold, torch.randperm(self.cold.rows, generator=self.gen)[:m]
            )
            s = fresh.state
            start = (torch.zeros(m, dtype=torch.long), s["w"][0], s["ts"][0], s["tsoil"][0])
            empty = torch.zeros(m, self.step.hidden)
            cold, _, _ = flux.closed_loop(
                self.step,
                fresh,
                start,
                empty,
                torch.zeros(m, 1),
                cfg.cold_window,
                self.soil,
                self.scale,
            )
            loss = loss + cfg.cold_weight * cold
        return loss

    def validate(self, done: Round) -> tuple[float, dict[str, float]]:
        record = {"closed_iteration": done.step, "loss": done.losses[-1], **self.scores()}
        return flux_validation.validation_score(record), record

    def scores(self) -> dict[str, float]:
        """``flux_validation.validation_scores`` of the served step (c of width 1)."""
        cold_window = self.config.cold_window
        return flux_validation.validation_scores(
            self.step, self.val, self.cold_val, cold_window, self.soil, c_width=1
        )


def fine_tune(
    net: FluxTransformer,
    teacher_forced: TrainResult,
    config: TransformerTrainConfig,
    cache: Path | None,
    progress: bool,
) -> TrainResult:
    """``net`` (the teacher-forced result's network) fine-tuned closed-loop; the result's model
    is the network with the best validation's weights, its history the teacher-forced records
    followed by the closed-loop ones."""
    batch, val, cold, cold_val = flux.batches(config, cache, progress)
    problem = _ClosedLoop(net, batch, val, config, cold, cold_val)
    start = {"closed_iteration": 0, **problem.scores()}
    start_state = copy.deepcopy(net.state_dict())
    loop = trainer.Loop(
        steps=config.closed_iterations,
        every=config.closed_validate_every,
        maximise=True,
        desc="flux_transformer closed-loop",
        unit="window",
        echo=True,
    )
    optimiser = trainer.Optimiser("adam", config.closed_lr, config.closed_lr_final, grad_clip=1.0)
    tuned = trainer.fit(problem, loop, optimiser, progress)
    keep_start = flux_validation.validation_score(start) >= max(
        flux_validation.validation_score(r) for r in tuned.history
    )
    kept = "the best closed-loop validation"
    if keep_start:  # fine-tuning never beat the teacher-forced weights
        net.load_state_dict(start_state)
        kept = "the teacher-forced weights (no closed-loop validation beat them)"
    return TrainResult(
        net.eval(),
        [*teacher_forced.history, start, *tuned.history],
        0 if keep_start else tuned.best_epoch,
        stopped=f"teacher-forced: {teacher_forced.stopped}; closed-loop: {tuned.stopped}; "
        f"kept {kept}",
        seconds=teacher_forced.seconds + tuned.seconds,
    )
