"""Static features from the real package masks, and the seeded land-cover generator."""

from __future__ import annotations

import numpy as np
import pytest

from emulators.lulc import features, generator
from emulators.lulc.grid import N_COLS, Window, block_mean
from emulators.parameters import LandCover

from .conftest import GIBRALTAR, SUPERIOR

F = {name: i for i, name in enumerate(features.FEATURE_NAMES)}


def _at(window: Window, values: np.ndarray, lat: float, lon: float) -> float:
    r = int(np.argmin(np.abs(window.lat() - lat)))
    c = int(np.argmin(np.abs(window.lon() - lon)))
    return float(values[r, c])


def test_features_see_the_real_coast(gibraltar: np.ndarray) -> None:
    assert gibraltar.shape == (features.N_FEATURES, 48, 48)
    assert gibraltar.dtype == np.float32
    land = gibraltar[F["land_area_fraction"]]
    dist = gibraltar[F["distance_to_coast"]]
    # the Atlantic west of Cape St Vincent, inland Extremadura, the Tagus estuary coast
    assert _at(GIBRALTAR, land, 37.0, -9.8) == 0.0
    assert _at(GIBRALTAR, dist, 37.0, -9.8) < 0.0
    assert _at(GIBRALTAR, land, 38.8, -6.3) == 1.0
    assert _at(GIBRALTAR, dist, 38.8, -6.3) > 150.0
    assert 0.0 < float(land.mean()) < 1.0
    assert np.all(np.abs(dist) <= 1000.0)
    lat = gibraltar[F["lat"]]
    assert np.allclose(lat[:, 0], GIBRALTAR.lat())
    assert np.all((gibraltar[F["continentality"]] >= 0) & (gibraltar[F["continentality"]] <= 1))
    assert np.all((gibraltar[F["aridity_proxy"]] >= 0) & (gibraltar[F["aridity_proxy"]] <= 1))
    assert 280.0 < float(gibraltar[F["tas_proxy"]].mean()) < 295.0


def test_lakes_come_from_basemap_not_the_land_mask(superior: np.ndarray) -> None:
    lake = superior[F["lake_area_fraction"]]
    land = superior[F["land_area_fraction"]]
    # Lake Superior: land for global-land-mask, lake for basemap's GSHHS mask
    assert _at(SUPERIOR, land, 47.6, -87.5) == 1.0
    assert _at(SUPERIOR, lake, 47.6, -87.5) == 1.0
    water = features.water_fraction(superior)
    assert _at(SUPERIOR, water, 47.6, -87.5) == 1.0


def test_a_window_equals_the_same_pixels_of_a_larger_window(gibraltar: np.ndarray) -> None:
    inner = Window(GIBRALTAR.row0 + 8, GIBRALTAR.col0 + 16, 24, 16)
    assert np.array_equal(features.compute(inner), gibraltar[:, 8:32, 16:32])


def test_windows_wrap_across_the_dateline() -> None:
    w = Window(800, N_COLS - 12, 12, 24)  # 180° W/E over Fiji
    lon = w.lon()
    assert lon[0] > 179.0 and lon[-1] < -179.0
    f = features.compute(w)
    assert f.shape == (features.N_FEATURES, 12, 24)
    assert np.isfinite(f).all()


def test_generator_is_deterministic_by_seed(gibraltar: np.ndarray) -> None:
    a_cls, a = generator.generate(gibraltar, generator.GeneratorConfig(seed=7))
    b_cls, b = generator.generate(gibraltar, generator.GeneratorConfig(seed=7))
    c_cls, _ = generator.generate(gibraltar, generator.GeneratorConfig(seed=8))
    assert np.array_equal(a_cls, b_cls) and np.array_equal(a, b)
    assert not np.array_equal(a_cls, c_cls)


def test_generated_fractions_are_consistent_with_the_masks(gibraltar: np.ndarray) -> None:
    cls, frac = generator.generate(gibraltar, generator.GeneratorConfig(seed=0))
    assert frac.shape == (8, 48, 48)
    assert np.allclose(frac.sum(axis=0), 1.0, atol=1e-6)
    assert frac.min() >= 0.0
    water = features.water_fraction(gibraltar)
    ocean = water >= 1.0
    assert np.all(frac[LandCover.WATER_ICE][ocean] == 1.0)
    # the land part of every pixel is exactly the mask's land part
    assert np.allclose(1.0 - frac[LandCover.WATER_ICE], 1.0 - water, atol=1e-6)
    land_classes = set(np.unique(cls[water < 0.5]).tolist())
    assert len(land_classes) >= 3  # a mix of classes, not one
    coarse = generator.coarsen(frac, 8)
    assert coarse.shape == (8, 6, 6)
    assert np.allclose(coarse, block_mean(frac.astype(np.float64), 8))
    assert np.allclose(coarse.sum(axis=0), 1.0, atol=1e-6)


def test_generator_config_validation() -> None:
    with pytest.raises(ValueError, match="seed"):
        generator.GeneratorConfig(seed=-1)
    with pytest.raises(ValueError, match="bare_below < shrub_below"):
        generator.GeneratorConfig(shrub_below=-1.0)
    with pytest.raises(ValueError, match="urban_rate"):
        generator.GeneratorConfig(urban_rate=2.0)
    with pytest.raises(ValueError, match="features: expected shape"):
        generator.generate(np.zeros((3, 8, 8), np.float32), generator.GeneratorConfig())


def test_window_validation() -> None:
    with pytest.raises(ValueError, match="rows"):
        Window(2150, 0, 20, 20)
    with pytest.raises(ValueError, match="col0"):
        Window(0, N_COLS, 4, 4)
    with pytest.raises(ValueError, match="lat"):
        Window.around(95.0, 0.0, 4, 4)
