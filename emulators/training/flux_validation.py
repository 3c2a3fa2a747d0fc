"""Validation of the closed-loop flux trainings (``training.flux``, ``training.transformer_loop``):
free-running NSE of LE and H from step 0 of the validation sources and of their fresh starts,
the score that picks a training's weights, and truncating a batch to its first steps."""

from __future__ import annotations

import dataclasses

from emulators.metrics import nse
from emulators.nets import flux as flux_nets
from emulators.reference.soil import SoilConfig
from emulators.training.batch import Batch, rollout


def validate(
    model: flux_nets.FluxLSTM | flux_nets.FluxTransformerStep,
    batch: Batch,
    soil: SoilConfig,
    c_width: int | None = None,
    spin_up: int = 0,
) -> dict[str, float]:
    """Free-running NSE of LE and H over the validation batch (pooled over rows and time), from
    a zero recurrent state (``c_width``: the width of c when not ``model.hidden``), spun up by
    ``spin_up`` iterations first as the backends do."""
    model.eval()
    out = rollout(
        model, batch, model.hidden, soil, fields=("hfls", "hfss"), c_width=c_width,
        spin_up=spin_up,
    )  # fmt: skip
    model.train()
    return {
        f"nse_{k}": float(nse(out[k].double().numpy(), batch.outputs[k].double().numpy()))
        for k in ("hfls", "hfss")
    }


def validation_scores(
    model: flux_nets.FluxLSTM | flux_nets.FluxTransformerStep,
    val: Batch,
    cold_val: Batch | None,
    cold_window: int,
    soil: SoilConfig,
    c_width: int | None = None,
    spin_up: int = 0,
) -> dict[str, float]:
    """:func:`validate` over ``val`` and, with ``cold_val`` (fresh starts of the validation
    sources), ``cold_nse_*`` over their first ``cold_window`` steps; both from a zero recurrent
    state spun up by ``spin_up`` iterations."""
    out = validate(model, val, soil, c_width, spin_up)
    if cold_val is not None:
        first = truncate(cold_val, cold_window)
        cold = validate(model, first, soil, c_width, spin_up)
        out |= {f"cold_{k}": v for k, v in cold.items()}
    return out


def validation_score(scores: dict[str, float]) -> float:
    """The score that picks a closed-loop training's weights from :func:`validation_scores`:
    the mean NSE of LE and H, and with fresh starts half of it plus a quarter each of their
    fresh-start NSE."""
    score = 0.5 * (scores["nse_hfls"] + scores["nse_hfss"])
    if "cold_nse_hfls" in scores:
        score = 0.5 * score + 0.25 * (scores["cold_nse_hfls"] + scores["cold_nse_hfss"])
    return score


def truncate(batch: Batch, steps: int) -> Batch:
    """``batch`` cut to its first ``steps`` steps (all of it if it is shorter)."""
    s = min(steps, batch.steps)
    return dataclasses.replace(
        batch,
        forcing={k: v[:s] for k, v in batch.forcing.items()},
        state={k: v[:s] for k, v in batch.state.items()},
        outputs={k: v[:s] for k, v in batch.outputs.items()},
        doy=batch.doy[:s],
        sod=batch.sod[:s],
    )
