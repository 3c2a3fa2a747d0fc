"""Held-out evaluation never sees the weather training saw, and every real forcing source in the
registry is either trained on or held out (issue 14: generalisation to unseen real weather)."""

from __future__ import annotations

import pytest

from emulators import forcing
from emulators.recipes import get
from emulators.training import evaluate as ev
from emulators.training.data import SourceSpec

RECIPES = ("flux-lstm", "flux-lstm-daily", "flux-transformer", "lai", "lai-daily")


def weather(spec: SourceSpec) -> set[tuple[object, ...]]:
    """The weather a spec draws: synthetic seeds, Wageningen years, CGMS grids, or a station."""
    if spec.source == "synthetic":
        return {("synthetic", spec.seed)}
    if spec.source == "pcse-wageningen":
        y0, y1 = spec.options.get("years", forcing.options("pcse-wageningen")["years"])
        return {("pcse-wageningen", y) for y in range(y0, y1 + 1)}
    if spec.source == "cgms-grid":
        grids = spec.options.get("grids", forcing.options("cgms-grid")["grids"])
        return {("cgms-grid", g) for g in grids}
    return {(spec.source,)}


def _split(name: str) -> tuple[tuple[SourceSpec, ...], tuple[SourceSpec, ...]]:
    config = get(name).config()
    seen = (*config.train, *config.validation)
    dt = float(getattr(config, "timestep", 3600))  # the transformer is hourly only
    held = ev.lai_held_out(dt) if name.startswith("lai") else ev.flux_held_out(dt)
    return seen, held


@pytest.mark.parametrize("name", RECIPES)
def test_training_and_held_out_weather_are_disjoint(name: str) -> None:
    seen, held = _split(name)
    trained = set().union(*(weather(s) for s in seen))
    evaluated = set().union(*(weather(s) for s in held))
    assert trained and evaluated
    assert trained.isdisjoint(evaluated), trained & evaluated
    assert len({s.label for s in held}) == len(held)  # one table row per held-out source


def test_every_real_source_is_trained_on_or_held_out() -> None:
    for name in ("flux-lstm", "flux-lstm-daily"):
        seen, held = _split(name)
        covered = {s.source for s in (*seen, *held)}
        assert set(forcing.SOURCES) - covered == set(), name


def test_lai_held_out_drops_only_records_shorter_than_a_year() -> None:
    for dt in (3600.0, 86_400.0):
        flux = {s.source for s in ev.flux_held_out(dt)}
        lai = {s.source for s in ev.lai_held_out(dt)}
        assert flux - lai == {"bsrn-payerne", "cgms-ronda"}
