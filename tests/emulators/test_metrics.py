"""Skill metrics (emulators.metrics) and the Taylor diagram (emulators.plots).

Checked against two independent implementations (hydroeval 0.1.0 and HydroErr 2.0.0) on seeded
random series of several sizes with missing values, against closed forms, over xarray dimensions,
numpy axes and torch tensors, and for precise errors.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import fsspec
import HydroErr as he
import hydroeval as hv
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.projections.polar import PolarAxes

from emulators import metrics as M
from emulators import plots
from emulators.variables import VariableError

SIZES = (3, 17, 250, 4000)
K9, K12 = M.KGEVariant.KGE2009, M.KGEVariant.KGE2012


def _series(n: int, seed: int, nan_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy seasonal 'observed' flux and a biased, damped, noisy 'simulation' of it."""
    rng = np.random.default_rng(seed)
    obs = 50.0 + 20.0 * np.sin(np.linspace(0.0, 6.0 * np.pi, n)) + rng.normal(0.0, 8.0, n)
    sim = 0.8 * obs + rng.normal(5.0, 10.0, n)
    if nan_fraction:
        k = int(nan_fraction * n)
        sim[rng.choice(n, k, replace=False)] = np.nan
        obs[rng.choice(n, k, replace=False)] = np.nan
    return sim, obs


