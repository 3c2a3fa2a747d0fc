"""The flux LSTM's optional bias term (``FluxTrainConfig.bias_weight``): the loss of a window is
the per-step loss plus the weight times the squared window-mean error of LE and H per row
(scaled by their std), averaged over rows; weight 0 is the loss as it was; a negative weight is
refused, naming the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from emulators.compiled import flux_step
from emulators.nets import registry
from emulators.reference.soil import SoilConfig
from emulators.training.batch import Batch
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux import FluxTrainConfig, _errors, _targets, _Windows

SPEC = SourceSpec("synthetic", seed=3, cells=2, days=4, spinup_days=2)


def test_the_bias_term_is_the_squared_window_mean_error(tmp_path: Path) -> None:
    batch = Batch.of([simulate(SPEC, 3600, progress=False, cache=tmp_path)], torch.float32)
    torch.manual_seed(0)
    model = registry.build("flux_lstm", {"hidden": 8})
    base = FluxTrainConfig(train=(SPEC,), validation=(SPEC,), window=6, options={"hidden": 8})
    plain = _Windows(model, batch, batch, base)
    biased = _Windows(model, batch, batch, dataclasses.replace(base, bias_weight=0.5))
    r = torch.arange(batch.rows)
    t0 = torch.full((batch.rows,), 5)
    s = batch.state
    args = (s["w"][t0, r], s["ts"][t0, r], s["tsoil"][t0, r])
    h = torch.zeros(batch.rows, 8)
    with torch.no_grad():
        a = plain._run(batch, t0, *args, h, h, 6)
        b = biased._run(batch, t0, *args, h, h, 6)
        # the window-mean error, stepped independently
        wv, ts, tsoil = args
        hh, cc, total = h, h, torch.zeros(2, batch.rows)
        for j in range(6):
            inp = batch.row_inputs(t0 + j, wv, ts, tsoil)
            closed, _, hh, cc = flux_step.step(model, inp, hh, cc, SoilConfig(), batch.dt)
            total += _errors(closed, _targets(batch, t0 + j), plain.scale)
            wv, ts, tsoil = closed.w, closed.ts, closed.tsoil
    expected = 0.5 * ((total / 6) ** 2).sum(0).mean()
    assert float(expected) > 0
    torch.testing.assert_close(b - a, expected, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="bias_weight must be >= 0"):
        FluxTrainConfig(bias_weight=-1.0)
