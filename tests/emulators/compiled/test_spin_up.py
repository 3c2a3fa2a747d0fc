"""Spin-up of a never-stepped row's recurrent state (``flux_step.spin_up_state``), in the
emulator backend (``EmulatorConfig.spin_up``, default: the artifact manifest's) and its choice on
validation sources (``training.spin_up``)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from coupler.cli import main
from emulators.compiled.artifacts import load_fluxes
from emulators.compiled.emulator import ARTIFACTS, EmulatorBackend, EmulatorConfig
from emulators.compiled.flux_step import spin_up_state
from emulators.export import load_torchscript
from emulators.manifest import Manifest
from emulators.protocol import StepClock
from emulators.training import spin_up
from emulators.training.data import SourceSpec
from tests.contracts.backend_contract import contract_forcing, contract_static

Tensor = torch.Tensor


class _Counting:
    """A recurrent net that counts its calls: h ← h + 1 + x·0.5 (row-wise), c ← 2c + 1."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self.calls += 1
        return x[:, :1], h + 1.0 + 0.5 * x[:, :1], 2.0 * c + 1.0


def test_only_never_stepped_rows_are_spun_up_and_inputs_are_untouched() -> None:
    x = torch.arange(15.0).reshape(5, 3)
    h = torch.zeros(5, 3)
    c = torch.zeros(5, 2)
    h[1] = 0.3  # stepped before
    c[2, 1] = -0.1  # stepped before: h zero, c not
    h[4, 1] = 0.5  # stepped before, zero where the cheap first test looks (h[:, -1])
    h0, c0 = h.clone(), c.clone()
    net = _Counting()
    h1, c1 = spin_up_state(net, x, h, c, 3)
    assert net.calls == 3
    assert torch.equal(h, h0) and torch.equal(c, c0)  # inputs unchanged
    for r in (0, 3):  # never stepped: three calls on x held fixed
        assert torch.equal(h1[r], torch.full((3,), 3 * (1.0 + 0.5 * float(x[r, 0]))))
        assert torch.equal(c1[r], torch.full((2,), 7.0))  # 0 → 1 → 3 → 7
    for r in (1, 2, 4):
        assert torch.equal(h1[r], h[r]) and torch.equal(c1[r], c[r])


def test_no_spin_up_without_iterations_or_fresh_rows() -> None:
    x, h, c = torch.ones(3, 2), torch.zeros(3, 4), torch.zeros(3, 4)
    net = _Counting()

    def same(got: tuple[Tensor, Tensor], h: Tensor, c: Tensor) -> bool:
        return got[0] is h and got[1] is c

    assert same(spin_up_state(net, x, h, c, 0), h, c)
    stepped_h, stepped_c = torch.ones(3, 4), torch.ones(3, 4)
    assert same(spin_up_state(net, x, stepped_h, stepped_c, 5), stepped_h, stepped_c)
    empty_h, empty_c = h[:0], c[:0]
    assert same(spin_up_state(net, x[:0], empty_h, empty_c, 5), empty_h, empty_c)
    assert net.calls == 0


def test_spin_up_of_the_shipped_network_matches_calling_it() -> None:
    net = load_torchscript(ARTIFACTS / "flux_lstm" / "flux_lstm.ts")
    hidden = Manifest.load(ARTIFACTS / "flux_lstm").recurrent_state["hidden"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, net.inputs.mean.shape[0], generator=g) * 0.1 + net.inputs.mean
    h, c = torch.zeros(5, hidden), torch.zeros(5, hidden)
    h[4], c[4] = 0.2, -0.2
    h1, c1 = spin_up_state(net, x, h, c, 4)
    hs, cs = h[:4], c[:4]
    for _ in range(4):
        _, hs, cs = net(x[:4], hs, cs)
    assert torch.allclose(h1[:4], hs, atol=1e-6) and torch.allclose(c1[:4], cs, atol=1e-6)
    assert torch.equal(h1[4], h[4]) and torch.equal(c1[4], c[4])


