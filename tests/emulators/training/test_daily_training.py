"""The flux-emulator recipe at daily steps: configuration, honest hour features, a daily
trajectory from the reference model, and an export whose manifest records the timestep."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from emulators.compiled import flux_step
from emulators.compiled.features import FLUX_FEATURES, step_local_hour
from emulators.manifest import Manifest
from emulators.nets import registry
from emulators.nets.flux import FluxLSTM
from emulators.recipes import ARTIFACTS, get
from emulators.recipes.base import recorded_config
from emulators.reference.fingerprint import fingerprint
from emulators.reference.soil import SoilConfig
from emulators.training import evaluate as ev
from emulators.training.batch import Batch
from emulators.training.data import SourceSpec, simulate
from emulators.training.flux import FluxTrainConfig
from emulators.training.widened import daily_config, daily_spun_config

HOUR_COLUMNS = [i for i, f in enumerate(FLUX_FEATURES) if f.name in ("hour_sin", "hour_cos")]


def test_daily_config_trains_at_86400_s_on_sources_disjoint_from_the_held_out() -> None:
    cfg = daily_config()
    assert cfg.timestep == 86_400 and cfg.artifact == "flux_lstm_daily"
    held = {s.key() for s in ev.flux_held_out(cfg.timestep)}
    assert not held & {s.key() for s in (*cfg.train, *cfg.validation)}
    assert {s.seed for s in cfg.train if s.source == "synthetic"}.isdisjoint(
        {s.seed for s in ev.flux_held_out(86_400) if s.source == "synthetic"}
    )
    assert ev.flux_held_out(3600) == ev.FLUX_HELD_OUT
    assert get("flux-lstm-daily").artifact == "flux_lstm_daily"
    # the recipe: this config's network continued with spin-up in its windows (2026-12-07)
    assert get("flux-lstm-daily").config() == daily_spun_config()
    with pytest.raises(ValueError, match="timestep must divide a day"):
        dataclasses.replace(cfg, timestep=7000)


def test_the_shipped_daily_emulator_is_the_recipe_s() -> None:
    """The committed ``flux-lstm-daily`` is what ``landcoupler emulators train flux-lstm-daily``
    trains (the widened weather, H = 48, fresh-start windows, continued from the pinned network
    of that recipe with spin-up in its windows), against today's reference."""
    config = get("flux-lstm-daily").config()
    assert config.options == {"hidden": 48} and config.cold_weight == 1.0
    assert config.train_spin_up == 1 and config.init.endswith("flux_lstm_daily-2026-12-07.ts")
    assert {s.seed for s in config.train if s.widened} == {47, 48}
    manifest = Manifest.load(ARTIFACTS / "flux_lstm_daily")
    assert manifest.training["config"] == json.loads(json.dumps(recorded_config(config)))
    assert manifest.recurrent_state["hidden"] == 48
    assert manifest.training["reference_fingerprint"] == fingerprint()


def test_hour_features_are_constant_zero_at_daily_steps() -> None:
    lon = torch.tensor([-120.0, 0.0, 150.0], dtype=torch.float64)
    assert step_local_hour(0.0, lon, 86_400.0) is None
    hourly = step_local_hour(3600.0, lon, 3600.0)
    assert hourly is not None and torch.allclose(hourly, torch.tensor([17.0, 1.0, 11.0]).double())
    traj = simulate(
        SourceSpec("synthetic", seed=3, cells=2, days=20, spinup_days=5), 86_400, progress=False
    )
    assert traj.dt == 86_400.0 and traj.steps == 20
    batch = Batch.of([traj], torch.float64)
    t = torch.full((batch.rows,), 7, dtype=torch.long)
    inp = batch.row_inputs(t, batch.state["w"][7], batch.state["ts"][7], batch.state["tsoil"][7])
    assert inp.local_hour is None
    x, _ = flux_step.features(inp, SoilConfig())
    assert x.shape == (batch.rows, len(FLUX_FEATURES))
    assert float(x[:, HOUR_COLUMNS].abs().max()) == 0.0


def test_export_records_the_training_timestep(tmp_path: Path) -> None:
    model = registry.build("flux_lstm", {"hidden": 4, "head_hidden": 3}).eval()
    assert isinstance(model, FluxLSTM)
    directory = tmp_path / "flux_lstm_daily"
    training = {"command": "landcoupler emulators train flux-lstm-daily", "data_hash": "0" * 16}
    get("flux-lstm-daily").export_model(model, directory, training, compile_aoti=False)
    m = Manifest.load(directory)
    assert m.timestep_seconds == 86_400.0 and m.name == "flux-lstm-daily"
    assert "constant zeros" in m.notes
    assert (directory / "flux_lstm_daily.ts").exists() and m.export_checks["onnx"] <= 1e-5
    assert FluxTrainConfig().timestep == 3600
