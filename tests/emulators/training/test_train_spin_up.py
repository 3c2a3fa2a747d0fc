"""Spin-up in the flux LSTM's training windows (``FluxTrainConfig.train_spin_up``): a window's
rows that start from a zero recurrent state are spun up first, as the served backend spins a
fresh or resumed row up (``flux_step.spin_up_state``), so the training sees the start the
backend serves; rows carrying a state are untouched; 0 is the loss as it was; validation from
step 0 spins up the same way; a bad value is refused naming the field."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from emulators.compiled import flux_step
from emulators.metrics import nse
from emulators.nets import registry
from emulators.reference.soil import SoilConfig
from emulators.training.batch import Batch, rollout
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux import FluxTrainConfig, _Windows
from emulators.training.flux_validation import validate
from emulators.training.widened import daily_config, daily_spun_config

SPEC = SourceSpec("synthetic", seed=3, cells=2, days=4, spinup_days=2)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    cache = tmp_path_factory.mktemp("data")
    return Batch.of([simulate(SPEC, 3600, progress=False, cache=cache)], torch.float32)


def _windows(batch: Batch, spin_up: int) -> _Windows:
    torch.manual_seed(0)
    model = registry.build("flux_lstm", {"hidden": 8})
    cfg = FluxTrainConfig(train=(SPEC,), validation=(SPEC,), window=6, options={"hidden": 8},
                          train_spin_up=spin_up)  # fmt: skip
    return _Windows(model, batch, batch, cfg)


def _start(batch: Batch) -> tuple[torch.Tensor, ...]:
    r, t0 = torch.arange(batch.rows), torch.full((batch.rows,), 5)
    s = batch.state
    return t0, s["w"][t0, r], s["ts"][t0, r], s["tsoil"][t0, r]


def test_zero_state_rows_are_spun_up_with_the_first_step_s_features(batch: Batch) -> None:
    spun = _windows(batch, 2)
    t0, w, ts, tsoil = _start(batch)
    zero = torch.zeros(batch.rows, 8)
    with torch.no_grad():
        got = spun._run(batch, t0, w, ts, tsoil, zero, zero, 6)
        # independently: two calls of the network on the first step's features from zero,
        # then the window from that state with no spin-up
        x, _ = flux_step.features(batch.row_inputs(t0, w, ts, tsoil), SoilConfig(), torch.float32)
        h, c = zero, zero
        for _ in range(2):
            _, h, c = spun.model(x, h, c)
        plain = _windows(batch, 0)
        want = plain._run(batch, t0, w, ts, tsoil, h, c, 6)
        unspun = plain._run(batch, t0, w, ts, tsoil, zero, zero, 6)
    assert torch.equal(got, want)
    assert not torch.equal(got, unspun)


def test_rows_carrying_a_state_are_untouched(batch: Batch) -> None:
    t0, w, ts, tsoil = _start(batch)
    g = torch.Generator().manual_seed(1)
    h, c = torch.randn(batch.rows, 8, generator=g), torch.randn(batch.rows, 8, generator=g)
    with torch.no_grad():
        spun = _windows(batch, 3)._run(batch, t0, w, ts, tsoil, h, c, 6)
        plain = _windows(batch, 0)._run(batch, t0, w, ts, tsoil, h, c, 6)
    assert torch.equal(spun, plain)


def test_validation_from_step_0_spins_up_as_the_backend_does(batch: Batch) -> None:
    model = _windows(batch, 0).model
    with torch.no_grad():
        scores = validate(model, batch, SoilConfig(), spin_up=1)
        out = rollout(model, batch, 8, SoilConfig(), fields=("hfls",), spin_up=1)
        assert scores != validate(model, batch, SoilConfig())
    assert scores["nse_hfls"] == float(nse(out["hfls"].double().numpy(),
                                           batch.outputs["hfls"].double().numpy()))  # fmt: skip


def test_a_bad_value_is_refused_by_name() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="train_spin_up must be an integer >= 0"):
            FluxTrainConfig(train_spin_up=bad)  # type: ignore[arg-type]


def test_the_continuation_config_is_the_shipped_daily_one_spun_up() -> None:
    spun, base = daily_spun_config(), daily_config()
    assert spun.train_spin_up == 1 and base.train_spin_up == 0
    assert spun.init.endswith("flux_lstm_daily-2026-12-07.ts") and spun.init_sha256
    assert dataclasses.replace(spun, train_spin_up=0, epochs=base.epochs, lr=base.lr,
                               lr_final=base.lr_final, init="", init_sha256="") == base  # fmt: skip


def test_the_first_daily_training_is_one_override_away() -> None:
    """docs/emulators.md quotes this call as the way to rerun the first widened daily training."""
    from emulators.recipes import get

    first = get("flux-lstm-daily", train_spin_up=0, init="", init_sha256="", epochs=24,
                lr=3e-3, lr_final=2e-4).config()  # fmt: skip
    assert first == daily_config()
