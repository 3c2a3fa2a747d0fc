"""Flux networks that take the forcing's measurement heights (``features.HEIGHT_FEATURES``,
``training.heights``): the features, reference runs at a spec's heights, widening a trained
network's inputs, and a tiny height-aware network trained, exported and served at the heights it
was trained at (refusing others by field and rule)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators.compiled import flux_step
from emulators.compiled.artifacts import HeightsError
from emulators.compiled.emulator import EmulatorConfig, TorchScriptBackend
from emulators.compiled.features import (
    HEIGHT_FEATURES,
    N_FLUX_FEATURES,
    flux_features,
    flux_input_features,
)
from emulators.nets.flux import FluxLSTMConfig
from emulators.protocol import StepClock
from emulators.recipes import get
from emulators.training import flux_cold
from emulators.training.data import SourceSpec, Trajectory, cache_name, simulate
from tests.contracts.backend_contract import contract_forcing, contract_static
from tests.emulators.compiled.test_row_statics import _feature_inputs

ARTIFACTS = Path(__file__).resolve().parents[3] / "emulators" / "artifacts"


def _syn(seed: int, days: int, spinup: int, heights: tuple[float, ...] = ()) -> SourceSpec:
    return SourceSpec(
        "synthetic", seed=seed, cells=1, days=days, spinup_days=spinup, heights=heights
    )


def test_height_features_are_the_logs_appended_in_both_paths() -> None:
    kw = _feature_inputs(10, seed=0)
    heights = torch.tensor([[30.0, 2.0]], dtype=torch.float64).expand(10, 2)
    base = flux_features(**kw)
    x = flux_features(**kw, heights=heights)
    assert x.shape == (10, N_FLUX_FEATURES + 2) and torch.equal(x[:, :N_FLUX_FEATURES], base)
    assert torch.allclose(x[:, -2], torch.full((10,), math.log(30.0), dtype=torch.float64))
    assert torch.allclose(x[:, -1], torch.full((10,), math.log(2.0), dtype=torch.float64))
    # the serving path writes straight into float32: every bit the cast of the float64 path
    assert torch.equal(flux_features(**kw, heights=heights, dtype=torch.float32), x.float())
    assert flux_input_features(N_FLUX_FEATURES + 2)[-2:] == HEIGHT_FEATURES
    with pytest.raises(ValueError, match="n_features: a flux network takes 42 features"):
        flux_input_features(43)


def test_a_spec_at_other_heights_is_the_reference_there(tmp_path: Path) -> None:
    """The reference runs at a spec's heights (not the source's), trajectories record them
    (through the cache too), default specs keep their cache names and labels."""
    plain = _syn(5, 3, 1)
    at_2m = dataclasses.replace(plain, heights=(2.0, 2.0))
    assert plain.key() == SourceSpec("synthetic", seed=5, cells=1, days=3, spinup_days=1).key()
    assert at_2m.key() != plain.key() and at_2m.label == "synthetic-seed5-at2m2m"
    a = simulate(plain, 3600, progress=False, cache=tmp_path)
    b = simulate(at_2m, 3600, progress=False, cache=tmp_path)
    assert (a.heights, b.heights) == ((10.0, 2.0), (2.0, 2.0))
    assert np.abs(a.outputs["hfss"] - b.outputs["hfss"]).max() > 1.0  # W m-2
    assert simulate(at_2m, 3600, progress=False, cache=tmp_path).heights == (2.0, 2.0)
    # a cache written before trajectories recorded heights: the source's own
    path = tmp_path / cache_name(plain, 3600)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "heights"}
    np.savez(path, **arrays)
    assert Trajectory.load(path).heights is None
    assert simulate(plain, 3600, progress=False, cache=tmp_path).heights == (10.0, 2.0)
    for bad in ((0.0, 2.0), (10.0,), (10.0, 500.0)):
        with pytest.raises(ValueError, match="heights must be"):
            dataclasses.replace(plain, heights=bad)


def test_widening_a_network_starts_it_as_it_was_at_every_height(tmp_path: Path) -> None:
    """``load_init`` into a network with the height inputs: zero weights for them, so its
    outputs equal the init's whatever the heights."""
    old = FluxLSTMConfig(hidden=8, head_hidden=4).build().eval()
    with torch.no_grad():
        old.inputs.set(torch.rand(N_FLUX_FEATURES) + 1.0, torch.rand(N_FLUX_FEATURES) + 0.5)
    path = tmp_path / "old.ts"
    torch.jit.script(old).save(str(path))
    new = FluxLSTMConfig(hidden=8, head_hidden=4, n_features=N_FLUX_FEATURES + 2).build().eval()
    flux_cold.load_init(new, str(path), "")
    assert flux_step.takes_heights(new) and not flux_step.takes_heights(old)
    x = torch.rand(5, N_FLUX_FEATURES) * 3.0
    h, c = torch.zeros(5, 8), torch.zeros(5, 8)
    with torch.no_grad():
        want = old(x, h, c)[0]
        for heights in ((10.0, 2.0), (2.0, 1.5), (60.0, 60.0)):
            logs = torch.log(torch.tensor([heights])).expand(5, 2)
            assert torch.equal(new(torch.cat([x, logs], 1), h, c)[0], want)


