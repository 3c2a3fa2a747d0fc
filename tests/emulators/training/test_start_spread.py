"""Fresh starts from a spread of initial states (``start_spread.StartSpread``,
``FluxTrainConfig.cold_initial_spread``): the draws stay in their ranges, shift the skin and the
whole soil column together, depend on the seed and start only; the spread of (0, 0) is the
backends' state and names the cache files as before; bad half-widths and a spread of a spun-up
spec are refused naming the field; the training's fresh windows start from the drawn states."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators.protocol import LandState
from emulators.recipes.base import recorded_config
from emulators.reference.fingerprint import fingerprint
from emulators.training import flux_cold
from emulators.training.data import NO_SPREAD, SourceSpec, cache_name, simulate
from emulators.training.flux import FluxTrainConfig
from emulators.training.start_spread import StartSpread

FRESH = SourceSpec("synthetic", seed=5, cells=3, days=2, spinup_days=0)


def initial(cap: float = 400.0, t0: float = 290.0) -> LandState:
    shape = (1, 50, 8)
    return LandState(
        {
            "w": torch.full(shape, 0.75 * cap, dtype=torch.float64),
            "ts": torch.full(shape, t0, dtype=torch.float64),
            "tsoil": torch.full((*shape, 3), t0, dtype=torch.float64),
            "cleaf": torch.ones(shape, dtype=torch.float64),
        }
    )


def test_draws_stay_in_range_and_shift_skin_and_soil_together() -> None:
    state = initial()
    out = StartSpread(0.25, 10.0).apply(state, seed=3, offset_days=40)
    fraction = out.tensors["w"] / 400.0
    assert float(fraction.min()) >= 0.5 and float(fraction.max()) <= 1.0
    assert float(fraction.std()) > 0.1  # uniform over [0.5, 1]: 0.144
    shift = out.tensors["ts"] - 290.0
    assert float(shift.abs().max()) <= 10.0 and float(shift.std()) > 4.0
    torch.testing.assert_close(
        out.tensors["tsoil"] - 290.0, shift.unsqueeze(-1).expand(-1, -1, -1, 3)
    )
    assert torch.equal(out.tensors["cleaf"], state.tensors["cleaf"])
    assert torch.equal(state.tensors["w"], torch.full_like(state.tensors["w"], 300.0))  # untouched
    again = StartSpread(0.25, 10.0).apply(initial(), seed=3, offset_days=40)
    other = StartSpread(0.25, 10.0).apply(initial(), seed=3, offset_days=41)
    assert again.equal(out) and not other.equal(out)


def test_no_spread_is_the_backends_state_and_the_cache_name_of_before() -> None:
    state = initial()
    assert NO_SPREAD.apply(state, 0, 0) is state and not NO_SPREAD.active
    assert cache_name(FRESH, 3600) == f"{FRESH.label}-{FRESH.key()}-3600-ref{fingerprint()}.npz"
    spread = cache_name(FRESH, 3600, StartSpread(0.25, 10.0))
    assert spread == f"{FRESH.label}-{FRESH.key()}-spread0.25w10K-3600-ref{fingerprint()}.npz"


def test_bad_spreads_are_refused_naming_the_field(tmp_path: Path) -> None:
    for args, match in (
        ((0.3, 0.0), r"water: must be in \[0, 0.25\], got 0.3"),
        ((-0.1, 0.0), r"water: must be in \[0, 0.25\]"),
        ((0.0, 25.0), r"temperature: must be in \[0, 20.0\] K, got 25.0"),
    ):
        with pytest.raises(ValueError, match=match):
            StartSpread(*args)
        with pytest.raises(ValueError, match="cold_initial_spread: " + match):
            FluxTrainConfig(cold_initial_spread=args)
    with pytest.raises(ValueError, match=r"cold_initial_spread: must be \(water, temperature\)"):
        FluxTrainConfig(cold_initial_spread=(0.1,))  # type: ignore[arg-type]
    spun = dataclasses.replace(FRESH, spinup_days=2)
    with pytest.raises(ValueError, match=r"spread applies to fresh starts \(spinup_days=0\) only"):
        simulate(spun, 3600, progress=False, cache=tmp_path, spread=StartSpread(0.1, 0.0))
    assert list(tmp_path.iterdir()) == []


def test_the_training_fresh_windows_start_from_the_drawn_states(tmp_path: Path) -> None:
    base = FluxTrainConfig(
        train=(dataclasses.replace(FRESH, spinup_days=60, days=6),),
        cold_weight=1.0, cold_starts=1, cold_window=24,
    )  # fmt: skip
    spread = dataclasses.replace(base, cold_initial_spread=(0.25, 10.0))
    plain = flux_cold.cold_batch(base, tmp_path, progress=False)
    drawn = flux_cold.cold_batch(spread, tmp_path, progress=False)
    assert plain is not None and drawn is not None
    w0, w1 = plain.state["w"][0], drawn.state["w"][0]
    held = w0 > 0
    ratio = (w1[held] / w0[held]).numpy()
    assert np.all(ratio >= 2 / 3 - 1e-6) and np.all(ratio <= 4 / 3 + 1e-6) and ratio.std() > 0.05
    shift = (drawn.state["ts"][0] - plain.state["ts"][0]).numpy()
    assert np.abs(shift).max() <= 10.0 + 1e-4 and shift.std() > 2.0
    # the forcing and the spin-up-free start are the same; only the state differs
    assert torch.equal(plain.forcing["tas"], drawn.forcing["tas"])
    assert len(list(tmp_path.glob("*-spread0.25w10K-*.npz"))) == 1
    assert "cold_initial_spread" not in recorded_config(base)
    assert recorded_config(spread)["cold_initial_spread"] == (0.25, 10.0)
