"""Closed-loop fine-tuning of the Transformer flux emulator (``training.transformer_loop``):

* the prefilled window is exactly the one the served step carries after W − 1 steps on the
  reference's state (equivalence of two methods);
* one optimiser step's loss is the LSTM's closed-loop loss of the served step from that window,
  plus the fresh starts' from an empty one (an independent stepping);
* the weights returned are those of the best-scoring validation, the teacher-forced start
  included, and the history holds both stages;
* the config refuses bad values, naming the field;
* the shipped artifact is the recipe's two stages, with today's reference fingerprint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from emulators.compiled import flux_step
from emulators.manifest import Manifest
from emulators.nets import registry
from emulators.nets.flux import FluxTransformer, FluxTransformerStep
from emulators.recipes import ARTIFACTS, get
from emulators.recipes.base import recorded_config
from emulators.reference.fingerprint import fingerprint
from emulators.reference.soil import SoilConfig
from emulators.training import (
    flux,
    flux_cold,
    flux_validation,
    transformer,
    transformer_loop,
    widened,
)
from emulators.training.batch import Batch
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux_cold import init_path
from emulators.training.transformer import TransformerTrainConfig, train

SPEC = SourceSpec("synthetic", seed=3, cells=2, days=4, spinup_days=2)
VAL = SourceSpec("synthetic", seed=4, cells=1, days=3, spinup_days=2)
SMALL = {"window": 6, "d_model": 8, "heads": 2, "layers": 1, "ffn": 16}


def _net() -> FluxTransformer:
    torch.manual_seed(0)
    net = registry.build("flux_transformer", SMALL)
    assert isinstance(net, FluxTransformer)
    return net


def _batch(tmp_path: Path) -> Batch:
    return Batch.of([simulate(SPEC, 3600, progress=False, cache=tmp_path)], torch.float32)


def test_the_prefilled_window_is_what_the_served_step_carries(tmp_path: Path) -> None:
    batch, net, soil = _batch(tmp_path), _net(), SoilConfig()
    step = FluxTransformerStep(net).eval()
    r, s = torch.arange(batch.rows), batch.state
    t0 = torch.full((batch.rows,), 9)
    h, c = torch.zeros(batch.rows, step.hidden), torch.zeros(batch.rows, 1)
    with torch.no_grad():
        for j in range(net.window - 1, 0, -1):  # the reference's state at t0 − 5 … t0 − 1
            t = t0 - j
            inp = batch.row_inputs(t, s["w"][t, r], s["ts"][t, r], s["tsoil"][t, r])
            x, _ = flux_step.features(inp, soil)
            _, h, c = step(x, h, c)
        window = transformer_loop.prefill(net, batch, t0, soil)
    assert window.shape == (batch.rows, (net.window - 1) * int(net.inputs.mean.shape[0]))
    assert float(window.abs().max()) > 0
    assert torch.equal(window, h)


def test_a_step_s_loss_is_the_closed_loop_loss_from_the_window_and_from_empty(
    tmp_path: Path,
) -> None:
    batch, net, soil = _batch(tmp_path), _net(), SoilConfig()
    config = TransformerTrainConfig(
        train=(SPEC,), validation=(SPEC,), options=SMALL, closed_rows=3, closed_window=4,
        cold_weight=0.5, cold_rows=2, cold_window=3,
    )  # fmt: skip
    cold = _batch(tmp_path)  # any batch serves as the fresh starts here
    problem = transformer_loop._ClosedLoop(net, batch, batch, config, cold, None)
    gen = torch.Generator().manual_seed(config.seed + 2)  # the problem's own draws, replayed
    with torch.no_grad():
        got = problem.loss(0)
        sub = flux_cold.rows(batch, torch.randperm(batch.rows, generator=gen)[:3])
        t0 = torch.randint(net.window - 1, batch.steps - 4, (3,), generator=gen)
        fresh = flux_cold.rows(cold, torch.randperm(cold.rows, generator=gen)[:2])
        step, scale = FluxTransformerStep(net), problem.scale
        expected = torch.zeros(())
        for part, start, h, steps in (
            (sub, t0, transformer_loop.prefill(net, sub, t0, soil), 4),
            (fresh, torch.zeros(2, dtype=torch.long), torch.zeros(2, step.hidden), 3),
        ):
            r, s = torch.arange(part.rows), part.state
            wv, ts, tsoil = s["w"][start, r], s["ts"][start, r], s["tsoil"][start, r]
            c, total = torch.zeros(part.rows, 1), torch.zeros(())
            for j in range(steps):
                inp = part.row_inputs(start + j, wv, ts, tsoil)
                closed, y, h, c = flux_step.step(step, inp, h, c, soil, part.dt)
                total = total + flux._loss(closed, y, flux._targets(part, start + j), scale)
                wv, ts, tsoil = closed.w, closed.ts, closed.tsoil
            expected = expected + (1.0 if steps == 4 else 0.5) * total / steps
    assert float(expected) > 0
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("lr", "kept"),
    [(3e-2, "the best closed-loop validation"), (3.0, "the teacher-forced weights")],
)
def test_fine_tuning_keeps_the_best_validated_weights(tmp_path: Path, lr: float, kept: str) -> None:
    """A moderate learning rate improves on the teacher-forced start; a wild one (Adam steps of
    3 per weight) never does, and the start's weights are kept."""
    torch.set_num_threads(1)
    config = TransformerTrainConfig(
        train=(SPEC,), validation=(VAL,), options=SMALL, iterations=4, batch=8,
        validate_every=2, validation_days=2, closed_iterations=4, closed_rows=2,
        closed_window=6, closed_validate_every=2, closed_lr=lr, closed_lr_final=lr / 3,
    )  # fmt: skip
    result = train(config, cache=tmp_path, progress=False)
    teacher = [r for r in result.history if "closed_iteration" not in r]
    closed = [r for r in result.history if "closed_iteration" in r]
    assert len(teacher) == 2 and [r["closed_iteration"] for r in closed] == [0, 2, 4]
    assert f"kept {kept}" in result.stopped
    assert (result.best_epoch == 0) == (lr > 1)
    val = flux_validation.truncate(
        Batch.of([simulate(VAL, 3600, progress=False, cache=tmp_path)]), 2 * 24
    )
    now = flux_validation.validate(FluxTransformerStep(result.model), val, SoilConfig(), c_width=1)
    best = max(closed, key=flux_validation.validation_score)
    assert flux_validation.validation_score(now) == pytest.approx(
        flux_validation.validation_score(best), abs=1e-12
    )