def _first_steps(config: EmulatorConfig, steps: int) -> list[dict[str, Tensor]]:
    static = contract_static(20, 1, seed=3)
    backend = EmulatorBackend(config)
    clock = StepClock(0, np.datetime64("2001-07-01T10:00"), 3600.0)
    state = backend.initial_state(static, clock)
    out = []
    for _ in range(steps):
        state, fields = backend.step(state, static, contract_forcing(static, clock, 2), clock)
        out.append(fields | {k: state.tensors[k] for k in ("lstm_h", "lstm_c")})
        clock = clock.advance()
    return out


def test_the_backend_spins_up_a_new_session_by_the_manifest_number() -> None:
    shipped = load_fluxes(ARTIFACTS, ("flux_lstm",), lambda m, d: None)[3600.0].spin_up
    assert shipped == Manifest.load(ARTIFACTS / "flux_lstm").recurrent_state["spin_up"] > 0
    default = _first_steps(EmulatorConfig(device="cpu"), 2)
    same = _first_steps(EmulatorConfig(device="cpu", spin_up=shipped), 2)
    none = _first_steps(EmulatorConfig(device="cpu", spin_up=0), 2)
    for a, b in zip(default, same, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # the first step's fluxes differ with and without spin-up
    assert not torch.equal(default[0]["hfls"], none[0]["hfls"])


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_spin_up_config_is_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="spin_up: must be None or an integer >= 0"):
        EmulatorConfig(spin_up=bad)  # type: ignore[arg-type]


def test_the_best_score_wins_and_the_smaller_of_equals() -> None:
    assert spin_up.best({0: 0.9, 3: 0.95, 10: 0.95, 30: 0.94}) == 3
    assert spin_up.best({0: 0.99, 1: 0.98}) == 0


def test_the_choice_is_recorded_with_its_validation_sources() -> None:
    for name in ("flux_lstm", "flux_lstm_daily", "flux_transformer"):
        manifest = Manifest.load(ARTIFACTS / name)
        state = manifest.recurrent_state
        scores = {int(k): v for k, v in state["spin_up_selection"]["scores"].items()}
        assert state["spin_up"] == spin_up.best(scores)
        assert set(scores) == set(spin_up.CANDIDATES)
        labels = [s.label for s in spin_up.validation_specs(manifest)]
        assert state["spin_up_selection"]["sources"] == labels
        held_out = {r["source"] for r in manifest.skill}
        assert not set(labels) & held_out  # chosen on validation sources, not held-out ones


def test_selection_scores_the_validation_sources_and_writes_the_manifest(tmp_path: Path) -> None:
    """``landcoupler emulators spin-up`` on a copy of the daily artifact whose manifest names one
    small validation source: every candidate scored, the best written, the artifact untouched."""
    directory = tmp_path / "flux_lstm_daily"
    shutil.copytree(ARTIFACTS / "flux_lstm_daily", directory, ignore=shutil.ignore_patterns("init"))
    manifest = Manifest.load(directory)
    small = SourceSpec("synthetic", seed=51, cells=2, days=40, spinup_days=10)
    manifest.training["validation"] = [dataclasses.asdict(small)]
    manifest.recurrent_state.pop("spin_up")
    manifest.save(directory)
    weights = (directory / "flux_lstm_daily.ts").read_bytes()
    assert main(["emulators", "spin-up", "flux-lstm-daily", "--artifacts", str(tmp_path),
                 "--work", str(tmp_path / "work"), "--no-progress"]) == 0  # fmt: skip
    state = Manifest.load(directory).recurrent_state
    scores = {int(k): v for k, v in state["spin_up_selection"]["scores"].items()}
    assert set(scores) == set(spin_up.CANDIDATES) and state["spin_up"] == spin_up.best(scores)
    assert state["spin_up_selection"]["sources"] == [small.label]
    assert len(set(scores.values())) > 1  # the spin-up changes the rollouts it scores
    assert (directory / "flux_lstm_daily.ts").read_bytes() == weights


def test_only_recurrent_emulators_are_spun_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lai = (ARTIFACTS / "lai" / "manifest.json").read_bytes()
    assert main(["emulators", "spin-up", "lai", "--work", str(tmp_path)]) == 2
    assert "name: lai has no recurrent state to spin up" in capsys.readouterr().err
    assert (ARTIFACTS / "lai" / "manifest.json").read_bytes() == lai
