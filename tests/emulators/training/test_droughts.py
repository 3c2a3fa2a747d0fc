"""The daily emulator's training with years without rain (``training.droughts``; issue 14)."""

from __future__ import annotations

from emulators.recipes import get
from emulators.training import evaluate as ev
from emulators.training.data import load_forcing
from emulators.training.droughts import DAILY_DRY, DRY_DAILY_SPECS, DRY_DAILY_VALIDATION
from emulators.training.widened import daily_spun_config
from tests.emulators.training.test_held_out_sources import weather


def test_the_dry_candidate_is_the_shipped_recipe_with_rain_free_weather() -> None:
    """One ``get`` away: the shipped daily recipe's sources, network and windows, plus widened
    cells without rain (and with less), continued from the shipped network."""
    config = get("flux-lstm-daily", **DAILY_DRY).config()
    shipped = daily_spun_config()
    assert config.train == (*shipped.train, *DRY_DAILY_SPECS)
    assert config.validation == (*shipped.validation, DRY_DAILY_VALIDATION)
    assert (config.options, config.timestep, config.train_spin_up, config.cold_window) == (
        shipped.options,
        shipped.timestep,
        shipped.train_spin_up,
        shipped.cold_window,
    )
    assert config.init == "flux_lstm_daily/flux_lstm_daily.ts" and config.epochs == 12
    assert {s.pr_scale for s in DRY_DAILY_SPECS} == {(0.0, 0.0), (0.0, 1.0)}
    assert DRY_DAILY_VALIDATION.pr_scale == (0.0, 0.0)


def test_the_dry_candidate_trains_on_no_held_out_weather() -> None:
    config = get("flux-lstm-daily", **DAILY_DRY).config()
    seen = set().union(*(weather(s) for s in (*config.train, *config.validation)))
    held = set().union(*(weather(s) for s in ev.flux_held_out(86_400)))
    assert ("synthetic", 61) in held and seen.isdisjoint(held)


def test_rain_free_cells_have_no_rain_and_the_same_other_weather() -> None:
    """A few days of the rain-free spec's first cells: no precipitation at all, and the other
    fields those of the same cells with rain."""
    import dataclasses

    dry = dataclasses.replace(DRY_DAILY_SPECS[0], cells=3, days=40)
    wet = dataclasses.replace(dry, pr_scale=(1.0, 1.0))
    a, b = load_forcing(dry, 86_400), load_forcing(wet, 86_400)
    assert not a["pr"].values.any() and b["pr"].values.sum() > 0
    assert a["tas"].values.tobytes() == b["tas"].values.tobytes()