def test_the_config_refuses_bad_closed_loop_values() -> None:
    base = TransformerTrainConfig()
    assert base.closed_iterations == 0 and base.timestep == 3600
    for field, value, match in (
        ("closed_iterations", -1, "closed_iterations must be >= 0"),
        ("closed_rows", 0, "closed_rows must be >= 1"),
        ("closed_window", 0, "closed_window must be >= 1"),
        ("cold_window", 0, "cold_window must be >= 1"),
        ("cold_weight", -0.1, "cold_weight must be >= 0"),
        ("closed_lr_final", 1.0, "closed_lr_final"),
    ):
        with pytest.raises(ValueError, match=match):
            changes: dict[str, Any] = {field: value}
            dataclasses.replace(base, **changes)


def test_a_window_longer_than_the_record_is_refused(tmp_path: Path) -> None:
    config = TransformerTrainConfig(options=SMALL, closed_window=200)
    batch = _batch(tmp_path)
    with pytest.raises(ValueError, match="closed_window: 200 steps"):
        transformer_loop._ClosedLoop(_net(), batch, batch, config, None, None)


def test_the_shipped_transformer_is_the_recipe_s_two_stages() -> None:
    """The committed artifact is what ``landcoupler emulators train flux-transformer`` trains:
    its training config is the recipe's (the LSTM's weather; the closed-loop stage continuing
    the pinned morning network, which ``first_config`` trained in both stages), its history
    the 600 closed-loop iterations, and its manifest records today's reference fingerprint."""
    config = get("flux-transformer").config()
    assert config.train == widened.hourly_config().train and config.closed_iterations == 600
    assert config.init == transformer.INIT and transformer.first_config().closed_iterations == 300
    assert init_path(config.init).exists()
    manifest = Manifest.load(ARTIFACTS / "flux_transformer")
    assert manifest.training["config"] == json.loads(json.dumps(recorded_config(config)))
    closed = [
        r["closed_iteration"] for r in manifest.training["history"] if "closed_iteration" in r
    ]
    assert closed == list(range(0, 601, 50))
    assert manifest.training["reference_fingerprint"] == fingerprint()


def test_init_needs_the_closed_loop_stage_and_its_file() -> None:
    with pytest.raises(ValueError, match="closed_iterations"):
        dataclasses.replace(transformer.first_config(), init=transformer.INIT, closed_iterations=0)
    bad = dataclasses.replace(transformer.shipped_config(), init_sha256="0" * 16)
    with pytest.raises(ValueError, match="SHA-256"):
        transformer._initial(bad)
