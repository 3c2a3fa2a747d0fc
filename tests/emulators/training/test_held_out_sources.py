"""Held-out evaluation never sees the weather training saw, and every real forcing source in the
registry is either trained on or held out (issue 14: generalisation to unseen real weather)."""

from __future__ import annotations

from typing import Any

import numpy as np
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


def test_widened_synthetic_specs_draw_reproducible_cells_in_range() -> None:
    from emulators.training.data import load_forcing

    wide = SourceSpec(
        "synthetic",
        seed=5,
        cells=6,
        days=3,
        elevation=(0.0, 3000.0),
        wind_scale=(0.3, 1.5),
        rh_offset=(-0.3, 0.05),
    )
    plain = SourceSpec("synthetic", seed=5, cells=6, days=3)
    a, b, p = load_forcing(wide), load_forcing(wide), load_forcing(plain)
    for var in forcing.FORCING_VARIABLES:
        assert a[var].values.tobytes() == b[var].values.tobytes()
    np.testing.assert_array_equal(a["lat"].values, p["lat"].values)  # same cells
    z = a["elevation"].values
    assert ((z >= 0.0) & (z <= 3000.0)).all() and z.std() > 300.0
    assert (a["ps"].values.mean(0) < p["ps"].values.mean(0)).all()
    assert wide.widened and not plain.widened
    # the defaults leave the cache key of earlier specs as it was
    assert plain.key() == SourceSpec("synthetic", seed=5, cells=6, days=3, wind_scale=(1, 1)).key()
    assert wide.key() != plain.key()


def test_a_pr_scale_spec_draws_the_same_cells_with_other_rain() -> None:
    """A spec with ``pr_scale`` draws the cells (coordinates, elevation, wind, humidity) and the
    weather of the same spec without it, but its rain; rain-free cells have none. Its cache key
    is its own, and a spec with the default (1, 1) keeps the key and the recorded form it had
    before the field existed."""
    from emulators.recipes.base import recorded_config
    from emulators.training.data import load_forcing

    kw: dict[str, Any] = {"seed": 5, "cells": 4, "days": 20, "elevation": (0.0, 3000.0)}
    wet, dry = SourceSpec("synthetic", **kw), SourceSpec("synthetic", **kw, pr_scale=(0.0, 0.0))
    some = SourceSpec("synthetic", **kw, pr_scale=(0.2, 0.8))
    a, b, c = load_forcing(wet), load_forcing(dry), load_forcing(some)
    for var in ("lat", "lon", "elevation", "tas", "huss", "rsds", "sfcWind"):
        assert a[var].values.tobytes() == b[var].values.tobytes() == c[var].values.tobytes()
    assert a["pr"].values.sum() > 0 and not b["pr"].values.any()
    ratio = c["pr"].values.sum(0) / a["pr"].values.sum(0)
    assert ((ratio >= 0.2) & (ratio <= 0.8)).all() and ratio.std() > 0.01
    assert len({wet.key(), dry.key(), some.key()}) == 3
    assert SourceSpec("synthetic", **kw, pr_scale=(1.0, 1.0)).key() == wet.key()
    assert "pr_scale" not in recorded_config(wet) and recorded_config(dry)["pr_scale"] == (0, 0)
    assert dry.widened and SourceSpec.from_record(recorded_config(dry)) == dry


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "synthetic", "cells": 4, "elevation": (100.0, 50.0)}, "elevation must be"),
        ({"source": "synthetic", "cells": 4, "wind_scale": (0.0, 1.0)}, "wind_scale must be"),
        ({"source": "synthetic", "cells": 4, "rh_offset": (-0.6, 0.0)}, "rh_offset must be"),
        ({"source": "synthetic", "cells": 4, "rh_offset": (0.0,)}, "rh_offset must be"),
        ({"source": "synthetic", "cells": 4, "pr_scale": (-0.5, 1.0)}, "pr_scale must be"),
        ({"source": "synthetic", "cells": 4, "pr_scale": (2.0, 1.0)}, "pr_scale must be"),
        ({"source": "epw-amsterdam", "pr_scale": (0.0, 0.0)}, "synthetic source only"),
        ({"source": "tmy3-greensboro", "elevation": (0.0, 10.0)}, "synthetic source only"),
    ],
)
def test_widened_spec_options_are_refused_precisely(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SourceSpec(**kwargs)


def test_flux_lstm_wide_training_spans_high_calm_and_dry_cells() -> None:
    from emulators.training.flux import TRAIN_SOURCES
    from emulators.training.widened import WIDE_OPTIONS

    wide = [s for s in WIDE_OPTIONS["train"] if s.widened]
    assert wide and {s.key() for s in TRAIN_SOURCES} <= {s.key() for s in WIDE_OPTIONS["train"]}
    assert any(s.widened for s in WIDE_OPTIONS["validation"])
    assert all(s.elevation[1] >= 2500.0 and s.wind_scale[0] <= 0.4 for s in wide)


@pytest.mark.parametrize("name", ["C", "D", "E", "F", "G"])
def test_measured_candidates_are_valid_recipes(name: str) -> None:
    """Each documented candidate is one ``get`` away: a valid training config and network."""
    from emulators.nets import registry
    from emulators.recipes import get
    from emulators.training.widened import CANDIDATES, DUTCH_YEARS, WIDE_OPTIONS, wide

    recipe = get("flux-lstm", **CANDIDATES[name])
    config = recipe.config()
    extra = {"F": DUTCH_YEARS, "G": (*DUTCH_YEARS, wide(23, 48), wide(24, 48))}.get(name, ())
    assert config.epochs == 24 and config.train == (*WIDE_OPTIONS["train"], *extra)
    net = registry.build(config.architecture, config.options)
    assert net.hidden == (48 if name in "DFG" else 32)
    assert net.physics is (name == "E")
    # the added Dutch years are real weather that no held-out source uses
    held = set().union(*(weather(s) for s in ev.flux_held_out(3600.0)))
    assert held.isdisjoint(set().union(*(weather(s) for s in config.train)))
