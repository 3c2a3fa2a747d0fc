"""The daily-step LAI emulator (``lai-daily``): its configuration and data at 86 400 s land steps,
an export whose manifest records the land step, and the emulator backend picking the LAI artifact
by the session's timestep (3600 s → ``lai``, 86 400 s → ``lai-daily``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig, TimestepError
from emulators.compiled.lai_step import LAI_FEATURES, lai_timestep
from emulators.manifest import Manifest
from emulators.nets import registry
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.recipes import ARTIFACTS, get
from emulators.training import evaluate as ev
from emulators.training import flux
from emulators.training import lai as lai_training
from emulators.training.data import SourceSpec, simulate
from tests.contracts.backend_contract import (
    contract_daily_forcing,
    contract_forcing,
    contract_static,
)

DAY = 86_400
COLUMN = {f.name: i for i, f in enumerate(LAI_FEATURES)}


@pytest.fixture(scope="module")
def backend() -> EmulatorBackend:
    return EmulatorBackend(EmulatorConfig(device="cpu"))


def test_daily_config_uses_the_daily_flux_sources_and_is_disjoint_from_the_held_out() -> None:
    cfg = lai_training.daily_config()
    assert cfg.timestep == DAY and cfg.artifact == "lai_daily" and cfg.architecture == "lai"
    assert cfg.train == (*flux.DAILY_TRAIN_SOURCES, *lai_training.DAILY_EXTRA_SOURCES)
    assert cfg.options == {"hidden": 128, "members": 3}
    assert cfg.validation == flux.DAILY_VALIDATION_SOURCES
    held = ev.lai_held_out(DAY)
    assert {s.source for s in held} >= {"synthetic", "tmy3-greensboro", "pcse-wageningen"}
    assert "bsrn-payerne" not in {s.source for s in held}
    assert not {s.key() for s in held} & {s.key() for s in (*cfg.train, *cfg.validation)}
    assert ev.lai_held_out(3600) == ev.LAI_HELD_OUT
    assert lai_training.LAITrainConfig().timestep == 3600
    assert get("lai-daily").artifact == "lai_daily" and get("lai-daily").architecture == "lai"
    assert get("lai-daily").config() == cfg
    with pytest.raises(ValueError, match="timestep must divide a day"):
        dataclasses.replace(cfg, timestep=7000)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        dataclasses.replace(cfg, epochs=0)


def test_daily_samples_at_daily_steps_have_every_step_a_day() -> None:
    """At 86 400 s steps a day is one step: one sample per step but the last, the day's maximum
    air temperature is its mean (as the backend accumulates it), LAI is the reference's."""
    traj = simulate(
        SourceSpec("synthetic", seed=3, cells=2, days=20, spinup_days=5), DAY, progress=False
    )
    data = lai_training.daily([traj])
    assert data.days == traj.steps - 1 == 19
    assert data.x.shape == (19, traj.rows, len(LAI_FEATURES)) and data.lai.shape == (20, traj.rows)
    assert torch.equal(data.x[..., COLUMN["tas_max"]], data.x[..., COLUMN["tas_mean"]])
    assert torch.equal(data.x[..., COLUMN["lai_prev"]], data.lai[:-1])
    assert bool((data.lai[:, data.vegetated == 0] == 0).all())
    assert float(data.lai[:, data.vegetated > 0].max()) > 0


def test_export_records_the_land_timestep(tmp_path: Path) -> None:
    model = registry.build("lai", {"hidden": 8})
    directory = tmp_path / "lai_daily"
    cfg = lai_training.daily_config()
    training = {"command": "landcoupler emulators train lai-daily", "data_hash": "0" * 16,
                "config": dataclasses.asdict(cfg)}  # fmt: skip
    m = get("lai-daily").export_model(model, directory, training, compile_aoti=False)
    assert m.name == "lai-daily" and m.timestep_seconds == DAY and "86400 s land steps" in m.notes
    assert (directory / "lai_daily.ts").exists() and m.export_checks["onnx"] <= 1e-5
    assert lai_timestep(Manifest.load(directory)) == DAY
    assert lai_timestep(Manifest.load(ARTIFACTS / "lai")) == 3600  # trained before the option


def _steps(
    backend: EmulatorBackend, static: LandStatic, dt: float, steps: int, start: str
) -> LandState:
    clock = StepClock(0, np.datetime64(start), dt)
    state = backend.initial_state(static, clock)
    for _ in range(steps):
        forcing = (contract_daily_forcing if dt == DAY else contract_forcing)(static, clock, 4)
        state, _ = backend.step(state, static, forcing, clock)
        clock = clock.advance()
    return state


def test_the_backend_picks_lai_daily_for_daily_and_lai_for_hourly_sessions(
    backend: EmulatorBackend,
) -> None:
    daily = Manifest.load(ARTIFACTS / "lai_daily")
    assert daily.name == "lai-daily" and lai_timestep(daily) == DAY
    assert backend.lai_timesteps == (3600.0, float(DAY))
    lai_daily = backend.lai_for(DAY)
    assert lai_daily is not None and lai_daily.manifest.hash() == daily.hash()
    lai_hourly = backend.lai_for(3600)
    assert lai_hourly is not None and lai_hourly.manifest.name == "lai"
    assert daily.hash()[:16] in backend.manifest_hash.split(",")
    # the leaf carbon a session gets is the one of the backend with only that artifact
    static = contract_static(8, 1, seed=21)
    only_daily = EmulatorBackend(EmulatorConfig(device="cpu", lai=("lai_daily",)))
    only_hourly = EmulatorBackend(EmulatorConfig(device="cpu", lai="lai"))
    a = _steps(backend, static, DAY, 10, "2001-04-01")
    assert torch.equal(
        a.tensors["cleaf"], _steps(only_daily, static, DAY, 10, "2001-04-01").tensors["cleaf"]
    )
    b = _steps(backend, static, 3600.0, 26, "2001-04-01")
    assert torch.equal(
        b.tensors["cleaf"], _steps(only_hourly, static, 3600.0, 26, "2001-04-01").tensors["cleaf"]
    )
    # and the two artifacts do differ on the same day
    x = torch.as_tensor([c.mean for c in daily.inputs[0].channels]).float()[None]
    assert not torch.equal(lai_daily.net(x), lai_hourly.net(x))


def test_a_session_without_an_lai_emulator_for_its_step_is_refused(
    backend: EmulatorBackend,
) -> None:
    """Only the hourly-trained LAI artifact configured: a daily session is refused at open (field
    ``dt``, naming what is available) — unless the reference phenology needs no LAI emulator."""
    static = contract_static(3, 1, seed=0)
    hourly_only = EmulatorBackend(EmulatorConfig(device="cpu", lai=("lai",)))
    clock = StepClock(0, np.datetime64("2001-07-01"), float(DAY))
    want = r"dt: .* LAI emulators trained for 3600 s \(lai\); got 86400 s"
    with pytest.raises(TimestepError, match=want) as err:
        hourly_only.initial_state(static, clock)
    assert (err.value.field, err.value.rule) == ("dt", "trained_timestep")
    reference = EmulatorBackend(EmulatorConfig(device="cpu", lai=(), phenology="reference"))
    assert reference.lai_for(DAY) is None and reference.lai_manifest is None
    reference.initial_state(static, clock)
    with pytest.raises(ValueError, match="lai: at least one"):
        EmulatorConfig(lai=())
