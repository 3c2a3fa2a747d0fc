"""SessionSpec / GridSpec / Limits validate themselves: each rule names its field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from coupler.core.config import Limits
from coupler.errors import InvalidArgument
from coupler.spec import GridSpec, SessionSpec
from emulators import parameters as P

from .conftest import START, config, grid

N = 6


def _grid(**kw: Any) -> GridSpec:
    base: dict[str, Any] = {"lat": np.linspace(-10, 10, N), "lon": np.linspace(0, 50, N)}
    base.update(kw)
    return GridSpec(**base)


GRID_CASES = [
    ({"lat": np.array([])}, "lat", "non_empty"),
    ({"lat": np.zeros((2, 3))}, "lat", "shape"),
    ({"lat": np.array(["a"] * N)}, "lat", "dtype"),
    ({"lat": np.array([0.0] * (N - 1) + [np.nan])}, "lat", "finite"),
    ({"lat": np.array([0.0] * (N - 1) + [90.5])}, "lat", "valid_range"),
    ({"lon": np.zeros(N + 1)}, "lon", "shape"),
    ({"lon": np.array([0.0] * (N - 1) + [np.inf])}, "lon", "finite"),
    ({"lon": np.array([0.0] * (N - 1) + [400.0])}, "lon", "valid_range"),
    ({"area": np.zeros(N)}, "area", "positive"),
    ({"area": np.ones(N - 1)}, "area", "shape"),
    ({"land_fraction": np.zeros(N)}, "land_fraction", "valid_range"),
    ({"land_fraction": np.full(N, 1.5)}, "land_fraction", "valid_range"),
    ({"shape": (2, 2)}, "shape", "matches_cells"),
    ({"shape": (N, 1, 1)}, "shape", "matches_cells"),
    ({"shape": (-2, -3)}, "shape", "matches_cells"),
]


@pytest.mark.parametrize(("kw", "field", "rule"), GRID_CASES)
def test_grid_rules(kw: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _grid(**kw)
    assert (err.value.field, err.value.rule) == (field, rule)
    assert field in str(err.value)


def _cover(n: int = N) -> np.ndarray:
    c = np.zeros((n, P.N_CLASSES))
    c[:, 2] = 0.5
    c[:, 3] = 0.5
    return c


CONFIG_CASES = [
    ({"grid": "cells"}, "grid", "type"),
    ({"start": "not a time"}, "start", "datetime"),
    ({"start": np.datetime64("NaT")}, "start", "datetime"),
    ({"start": "2001-06-01T00:00:00+02:00"}, "start", "utc"),
    ({"start": "2001-06-01T00:00:00.25"}, "start", "whole_seconds"),
    ({"start": 12}, "start", "datetime"),
    ({"timestep": 0}, "timestep", "positive_int"),
    ({"timestep": -3600}, "timestep", "positive_int"),
    ({"timestep": 1.5}, "timestep", "positive_int"),
    ({"timestep": True}, "timestep", "positive_int"),
    ({"timestep": 7}, "timestep", "divides_day"),
    ({"timestep": 86400 + 3600}, "timestep", "divides_day"),
    ({"outputs": ()}, "outputs", "non_empty"),
    ({"outputs": ("hfls", "nonsense")}, "outputs", "known_name"),
    ({"outputs": ("tas",)}, "outputs", "direction"),
    ({"outputs": ("cLeaf",)}, "outputs", "direction"),
    ({"outputs": ("hfls", "hfls")}, "outputs", "unique"),
    ({"backend": ""}, "backend", "known_backend"),
    ({"freeze_vegetation_year": 0}, "freeze_vegetation_year", "year"),
    ({"freeze_vegetation_year": 2015.5}, "freeze_vegetation_year", "year"),
    ({"land_cover": "jungle"}, "land_cover", "known_class"),
    ({"land_cover": np.ones((N, 3))}, "land_cover", "shape"),
    ({"land_cover": -_cover()}, "land_cover", "valid_range"),
    ({"land_cover": _cover() * 0.9}, "land_cover", "sums_to_one"),
    ({"run_id": "has spaces"}, "run_id", "format"),
    ({"run_id": "x" * 300}, "run_id", "format"),
    ({"rank": -1}, "rank", "int_range"),
    ({"members": 0}, "members", "int_range"),
    ({"members": 2.0}, "members", "int_range"),
    ({"output_spread": "yes"}, "output_spread", "type"),
    ({"checkpoint_every": -1}, "checkpoint_every", "int_range"),
    ({"checkpoint_every": 5}, "checkpoint_every", "needs_checkpoint_url"),
    ({"checkpoint_url": ""}, "checkpoint_url", "url"),
    ({"record_url": "  "}, "record_url", "url"),
    ({"height_wind": 0.0}, "height_wind", "range"),
    ({"height_wind": -10.0}, "height_wind", "range"),
    ({"height_wind": 200.5}, "height_wind", "range"),
    ({"height_wind": float("inf")}, "height_wind", "range"),
    ({"height_wind": True}, "height_wind", "range"),
    ({"height_wind": "10"}, "height_wind", "range"),
    ({"height_temperature": float("nan")}, "height_temperature", "range"),
    ({"height_temperature": 0}, "height_temperature", "range"),
]


@pytest.mark.parametrize(("kw", "field", "rule"), CONFIG_CASES)
def test_config_rules(kw: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        config(N, **kw)
    assert (err.value.field, err.value.rule) == (field, rule)
    assert str(err.value).startswith(f"{field}:")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"max_sessions": 0}, "max_sessions"),
        ({"max_cells_per_session": -1}, "max_cells_per_session"),
        ({"max_members": 1.5}, "max_members"),
    ],
)
def test_limits_rules(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Limits(**kw)
    assert (err.value.field, err.value.rule) == (field, "positive_int")


def test_valid_config_is_normalised_and_immutable() -> None:
    lat = np.linspace(-10, 10, N).astype(np.float32)
    cfg = config(
        N,
        grid=GridSpec(lat=lat, lon=np.arange(N), shape=(2, 3)),
        start="2001-06-01T00:00:00Z",
        timestep=np.int64(1800),
        outputs=["hfls", "ts"],
        land_cover=_cover(),
    )
    assert cfg.start == START and cfg.start.dtype == np.dtype("datetime64[s]")
    assert cfg.timestep == 1800 and type(cfg.timestep) is int
    assert cfg.outputs == ("hfls", "ts")
    assert cfg.grid.lat.dtype == np.float64 and np.array_equal(cfg.grid.lat, lat)
    lat[0] = 45.0  # the config holds a copy
    assert cfg.grid.lat[0] == -10.0
    with pytest.raises(ValueError):
        cfg.grid.lat[0] = 1.0  # read-only
    assert cfg.step_time(3) == np.datetime64("2001-06-01T01:30:00")
    assert cfg.reply_names() == ("hfls", "ts")
    assert config(N, output_spread=True, outputs=("ts",)).reply_names() == ("ts", "ts_spread")
    assert config(N, timestep=2 * 86400).timestep == 172800


def test_named_land_cover_is_one_hot() -> None:
    frac = config(N, land_cover="crop").cover_fractions()
    assert frac.shape == (N, P.N_CLASSES)
    assert np.array_equal(frac[:, int(P.LandCover.CROPLAND)], np.ones(N))
    assert frac.sum() == N


def test_json_round_trip_is_exact() -> None:
    cfg = config(
        N,
        land_cover=_cover(),
        grid=grid(N, seed=3),
        output_spread=True,
        members=3,
        checkpoint_url="memory://ck",
        checkpoint_every=4,
        record_url="memory://r.zarr",
        run_id="run-1",
        rank=2,
    )
    back = SessionSpec.from_dict(json.loads(cfg.to_json()))
    assert back.to_json() == cfg.to_json()
    for k, v in cfg.arrays().items():
        assert back.arrays()[k].tobytes() == v.tobytes()
    # without arrays the dict is small and the arrays travel separately
    slim = cfg.to_dict(include_arrays=False)
    assert "lat" not in slim["grid"] and slim["grid"]["n_cells"] == N
    again = SessionSpec.from_dict(slim, cfg.arrays())
    assert again.to_json() == cfg.to_json()


def test_forcing_heights_default_round_trip_and_old_specs() -> None:
    """Unset heights are the WMO ones (10 m wind, 2 m temperature); set ones survive JSON; a
    spec written before sessions had heights (a checkpoint's, a record's) reads as the defaults."""
    assert (config(N).height_wind, config(N).height_temperature) == (10.0, 2.0)
    cfg = config(N, height_wind=np.float32(33.5), height_temperature=np.int64(20))
    assert (cfg.height_wind, cfg.height_temperature) == (33.5, 20.0)
    assert type(cfg.height_wind) is float and type(cfg.height_temperature) is float
    back = SessionSpec.from_dict(json.loads(cfg.to_json()))
    assert (back.height_wind, back.height_temperature) == (33.5, 20.0)
    old = json.loads(cfg.to_json())
    del old["height_wind"], old["height_temperature"]
    assert (
        SessionSpec.from_dict(old).height_wind,
        SessionSpec.from_dict(old).height_temperature,
    ) == (
        10.0,
        2.0,
    )