@pytest.fixture(scope="module")
def height_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny height-aware ``flux-lstm`` trained at 10 m / 2 m, 2 m / 2 m and 40 m / 30 m (with
    fresh-start windows of random rows, ``flux_cold``) and exported (TorchScript, ONNX), beside
    the shipped LAI and daily flux artifacts."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("heights")
    options = {
        "train": (_syn(11, 8, 2), _syn(12, 8, 2, (2.0, 2.0)), _syn(13, 8, 2, (40.0, 30.0))),
        "validation": (_syn(21, 4, 2),), "epochs": 1, "window": 12, "windows_per_epoch": 2,
        "patience": 1, "validation_days": 2, "cold_weight": 1.0, "cold_starts": 2,
        "cold_window": 6, "cold_rows": 8, "reset_fraction": 0.1,
        "options": {"hidden": 8, "n_features": N_FLUX_FEATURES + 2}, "init": "", "init_sha256": "",
    }  # fmt: skip
    get("flux-lstm", **options).train(
        artifacts=out, work=out / "work", progress=False, compile_aoti=False, evaluate=False
    )
    for name in ("lai", "lai_daily", "flux_lstm_daily"):
        (out / name).symlink_to(ARTIFACTS / name)
    return out


def test_a_height_aware_network_records_and_serves_its_heights(height_artifacts: Path) -> None:
    backend = TorchScriptBackend(EmulatorConfig(artifacts=height_artifacts))
    hourly = backend.flux_for(3600.0)
    assert hourly.heights == {"wind": [2.0, 40.0], "temperature": [2.0, 30.0]}
    names = [c.name for c in hourly.manifest.inputs[0].channels]
    assert names[-2:] == ["log_height_wind", "log_height_temperature"]
    assert hourly.manifest.inputs[0].shape == ["rows", N_FLUX_FEATURES + 2]
    static = contract_static(6, 1, 0)
    clock = StepClock(0, np.datetime64("2001-06-30T18:00:00"), 3600.0)
    hfss = {}
    for heights in ((10.0, 2.0), (2.0, 2.0), (25.0, 15.0)):
        served = backend.at_heights(*heights)
        assert served.heights == heights and served.flux_for(3600.0) is hourly
        state, c = served.initial_state(static, clock), clock
        for _ in range(3):
            state, out = served.step(state, static, contract_forcing(static, c, 1), c)
            c = c.advance()
        hfss[heights] = out["hfss"]
    assert backend.at_heights(10.0, 2.0) is backend
    assert not torch.equal(hfss[(10.0, 2.0)], hfss[(2.0, 2.0)])
    assert not torch.equal(hfss[(2.0, 2.0)], hfss[(25.0, 15.0)])
    # outside the trained ranges: refused by field and rule
    for heights, field in (((1.0, 2.0), "height_wind"), ((10.0, 35.0), "height_temperature")):
        with pytest.raises(HeightsError, match=f"{field}: flux-lstm was trained at") as err:
            backend.at_heights(*heights)
        assert (err.value.field, err.value.rule) == (field, "backend_heights")
    # the daily network has no height input: a daily session at other heights is refused
    daily = StepClock(0, np.datetime64("2001-06-30"), 86_400.0)
    with pytest.raises(HeightsError, match="flux-lstm-daily\\) have no height input") as err:
        backend.at_heights(2.0, 2.0).initial_state(static, daily)
    assert (err.value.field, err.value.rule) == ("height_wind", "backend_heights")


def test_the_height_candidates_train_on_no_held_out_weather() -> None:
    """The height recipes' synthetic seeds (and every other source) are not held out."""
    from emulators.training import evaluate as ev
    from emulators.training.heights import DAILY_HEIGHTS, HEIGHTS

    for name, options, dt in (
        ("flux-lstm", HEIGHTS, 3600),
        ("flux-lstm-daily", DAILY_HEIGHTS, 86_400),
    ):
        config = get(name, **options).config()
        held = {s.seed for s in ev.flux_held_out(dt) if s.source == "synthetic"}
        assert held and held.isdisjoint({s.seed for s in config.train if s.source == "synthetic"})
        assert {s.key() for s in ev.flux_held_out(dt)}.isdisjoint(s.key() for s in config.train)
        heights = {s.heights for s in config.train if s.heights}
        assert heights == {(2.0, 2.0), (30.0, 30.0), (60.0, 60.0), (40.0, 10.0)}
