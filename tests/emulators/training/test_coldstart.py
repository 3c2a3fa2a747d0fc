"""Skill from step 0 (issue 14, item 1), short versions: fresh-start reference trajectories begin
at the backends' initial state; the held-out evaluation reports fresh and resumed starts, first
48 h vs the rest, in the manifest records and the CLI table; a fresh session week of the
emulator backend beside the reference; the cold-start training options are validated."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators import landstep
from emulators import parameters as P
from emulators.protocol import LandStatic
from emulators.recipes import get
from emulators.reference.soil import SoilConfig
from emulators.training import coldstart
from emulators.training.batch import Batch
from emulators.training.data import SourceSpec, simulate
from emulators.training.evaluate import evaluate_flux
from emulators.training.flux import FluxTrainConfig, coldstart_config
from emulators.training.flux_cold import (
    COLDSTART_OPTIONS,
    DAILY_COLDSTART_OPTIONS,
    cold_specs,
    init_path,
)
from emulators.training.widened import HOURLY_INIT

ARTIFACTS = Path(__file__).parents[3] / "emulators" / "artifacts"


def test_a_fresh_trajectory_starts_at_the_backends_initial_state() -> None:
    spec = SourceSpec("synthetic", seed=5, cells=2, days=6, spinup_days=0, offset_days=2)
    traj = simulate(spec, 3600, progress=False)
    assert spec.cold and spec.label == "synthetic-seed5-cold2" and traj.steps == 4 * 24
    assert str(traj.time[0]) == "2001-01-03T00:00:00"
    lat = torch.as_tensor(traj.lat[:: P.N_CLASSES])
    static = LandStatic(
        lat,
        lat * 0,
        torch.full((2, P.N_CLASSES), 1.0 / P.N_CLASSES),
        P.default_table().expand(1, 2, 8, 12),
    )
    init = landstep.initial_state(static, landstep.class_constants(SoilConfig())).tensors
    for name in ("w", "ts", "cleaf"):
        assert np.allclose(traj.state[name][0], init[name][0].reshape(-1).numpy(), rtol=1e-6)
    # the spun-up trajectory of the same source starts elsewhere
    spun = SourceSpec("synthetic", seed=5, cells=2, days=6, spinup_days=2)
    assert not np.allclose(simulate(spun, 3600, progress=False).state["ts"][0], traj.state["ts"][0])


def test_cache_keys_of_earlier_specs_are_unchanged() -> None:
    """The hash of a spec without the new fields is the one the code before them computed."""
    assert SourceSpec("synthetic", seed=11, cells=48).key() == "e3297b8e94303e42"
    assert SourceSpec("synthetic", seed=11, cells=48, record_days=3).key() != "e3297b8e94303e42"


def test_start_days_spread_over_the_record() -> None:
    assert coldstart.start_days(365) == [0, 90, 179, 268]
    assert coldstart.start_days(10) == [0, 1, 2]
    with pytest.raises(ValueError, match="shorter than a 7-day start"):
        coldstart.start_days(5)


def test_evaluation_reports_first_48_h_of_fresh_and_resumed_starts(tmp_path: Path) -> None:
    directory = tmp_path / "flux_lstm"
    shutil.copytree(ARTIFACTS / "flux_lstm", directory, ignore=shutil.ignore_patterns("init"))
    shipped = (directory / "manifest.json").read_bytes()
    spec = SourceSpec("synthetic", seed=5, cells=1, days=10, spinup_days=2)
    manifest = evaluate_flux(
        directory, tmp_path / "report", cache=None, progress=False, specs=(spec,), save=False
    )
    rows = {
        (r["source"], r.get("start"), r.get("window"), r["variable"]): r for r in manifest.skill
    }
    label = spec.label
    for start in ("fresh", "resumed"):
        first = rows[(label, start, "first 48 h", "hfls")]
        rest = rows[(label, start, "after 48 h", "hfls")]
        whole = rows[(label, start, "whole", "hfls")]
        # 3 starts x 8 tiles; 48 h of a 7-day window, then 120 h
        assert (first["n"], rest["n"], whole["n"]) == (3 * 8 * 48, 3 * 8 * 120, 3 * 8 * 168)
        assert np.isfinite([first["nse"], first["kge"], rest["nse"]]).all()
        assert ("all held-out", start, "first 48 h", "hfss") in rows
    assert rows[(label, None, None, "hfls")]["n"] == 8 * 240  # the continuous record
    table = coldstart.summary(manifest.skill)
    assert "fresh first 48 h" in table and f"| {label} | hfls |" in table
    assert "fresh start, first 48 h" in (tmp_path / "report" / "skill.md").read_text()
    assert (directory / "manifest.json").read_bytes() == shipped  # save=False


def test_fresh_rollout_of_the_evaluation_is_a_fresh_backend_session() -> None:
    """The evaluation's fresh start is what the emulator backend does in a new session: same
    initial state, zero recurrent state spun up by the manifest's number of network calls, same
    network, the water tile from the same physics (``open_water`` at the backend's default
    measurement heights, which the synthetic source shares): the LE of the first hours agrees."""
    from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
    from emulators.compiled.open_water import OpenWater
    from emulators.export import load_torchscript
    from emulators.manifest import Manifest
    from emulators.protocol import StepClock
    from emulators.training.batch import rollout

    spec = SourceSpec("synthetic", seed=6, cells=1, days=2, spinup_days=0, perturbation=0.0)
    traj = simulate(spec, 3600, progress=False)
    batch = Batch.of([traj], torch.float64)
    net = load_torchscript(ARTIFACTS / "flux_lstm" / "flux_lstm.ts")
    recurrent = Manifest.load(ARTIFACTS / "flux_lstm").recurrent_state
    assert recurrent["spin_up"] > 0  # the shipped artifact spins up: the test covers it
    out = rollout(
        net,
        batch,
        recurrent["hidden"],
        fields=("hfls", "hfss"),
        water=OpenWater(),
        spin_up=recurrent["spin_up"],
    )
    backend = EmulatorBackend(EmulatorConfig(phenology="reference", all_tiles=True))
    lat = torch.as_tensor(traj.lat[:1])
    params = torch.as_tensor(traj.params).reshape(1, 1, P.N_CLASSES, P.N_PARAMETERS)
    static = LandStatic(
        lat, torch.as_tensor(traj.lon[:1]), torch.full((1, 8), 1 / 8, dtype=torch.float64), params
    )
    clock = StepClock(0, traj.time[0], 3600.0)
    state = backend.initial_state(static, clock)
    for i in range(12):  # leaf carbon is the reference's until the day ends
        forcing = {k: torch.as_tensor(v[i : i + 1, :1]) for k, v in traj.forcing.items()}
        state, tiles = backend.step_tiles(state, static, forcing, clock)
        assert torch.allclose(tiles["hfls"][0, 0], out["hfls"][i], atol=1e-2)
        clock = clock.advance()


def test_cold_start_training_options() -> None:
    cfg = coldstart_config()
    assert cfg.cold_weight > 0 and cfg.init_sha256 and init_path(cfg.init).exists()
    assert get("flux-lstm", **COLDSTART_OPTIONS).config() == cfg
    daily = get("flux-lstm-daily", **DAILY_COLDSTART_OPTIONS).config()
    assert (daily.timestep, daily.cold_window) == (86_400, 14) and init_path(daily.init).exists()
    # the shipped recipe: candidate G (from scratch with the cold-start terms) continued with
    # the measurement heights from its pinned weights (``training.heights``)
    shipped = get("flux-lstm").config()
    assert (shipped.cold_weight, shipped.reset_fraction) == (1.0, 0.1)
    assert shipped.init == HOURLY_INIT and shipped.options["n_features"] == 44
    specs = cold_specs((SourceSpec("synthetic", seed=1, cells=1, days=30),), 3, 2, 3600)
    assert [(s.spinup_days, s.offset_days, s.record_days) for s in specs] == [
        (0, 0, 2),
        (0, 9, 2),
        (0, 19, 2),
    ]
    for bad, match in (
        ({"cold_weight": -1.0}, "cold_weight must be >= 0"),
        ({"reset_fraction": 1.5}, r"reset_fraction must be in \[0, 1\]"),
        ({"cold_rows": 0}, "cold_rows must be >= 1"),
    ):
        with pytest.raises(ValueError, match=match):
            FluxTrainConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SHA-256"):
        from emulators.nets import registry
        from emulators.training.flux_cold import load_init

        load_init(registry.build("flux_lstm", {}), cfg.init, "0000")