def _pairs(sim: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ~(np.isnan(sim) | np.isnan(obs))
    return sim[keep], obs[keep]


def _hydroerr(fn: Callable[..., Any], sim: np.ndarray, obs: np.ndarray, **kw: Any) -> Any:
    with warnings.catch_warnings():  # HydroErr warns each time it drops NaN rows
        warnings.simplefilter("ignore", UserWarning)
        return fn(sim, obs, **kw)


# ---- against HydroErr and hydroeval -----------------------------------------------------------

CASES = [(n, frac) for n in SIZES for frac in (0.0, 0.15) if not (n == 3 and frac)]


@pytest.mark.parametrize(("n", "nan_fraction"), CASES)
def test_matches_hydroerr(n: int, nan_fraction: float) -> None:
    sim, obs = _series(n, seed=n, nan_fraction=nan_fraction)
    pairs: list[tuple[np.ndarray, Callable[..., Any]]] = [
        (M.nse(sim, obs), he.nse),
        (M.kge(sim, obs), he.kge_2009),
        (M.kge(sim, obs, variant=K12), he.kge_2012),
        (M.rmse(sim, obs), he.rmse),
        (M.mae(sim, obs), he.mae),
        (M.pearson_r(sim, obs), he.pearson_r),
        (M.bias(sim, obs), he.me),
    ]
    for ours, theirs in pairs:
        assert float(ours) == pytest.approx(
            float(_hydroerr(theirs, sim, obs)), rel=1e-10, abs=1e-12
        )
    # components: HydroErr returns (r, alpha|gamma, beta, kge)
    for variant, fn in ((K9, he.kge_2009), (K12, he.kge_2012)):
        r, gamma, beta, kge = _hydroerr(fn, sim, obs, return_all=True)
        c = M.kge_components(sim, obs, variant=variant)
        got = [float(c.r), float(c.gamma), float(c.beta), float(c.kge)]
        assert got == pytest.approx([r, gamma, beta, kge], rel=1e-10)


@pytest.mark.parametrize("n", SIZES)
def test_matches_hydroeval_with_missing_observations(n: int) -> None:
    sim, obs = _series(n, seed=100 + n)
    if n > 3:  # hydroeval drops pairs only where the *observation* is NaN
        obs[np.random.default_rng(n).choice(n, n // 7, replace=False)] = np.nan
    assert float(M.nse(sim, obs)) == pytest.approx(hv.evaluator(hv.nse, sim, obs)[0], rel=1e-10)
    kge, r, alpha, beta = hv.evaluator(hv.kge, sim, obs)[:, 0]
    c = M.kge_components(sim, obs)
    assert [float(c.kge), float(c.r), float(c.gamma), float(c.beta)] == pytest.approx(
        [kge, r, alpha, beta], rel=1e-10
    )


def test_matches_hydroeval_for_several_simulations_along_an_axis() -> None:
    _, obs = _series(300, seed=7)
    obs[::11] = np.nan
    rng = np.random.default_rng(8)
    sims = obs[:, None] * np.array([0.7, 1.0, 1.3]) + rng.normal(0.0, 6.0, (300, 3))
    sims[np.isnan(sims)] = rng.normal(40.0, 5.0, int(np.isnan(sims).sum()))
    tiled = np.repeat(obs[:, None], 3, axis=1)
    np.testing.assert_allclose(M.nse(sims, tiled, dim=0), hv.evaluator(hv.nse, sims, obs), 1e-10)
    np.testing.assert_allclose(M.kge(sims, tiled, dim=0), hv.evaluator(hv.kge, sims, obs)[0], 1e-10)


@pytest.mark.parametrize(("n", "nan_fraction"), CASES)
def test_relative_bias_std_ratio_and_centred_rmsd_definitions(n: int, nan_fraction: float) -> None:
    sim, obs = _series(n, seed=3 * n, nan_fraction=nan_fraction)
    s, o = _pairs(sim, obs)
    assert float(M.rbias(sim, obs)) == pytest.approx(np.sum(s - o) / np.sum(o), rel=1e-10)
    assert float(M.std_ratio(sim, obs)) == pytest.approx(np.std(s) / np.std(o), rel=1e-10)
    centred = np.sqrt(np.mean(((s - s.mean()) - (o - o.mean())) ** 2))
    assert float(M.rmsd(sim, obs)) == pytest.approx(centred, rel=1e-10)
    # Taylor (2001) eq. 2: E'^2 = σs² + σo² − 2 σs σo r
    law = np.std(s) ** 2 + np.std(o) ** 2 - 2 * np.std(s) * np.std(o) * float(M.pearson_r(s, o))
    assert float(M.rmsd(sim, obs)) ** 2 == pytest.approx(law, rel=1e-9)


# ---- closed forms -----------------------------------------------------------------------------


def test_perfect_simulation() -> None:
    _, obs = _series(500, seed=1, nan_fraction=0.1)
    sim = obs.copy()
    for fn, want in [(M.nse, 1.0), (M.kge, 1.0), (M.pearson_r, 1.0), (M.std_ratio, 1.0)]:
        assert float(fn(sim, obs)) == pytest.approx(want, abs=1e-14)
    assert float(M.kge(sim, obs, variant=K12)) == pytest.approx(1.0, abs=1e-14)
    for fn in (M.rmse, M.mae, M.bias, M.rbias, M.rmsd):
        assert float(fn(sim, obs)) == 0.0


def test_simulating_the_observed_mean_scores_nse_zero() -> None:
    _, obs = _series(365, seed=2)
    sim = np.full_like(obs, obs.mean())
    assert float(M.nse(sim, obs)) == pytest.approx(0.0, abs=1e-12)
    assert float(M.bias(sim, obs)) == pytest.approx(0.0, abs=1e-12)
    assert float(M.std_ratio(sim, obs)) == 0.0
    assert float(M.rmse(sim, obs)) == pytest.approx(np.std(obs), rel=1e-12)


def test_constant_shift_gives_known_bias_and_relative_bias() -> None:
    _, obs = _series(240, seed=3)
    shift = 7.5
    sim = obs + shift
    assert float(M.bias(sim, obs)) == pytest.approx(shift, rel=1e-12)
    assert float(M.rbias(sim, obs)) == pytest.approx(shift * obs.size / obs.sum(), rel=1e-12)
    assert float(M.rmse(sim, obs)) == pytest.approx(shift, rel=1e-12)
    assert float(M.mae(sim, obs)) == pytest.approx(shift, rel=1e-12)
    assert float(M.rmsd(sim, obs)) == pytest.approx(0.0, abs=1e-12)
    assert float(M.pearson_r(sim, obs)) == pytest.approx(1.0, abs=1e-14)
    assert float(M.nse(sim, obs)) == pytest.approx(1.0 - shift**2 / np.var(obs), rel=1e-12)
    # only β departs from 1 in KGE2009: KGE = 1 − |β − 1| = 1 − shift / mean(obs)
    assert float(M.kge(sim, obs)) == pytest.approx(1.0 - shift / obs.mean(), rel=1e-12)


def test_scaled_anomalies_give_known_std_ratio_kge_nse() -> None:
    _, obs = _series(200, seed=4)
    a = 1.4
    sim = obs.mean() + a * (obs - obs.mean())
    assert float(M.std_ratio(sim, obs)) == pytest.approx(a, rel=1e-12)
    assert float(M.kge(sim, obs)) == pytest.approx(1.0 - (a - 1.0), rel=1e-12)
    assert float(M.nse(sim, obs)) == pytest.approx(1.0 - (a - 1.0) ** 2, rel=1e-12)
    assert float(M.rmsd(sim, obs)) == pytest.approx((a - 1.0) * np.std(obs), rel=1e-12)
    mirrored = 2 * obs.mean() - obs
    assert float(M.pearson_r(mirrored, obs)) == pytest.approx(-1.0, abs=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=60),
    st.lists(st.floats(-1e3, 1e3), min_size=60, max_size=60),
)
def test_murphy_decomposition_and_bounds(obs_list: list[float], sim_list: list[float]) -> None:
    """NSE = 2αr − α² − ((μs − μo)/σo)² (Murphy 1988); NSE, KGE ≤ 1; |r| ≤ 1."""
    obs = np.asarray(obs_list) + np.arange(len(obs_list))  # guaranteed spread
    sim = np.asarray(sim_list[: obs.size]) + 0.5 * np.arange(obs.size)
    alpha, r = float(M.std_ratio(sim, obs)), float(M.pearson_r(sim, obs, strict=False))
    if not np.isfinite(r):  # constant simulation: r undefined, Murphy's form with r = 0
        r = 0.0
    murphy = 2 * alpha * r - alpha**2 - ((sim.mean() - obs.mean()) / obs.std()) ** 2
    assert float(M.nse(sim, obs)) == pytest.approx(murphy, rel=1e-7, abs=1e-7)
    assert float(M.nse(sim, obs)) <= 1.0 + 1e-12 and abs(r) <= 1.0 + 1e-12
    kge = float(M.kge(sim, obs, strict=False))
    assert not kge > 1.0 + 1e-12


# ---- xarray, numpy axes, torch ----------------------------------------------------------------


def _cells(n_time: int = 300, n_cell: int = 5, seed: int = 11) -> tuple[xr.DataArray, xr.DataArray]:
    cols = [_series(n_time, seed=seed + c, nan_fraction=0.05 * c) for c in range(n_cell)]
    coords = {"time": np.arange(n_time), "cell": [101, 102, 103, 104, 105][:n_cell]}
    attrs = {"units": "W m-2"}
    sim = xr.DataArray(np.stack([c[0] for c in cols], 1), coords, ("time", "cell"), name="hfls")
    obs = xr.DataArray(np.stack([c[1] for c in cols], 1), coords, ("time", "cell"), name="hfls")
    obs.attrs.update(attrs)
    return sim, obs


ALL = {k: getattr(M, k) for k in M.DEFAULT_METRICS}


@pytest.mark.parametrize("key", sorted(ALL))
def test_per_cell_results_equal_one_dimensional_results(key: str) -> None:
    fn = ALL[key]
    sim, obs = _cells()
    per_cell = fn(sim, obs, dim="time")
    assert isinstance(per_cell, xr.DataArray) and per_cell.dims == ("cell",)
    assert per_cell.name == key and list(per_cell["cell"].values) == [101, 102, 103, 104, 105]
    assert per_cell.attrs["units"] == ("W m-2" if key in ("rmse", "mae", "bias", "rmsd") else "1")
    for c in range(sim.sizes["cell"]):
        one = fn(sim.values[:, c], obs.values[:, c])
        assert float(per_cell[c]) == pytest.approx(float(one), rel=1e-12, abs=1e-13)
    # obs transposed, numpy axis and torch give the same numbers
    assert np.allclose(fn(sim, obs.transpose("cell", "time"), dim="time"), per_cell, rtol=1e-13)
    assert np.allclose(fn(sim.values, obs.values, dim=0), per_cell.values, rtol=1e-13)
    as_torch = fn(torch.tensor(sim.values.T), torch.tensor(obs.values.T), dim=-1)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float64
    assert np.allclose(as_torch.numpy(), per_cell.values, rtol=1e-12)
    # dim=None reduces everything: same as the flattened series
    flat = fn(sim.values.ravel(), obs.values.ravel())
    assert float(fn(sim, obs)) == pytest.approx(float(flat), rel=1e-12, abs=1e-13)


def test_reduce_over_several_dims_keeps_the_others() -> None:
    rng = np.random.default_rng(5)
    obs = xr.DataArray(rng.gamma(2.0, 30.0, (40, 3, 4)), dims=("time", "member", "cell"))
    sim = obs * 0.9 + rng.normal(0.0, 5.0, obs.shape)
    got = M.kge(sim, obs, dim=["time", "member"])
    assert got.dims == ("cell",)
    for c in range(4):
        ref = M.kge(sim.values[:, :, c].ravel(), obs.values[:, :, c].ravel())
        assert float(got[c]) == pytest.approx(float(ref), rel=1e-12)


def test_float32_inputs_are_computed_in_float64() -> None:
    sim, obs = _series(1000, seed=9)
    lo = M.nse(sim.astype(np.float32), obs.astype(np.float32))
    ref = M.nse(
        sim.astype(np.float32).astype(np.float64), obs.astype(np.float32).astype(np.float64)
    )
    assert lo.dtype == np.float64 and float(lo) == float(ref)


def test_torch_metrics_are_differentiable() -> None:
    sim, obs = _series(24, seed=10)
    obs[5] = np.nan
    o = torch.tensor(obs)
    for fn in (M.nse, M.kge, M.rmse, M.pearson_r):
        s = torch.tensor(sim, requires_grad=True)
        assert torch.autograd.gradcheck(partial(fn, obs=o), (s,))
    s = torch.tensor(sim, requires_grad=True)
    (1.0 - M.kge(s, o)).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad[5] == 0.0


# ---- errors -----------------------------------------------------------------------------------


def _raises(rule: str, variable: str, fn: Callable[[], Any]) -> M.MetricError:
    with pytest.raises(M.MetricError) as info:
        fn()
    assert (info.value.rule, info.value.variable) == (rule, variable)
    assert variable in str(info.value)
    assert isinstance(info.value, VariableError) and isinstance(info.value, ValueError)
    return info.value


def test_shape_dims_and_coordinate_mismatches() -> None:
    _raises("shape", "hfls", lambda: M.nse(np.ones(5), np.ones(6), name="hfls"))
    _raises("shape", "values", lambda: M.rmse(torch.ones(2, 3), torch.ones(3, 2)))
    sim, obs = _cells()
    _raises("shape", "hfls", lambda: M.nse(sim, obs.isel(time=slice(1, None))))
    _raises("dims", "hfls", lambda: M.nse(sim, obs.rename(cell="site")))
    shifted = obs.assign_coords(cell=obs["cell"] + 1)
    _raises("coords", "hfls", lambda: M.nse(sim, shifted))
    _raises("type", "hfls", lambda: M.nse(sim, cast(Any, obs.values)))
    _raises("type", "values", lambda: M.nse(torch.ones(3), cast(Any, np.ones(3))))
    _raises("dtype", "values", lambda: M.nse(np.array(["a", "b"]), np.ones(2)))
    _raises("dtype", "hfls", lambda: M.nse(sim, obs.astype(str)))
    _raises("dtype", "values", lambda: M.nse(torch.ones(3), torch.ones(3, dtype=torch.bool)))
    _raises("units", "hfls", lambda: M.nse(sim.assign_attrs(units="kW m-2"), obs))


def test_bad_dims() -> None:
    sim, obs = _cells()
    _raises("dim", "hfls", lambda: M.nse(sim, obs, dim="lat"))
    _raises("dim", "hfls", lambda: M.nse(sim, obs, dim=[]))
    _raises("dim", "lai", lambda: M.nse(sim.values, obs.values, dim="time", name="lai"))
    _raises("dim", "lai", lambda: M.nse(sim.values, obs.values, dim=2, name="lai"))


def test_all_nan_is_refused_and_names_the_slice() -> None:
    sim, obs = _series(50, seed=12)
    _raises("valid_pairs", "values", lambda: M.rmse(sim, np.full_like(obs, np.nan)))
    # NaNs in alternating places: no pair where both are present
    s2, o2 = sim.copy(), obs.copy()
    s2[::2], o2[1::2] = np.nan, np.nan
    _raises("valid_pairs", "mrsos", lambda: M.bias(s2, o2, name="mrsos"))
    xs, xo = _cells()
    xo[:, 2] = np.nan
    err = _raises("valid_pairs", "hfls", lambda: M.kge(xs, xo, dim="time"))
    assert "cell=103" in str(err) and "1 of 5" in str(err)
    lax = M.kge(xs, xo, dim="time", strict=False)
    assert np.isnan(lax[2]) and np.isfinite(lax.values[[0, 1, 3, 4]]).all()


def test_zero_variance_observations_make_nse_undefined() -> None:
    xs, xo = _cells()
    xo[:, 1] = 290.0
    err = _raises("obs_variance", "hfls", lambda: M.nse(xs, xo, dim="time"))
    assert "NSE" in str(err) and "cell=102" in str(err)
    for fn in (M.kge, M.pearson_r, M.std_ratio):
        _raises("obs_variance", "hfls", partial(fn, xs, xo, dim="time"))
    # metrics that do not need the spread of obs still work for that cell
    assert np.isfinite(M.rmse(xs, xo, dim="time")).all()
    lax = M.nse(xs, xo, dim="time", strict=False)
    assert np.isnan(lax[1]) and np.isfinite(lax.values[[0, 2, 3, 4]]).all()
    # a constant in float64 that is not exactly representable: still recognised as constant
    _raises("obs_variance", "tas", lambda: M.nse(np.arange(9.0), np.full(9, 0.1), name="tas"))


def test_other_undefined_cases() -> None:
    sim, obs = _series(60, seed=13)
    _raises("sim_variance", "values", lambda: M.pearson_r(np.full_like(obs, 3.0), obs))
    centred = obs - obs.mean()
    _raises("obs_mean", "values", lambda: M.kge(sim, centred))
    _raises("obs_sum", "values", lambda: M.rbias(sim, centred))
    _raises("sim_mean", "values", lambda: M.kge(sim - sim.mean(), obs, variant=K12))
    bad = obs.copy()
    bad[3] = np.inf
    _raises("finite", "values", lambda: M.mae(sim, bad))


# ---- skill tables -----------------------------------------------------------------------------


def _datasets() -> tuple[xr.Dataset, xr.Dataset]:
    xs, xo = _cells(n_time=120, n_cell=3)
    rng = np.random.default_rng(14)
    lai_o = xr.DataArray(rng.gamma(3.0, 1.0, xo.shape), xo.coords, xo.dims, attrs={"units": "1"})
    lai_s = lai_o * 1.1 + rng.normal(0.0, 0.3, xo.shape)
    obs = xr.Dataset({"hfls": xo, "lai": lai_o})
    sim = xr.Dataset({"hfls": xs, "lai": lai_s, "hfss": xs * 0.5})  # hfss: no obs, ignored
    return sim, obs


def test_skill_table_rows_equal_the_metric_functions() -> None:
    sim, obs = _datasets()
    table = M.skill_table(sim, obs)
    assert list(table.index) == ["hfls", "lai"] and table.index.name == "variable"
    assert list(table.columns) == ["units", "n", *M.DEFAULT_METRICS]
    assert list(table["units"]) == ["W m-2", "1"]
    n_valid = int((~(np.isnan(sim["hfls"]) | np.isnan(obs["hfls"]))).sum())
    assert table.loc["hfls", "n"] == n_valid and table["n"].dtype == np.int64
    for var in ("hfls", "lai"):
        for key, fn in ALL.items():
            assert table.loc[var, key] == pytest.approx(float(fn(sim[var], obs[var])), rel=1e-14)
    t12 = M.skill_table(sim, obs, "lai", metrics=["kge"], kge_variant=K12)
    assert list(t12.index) == ["lai"] and list(t12.columns) == ["units", "n", "kge"]
    assert t12.loc["lai", "kge"] == pytest.approx(float(M.kge(sim.lai, obs.lai, variant=K12)))
    assert t12.attrs["kge_variant"] == "2012"


def test_skill_table_per_cell_and_serialisation() -> None:
    sim, obs = _datasets()
    obs["hfls"][:, 0] = 250.0  # constant obs at cell 101: NSE/KGE/r/σ-ratio undefined there
    table = M.skill_table(sim, obs, dim="time", metrics=["nse", "rmse"], strict=False)
    assert table.index.names == ["variable", "cell"] and len(table) == 6
    assert np.isnan(table.loc[("hfls", 101), "nse"])
    assert table.loc[("lai", 103), "rmse"] == pytest.approx(
        float(M.rmse(sim.lai.sel(cell=103), obs.lai.sel(cell=103)))
    )
    records = json.loads(M.table_to_json(table))
    assert records[0] == {
        "variable": "hfls",
        "cell": 101,
        "units": "W m-2",
        "n": int(table.loc[("hfls", 101), "n"]),
        "nse": None,
        "rmse": pytest.approx(table.loc[("hfls", 101), "rmse"]),
    }
    md = M.table_to_markdown(table, digits=3).splitlines()
    assert md[0] == "| variable | cell | units | n | NSE | RMSE |"
    assert md[1] == "|:---|---:|:---|---:|---:|---:|"
    assert len(md) == 2 + 6 and md[2].startswith("| hfls | 101 | W m-2 | ")
    assert md[2].split(" | ")[4] == "—"  # undefined NSE
    rmse_cell = md[3].rstrip(" |").split(" | ")[-1]
    assert rmse_cell == f"{table.loc[('hfls', 102), 'rmse']:.3g}"
    with pytest.raises(M.MetricError, match="NSE undefined"):
        M.skill_table(sim, obs, dim="time", metrics=["nse"])


def test_markdown_escapes_pipes_and_needs_no_tabulate() -> None:
    frame = pd.DataFrame({"units": ["a|b"], "n": [3], "nse": [0.123456]}, index=["x"])
    frame.index.name = "variable"
    assert M.table_to_markdown(frame).splitlines()[2] == "| x | a\\|b | 3 | 0.1235 |"


def test_skill_table_errors() -> None:
    sim, obs = _datasets()
    _raises("present", "hfss", lambda: M.skill_table(sim, obs, ["hfss"]))
    _raises("known_metric", "metrics", lambda: M.skill_table(sim, obs, metrics=["nse", "r2"]))
    _raises("present", "variables", lambda: M.skill_table(sim[["hfss"]], obs))
    _raises("dim", "hfls", lambda: M.skill_table(sim, obs, dim="member"))


# ---- Taylor diagram ---------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _xy(line: Line2D) -> tuple[float, float]:
    """(θ, ρ) of a one-point line, as drawn."""
    return float(np.asarray(line.get_xdata())[0]), float(np.asarray(line.get_ydata())[0])


def test_taylor_diagram_png_and_point_positions(tmp_path: Path) -> None:
    stats = {"emulator": (0.92, 0.95), "reference model": (1.31, 0.81), "defaults": (0.6, 0.4)}
    fig = plots.taylor_diagram(stats, title="hfls")
    assert isinstance(fig, Figure)
    out = plots.save_png(fig, tmp_path / "sub" / "taylor.png", dpi=100)
    width, height = _png_size(Path(out))
    assert width > 300 and height > 300 and Path(out).stat().st_size > 15_000
    image = imread(out)
    assert image.shape[:2] == (height, width) and float(image[..., :3].std()) > 0.05
    ax = fig.axes[0]
    assert isinstance(ax, PolarAxes) and ax.get_thetamax() == pytest.approx(90.0)
    lines = {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}
    for label, (sd, r) in stats.items():
        line = lines[plots.GID_PREFIX + label]
        assert line.get_label() == label
        assert _xy(line) == pytest.approx((math.acos(r), sd), abs=1e-12)
    assert _xy(lines[plots.REFERENCE_GID]) == (0.0, 1.0)
    back = plots.plotted_points(ax)
    assert back.keys() == stats.keys()
    for label, (sd, r) in stats.items():
        assert back[label] == pytest.approx((sd, r), abs=1e-12)


def test_taylor_diagram_from_a_skill_table_into_given_axes() -> None:
    sim, obs = _datasets()
    table = M.skill_table(sim, obs, dim="time", strict=False)
    fig = Figure()
    left, right = fig.add_subplot(1, 2, 1, projection="polar"), fig.add_subplot(1, 2, 2, polar=True)
    assert plots.taylor_diagram(table, ax=right) is fig
    back = plots.plotted_points(right)
    assert len(back) == 6 and left.get_lines() == []
    sd, r = back["lai/102"]
    s, o = sim.lai.sel(cell=102), obs.lai.sel(cell=102)
    assert sd == pytest.approx(float(M.std_ratio(s, o, dim="time")))
    assert r == pytest.approx(float(M.pearson_r(s, o, dim="time")))


def test_negative_correlation_opens_the_half_disc(tmp_path: Path) -> None:
    fig = plots.taylor_diagram({"in phase": (1.1, 0.7), "anti": (0.8, -0.6)})
    ax = fig.axes[0]
    assert isinstance(ax, PolarAxes) and ax.get_thetamax() == pytest.approx(180.0)
    assert plots.plotted_points(ax)["anti"] == pytest.approx((0.8, -0.6))
    fs = fsspec.filesystem("memory")
    url = plots.save_png(fig, "memory://taylor-test/anti.png")
    assert fs.cat(url)[:8] == b"\x89PNG\r\n\x1a\n"
    fs.rm("memory://taylor-test", recursive=True)


def test_taylor_diagram_errors() -> None:
    _raises("pearson_r", "bad", lambda: plots.taylor_diagram({"bad": (1.0, 1.2)}))
    _raises("std_ratio", "bad", lambda: plots.taylor_diagram({"bad": (-0.1, 0.5)}))
    _raises("std_ratio", "nan", lambda: plots.taylor_diagram({"nan": (float("nan"), 0.5)}))
    _raises("non_empty", "stats", lambda: plots.taylor_diagram({}))
    cartesian = Figure().add_subplot()
    _raises("polar", "ax", lambda: plots.taylor_diagram({"a": (1.0, 0.9)}, ax=cartesian))
    table = pd.DataFrame({"nse": [0.5]}, index=["x"])
    _raises("columns", "stats", lambda: plots.taylor_diagram(table))


def test_plotting_leaves_global_matplotlib_state_alone(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib\n"
        "rc = matplotlib.rcParams\n"  # reading rc['backend'] would resolve it: leave it out
        "before = {k: rc[k] for k in rc if k != 'backend'}\n"
        "from emulators import plots\n"
        f"plots.save_png(plots.taylor_diagram({{'a': (1.0, 0.9)}}), {str(tmp_path / 'p.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert {k: rc[k] for k in rc if k != 'backend'} == before\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.png").stat().st_size > 10_000
