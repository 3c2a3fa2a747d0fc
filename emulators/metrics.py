"""Skill metrics: how well a simulation ``sim`` matches observations (or a reference) ``obs``.

Every later result in landcoupler is reported in these (SCIENCE.md: NSE, RMSE, MAE in Trans-LAI;
RMSE, STD, Pearson R, KGE, NSE and Taylor diagrams in MdPL; bias, rBias, RMSD and correlation in
the DART LAI study). All metrics are pure functions of ``(sim, obs, dim)`` that take xarray
DataArrays, numpy arrays or torch tensors (both arguments of the same kind and shape) and reduce
over ``dim``: a dimension name or a sequence of names for DataArrays, an axis or a sequence of
axes for arrays and tensors, ``None`` for all. The result has the kind of the inputs (a DataArray
keeps the coordinates of the dimensions not reduced; numpy and torch give float64, 0-d when
everything is reduced; torch results keep the autograd graph, so metrics can serve as losses).

Missing data: a pair (sim, obs) where either is NaN is dropped, identically for every metric. An
infinity is never "missing" and is refused. Statistics are population statistics (divide by n),
computed in float64 with centred two-pass sums. Where a metric is undefined for a slice (no valid
pair, zero-variance observations, ...) a :class:`MetricError` names the variable, the rule and the
first offending slice; with ``strict=False`` such slices are NaN instead.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd
import torch
import xarray as xr

from emulators import tables
from emulators.metric_inputs import Ctx as _Ctx
from emulators.metric_inputs import Dim, MetricError, prepare

A = TypeVar("A", xr.DataArray, np.ndarray, torch.Tensor)

#: A standard deviation this small relative to the RMS of the values counts as zero (a constant
#: series computed in float64 has a spurious spread of a few ulps).
_ZERO_SPREAD = 64 * float(np.finfo(np.float64).eps)


class KGEVariant(enum.Enum):
    """Kling–Gupta efficiency variants, which differ only in the variability term γ."""

    KGE2009 = "2009"  # γ = σ_sim/σ_obs (Gupta et al. 2009; the form MdPL uses)
    KGE2012 = "2012"  # γ = CV_sim/CV_obs (Kling et al. 2012)


class KGEComponents(NamedTuple):
    kge: Any
    r: Any  # Pearson correlation
    beta: Any  # mean_sim / mean_obs
    gamma: Any  # variability ratio (σ ratio for 2009, CV ratio for 2012)


# ---- pairing, reduction statistics ----------------------------------------------------------


@dataclass(frozen=True)
class _Stats:
    """Per-slice statistics over valid pairs (keepdims arrays, float64; population moments)."""

    xp: Any  # numpy or torch
    n: Any
    mean_s: Any
    mean_o: Any
    var_s: Any
    var_o: Any
    cov: Any
    mse: Any  # mean (s - o)²
    mae: Any  # mean |s - o|
    crms: Any  # mean ((s - s̄) - (o - ō))²
    spread_s: Any  # True where sim has non-zero spread
    spread_o: Any  # True where obs has non-zero spread
    mean_s_ok: Any  # True where the mean of sim is not zero
    mean_o_ok: Any  # True where the mean of obs is not zero


def _stats(s: Any, o: Any, axes: tuple[int, ...], ctx: _Ctx) -> _Stats:
    xp = torch if isinstance(s, torch.Tensor) else np
    if bool((xp.isinf(s) | xp.isinf(o)).any()):
        raise MetricError(ctx.name, "finite", f"{ctx.name}: sim or obs holds infinite values")
    valid = ~(xp.isnan(s) | xp.isnan(o))
    s = xp.where(valid, s, 0.0)
    o = xp.where(valid, o, 0.0)

    def total(x: Any) -> Any:
        return xp.sum(x, axis=axes, keepdims=True)

    n = total(valid.to(torch.float64) if xp is torch else valid.astype(np.float64))
    inv_n = 1.0 / xp.where(n > 0, n, 1.0)
    mean_s, mean_o = total(s) * inv_n, total(o) * inv_n
    ds = xp.where(valid, s - mean_s, 0.0)
    do = xp.where(valid, o - mean_o, 0.0)
    diff = s - o
    var_s, var_o = total(ds * ds) * inv_n, total(do * do) * inv_n
    # a spread (or mean) of a few ulps of the RMS value, as a constant (or centred) series in
    # float64 has, is exactly zero
    tiny_s, tiny_o = _ZERO_SPREAD**2 * total(s * s) * inv_n, _ZERO_SPREAD**2 * total(o * o) * inv_n
    spread_s, spread_o = var_s > tiny_s, var_o > tiny_o
    var_s, var_o = xp.where(spread_s, var_s, 0.0), xp.where(spread_o, var_o, 0.0)
    return _Stats(
        xp=xp,
        n=n,
        mean_s=mean_s,
        mean_o=mean_o,
        var_s=var_s,
        var_o=var_o,
        cov=total(ds * do) * inv_n,
        mse=total(diff * diff) * inv_n,
        mae=total(xp.abs(diff)) * inv_n,
        crms=total((ds - do) ** 2) * inv_n,
        spread_s=spread_s,
        spread_o=spread_o,
        mean_s_ok=mean_s * mean_s > tiny_s,
        mean_o_ok=mean_o * mean_o > tiny_o,
    )


def _guard(st: _Stats, ctx: _Ctx, value: Any, ok: Any, metric: str, rule: str, why: str) -> Any:
    """NaN (strict=False) or a MetricError (strict) where ``ok`` is False."""
    bad = ~ok
    if not bool(bad.any()):
        return value
    if not ctx.strict:
        return st.xp.where(ok, value, float("nan"))
    flags = bad.reshape(ctx.out_shape)
    flags = flags.cpu().numpy() if isinstance(flags, torch.Tensor) else np.asarray(flags)
    first = tuple(int(i) for i in np.argwhere(flags)[0])
    where = f" at {ctx.locate(first)}" if ctx.out_shape else ""
    count = f" ({int(flags.sum())} of {flags.size} slices)" if flags.size > 1 else ""
    raise MetricError(ctx.name, rule, f"{ctx.name}: {metric} undefined, {why}{where}{count}")


def _pairs(st: _Stats, ctx: _Ctx, value: Any, metric: str) -> Any:
    return _guard(st, ctx, value, st.n > 0, metric, "valid_pairs", "no valid (non-NaN) pairs")


# ---- the metric formulas on statistics --------------------------------------------------------


def _nse(st: _Stats, ctx: _Ctx) -> Any:
    value = _pairs(st, ctx, 1.0 - st.mse / st.var_o, "NSE")
    return _guard(st, ctx, value, st.spread_o, "NSE", "obs_variance", "observations are constant")


def _r(st: _Stats, ctx: _Ctx, metric: str = "Pearson r") -> Any:
    value = _pairs(st, ctx, st.cov / st.xp.sqrt(st.var_s * st.var_o), metric)
    value = _guard(st, ctx, value, st.spread_o, metric, "obs_variance", "observations are constant")
    return _guard(st, ctx, value, st.spread_s, metric, "sim_variance", "simulation is constant")


def _std_ratio(st: _Stats, ctx: _Ctx, metric: str = "std ratio") -> Any:
    value = _pairs(st, ctx, st.xp.sqrt(st.var_s / st.var_o), metric)
    return _guard(st, ctx, value, st.spread_o, metric, "obs_variance", "observations are constant")


def _kge_parts(st: _Stats, ctx: _Ctx, variant: KGEVariant) -> KGEComponents:
    metric = f"KGE({variant.value})"
    r = _r(st, ctx, metric)
    beta = _guard(st, ctx, st.mean_s / st.mean_o, st.mean_o_ok, metric, "obs_mean", "mean obs is 0")
    gamma = _std_ratio(st, ctx, metric)
    if variant is KGEVariant.KGE2012:
        ok = st.mean_s_ok
        gamma = _guard(
            st, ctx, gamma / beta, ok, metric, "sim_mean", "mean sim is 0 (CV undefined)"
        )
    kge = 1.0 - st.xp.sqrt((r - 1.0) ** 2 + (beta - 1.0) ** 2 + (gamma - 1.0) ** 2)
    return KGEComponents(kge, r, beta, gamma)


def _kge(st: _Stats, ctx: _Ctx, variant: KGEVariant = KGEVariant.KGE2009) -> Any:
    return _kge_parts(st, ctx, variant).kge


def _rbias(st: _Stats, ctx: _Ctx) -> Any:
    value = _pairs(st, ctx, (st.mean_s - st.mean_o) / st.mean_o, "rBias")
    return _guard(st, ctx, value, st.mean_o_ok, "rBias", "obs_sum", "sum of obs is 0")


def _rmsd(st: _Stats, ctx: _Ctx) -> Any:
    return _pairs(st, ctx, st.xp.sqrt(st.crms), "RMSD")


class _Metric(NamedTuple):
    label: str  # display name (tables, long_name)
    formula: Callable[[_Stats, _Ctx], Any]
    obs_units: bool  # True: in the units of obs; False: dimensionless


_METRICS: dict[str, _Metric] = {
    "nse": _Metric("NSE", _nse, False),
    "kge": _Metric("KGE", _kge, False),
    "rmse": _Metric("RMSE", lambda st, c: _pairs(st, c, st.xp.sqrt(st.mse), "RMSE"), True),
    "mae": _Metric("MAE", lambda st, c: _pairs(st, c, st.mae, "MAE"), True),
    "bias": _Metric("bias", lambda st, c: _pairs(st, c, st.mean_s - st.mean_o, "bias"), True),
    "rbias": _Metric("rBias", _rbias, False),
    "pearson_r": _Metric("r", _r, False),
    "std_ratio": _Metric("σ_sim/σ_obs", _std_ratio, False),
    "rmsd": _Metric("RMSD′", _rmsd, True),
}
#: The columns of :func:`skill_table` by default (all metrics).
DEFAULT_METRICS: tuple[str, ...] = tuple(_METRICS)


def _describe(key: str) -> tuple[str, bool]:
    metric = _METRICS.get(key)
    return (metric.label, metric.obs_units) if metric is not None else (key, False)


def _prepare(sim: Any, obs: Any, dim: Dim, name: str | None, strict: bool) -> Any:
    return prepare(sim, obs, dim, name, strict, _describe)


def _evaluate(
    key: str,
    formula: Callable[[_Stats, _Ctx], Any],
    sim: Any,
    obs: Any,
    dim: Dim,
    name: str | None,
    strict: bool,
) -> Any:
    prep = _prepare(sim, obs, dim, name, strict)
    with np.errstate(all="ignore"):
        values = formula(_stats(prep.s, prep.o, prep.axes, prep.ctx), prep.ctx)
    return prep.wrap(values, key)


# ---- public metrics ---------------------------------------------------------------------------


def nse(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Nash–Sutcliffe efficiency 1 − Σ(s−o)²/Σ(o−ō)², dimensionless, ≤ 1 (1 perfect; 0 no better
    than the observed mean). Undefined for constant observations."""
    return _evaluate("nse", _nse, sim, obs, dim, name, strict)


def kge(
    sim: A,
    obs: A,
    dim: Dim = None,
    *,
    variant: KGEVariant = KGEVariant.KGE2009,
    name: str | None = None,
    strict: bool = True,
) -> A:
    """Kling–Gupta efficiency 1 − √((r−1)² + (β−1)² + (γ−1)²), dimensionless, ≤ 1; β = mean_sim /
    mean_obs; γ = σ_sim/σ_obs (KGE2009, as in MdPL) or CV_sim/CV_obs (KGE2012)."""
    return _evaluate("kge", partial(_kge, variant=variant), sim, obs, dim, name, strict)


def kge_components(
    sim: A,
    obs: A,
    dim: Dim = None,
    *,
    variant: KGEVariant = KGEVariant.KGE2009,
    name: str | None = None,
    strict: bool = True,
) -> KGEComponents:
    """KGE with its components (kge, r, β, γ), each like :func:`kge`'s result."""
    prep = _prepare(sim, obs, dim, name, strict)
    with np.errstate(all="ignore"):
        parts = _kge_parts(_stats(prep.s, prep.o, prep.axes, prep.ctx), prep.ctx, variant)
    keys = ("kge", "pearson_r", "kge_beta", "kge_gamma")
    return KGEComponents(*(prep.wrap(v, k) for v, k in zip(parts, keys, strict=True)))


def rmse(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Root-mean-square error √mean((s−o)²), in the units of obs."""
    return _evaluate("rmse", _METRICS["rmse"].formula, sim, obs, dim, name, strict)


def mae(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Mean absolute error mean|s−o|, in the units of obs."""
    return _evaluate("mae", _METRICS["mae"].formula, sim, obs, dim, name, strict)


def bias(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Mean error mean(s) − mean(o), in the units of obs (positive: sim too high)."""
    return _evaluate("bias", _METRICS["bias"].formula, sim, obs, dim, name, strict)


def rbias(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Relative bias Σ(s−o)/Σo, dimensionless (DART LAI study's rBias; ×100 for percent)."""
    return _evaluate("rbias", _rbias, sim, obs, dim, name, strict)


def pearson_r(
    sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True
) -> A:
    """Pearson correlation coefficient cov(s,o)/(σ_s σ_o), in [−1, 1]."""
    return _evaluate("pearson_r", _r, sim, obs, dim, name, strict)


def std_ratio(
    sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True
) -> A:
    """Ratio of standard deviations σ_s/σ_o, dimensionless (Taylor diagram radius)."""
    return _evaluate("std_ratio", _std_ratio, sim, obs, dim, name, strict)


def rmsd(sim: A, obs: A, dim: Dim = None, *, name: str | None = None, strict: bool = True) -> A:
    """Centred RMS difference √mean(((s−s̄)−(o−ō))²) (Taylor 2001, E′), in the units of obs;
    E′² = σ_s² + σ_o² − 2σ_sσ_o r. The uncentred RMS difference is :func:`rmse`."""
    return _evaluate("rmsd", _rmsd, sim, obs, dim, name, strict)


# ---- tables -----------------------------------------------------------------------------------


def skill_table(
    sim: xr.Dataset,
    obs: xr.Dataset,
    variables: Iterable[str] | None = None,
    dim: Dim = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    kge_variant: KGEVariant = KGEVariant.KGE2009,
    strict: bool = True,
) -> pd.DataFrame:
    """One row per variable (and per coordinate of the dimensions not in ``dim``), columns
    ``units``, ``n`` (valid pairs) and the ``metrics`` (keys of :data:`DEFAULT_METRICS`).

    ``variables`` default to the data variables that both datasets hold. Serialise with
    :func:`table_to_records`, :func:`table_to_json` and :func:`table_to_markdown`.
    """
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown or not metrics:
        msg = f"metrics: unknown metric(s) {unknown}; known: {', '.join(_METRICS)}"
        raise MetricError("metrics", "known_metric", msg)
    if isinstance(variables, str):
        variables = [variables]
    names = list(variables) if variables is not None else [v for v in obs.data_vars if v in sim]
    frames, kept = [], None
    for var in map(str, names):
        if var not in sim or var not in obs:
            where = "sim" if var not in sim else "obs"
            raise MetricError(var, "present", f"{var}: not a variable of the {where} dataset")
        prep = _prepare(sim[var], obs[var], dim, var, strict)
        with np.errstate(all="ignore"):
            st = _stats(prep.s, prep.o, prep.axes, prep.ctx)
            cols = {"n": prep.wrap(st.n, "n")}
            for m in metrics:
                formula = _METRICS[m].formula
                formula = partial(_kge, variant=kge_variant) if m == "kge" else formula
                cols[m] = prep.wrap(formula(st, prep.ctx), m)
        dims = cols["n"].dims
        if kept is not None and dims != kept:
            raise MetricError(var, "dims", f"{var}: rows over {dims}, other variables over {kept}")
        kept = dims
        frame = (
            xr.Dataset(cols).to_dataframe()
            if dims
            else pd.DataFrame([{k: float(v) for k, v in cols.items()}])
        )
        frame = frame[["n", *metrics]].assign(variable=var, units=obs[var].attrs.get("units", ""))
        frames.append(frame.reset_index(drop=not dims))
    if not frames:
        raise MetricError("variables", "present", "variables: no variable common to sim and obs")
    table = pd.concat(frames, ignore_index=True)
    table["n"] = table["n"].astype(np.int64)
    table = table.set_index(["variable", *map(str, kept or ())])[["units", "n", *metrics]]
    table.attrs["kge_variant"] = kge_variant.value
    return table


def table_to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (index levels first); NaN becomes None, numpy scalars Python ones."""
    return tables.to_records(table)


def table_to_json(table: pd.DataFrame, indent: int | None = 2) -> str:
    """The table as a JSON array of row objects (strict JSON: missing values are null)."""
    return tables.to_json(table, indent)


def table_to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table with the metrics' labels as column heads."""
    return tables.to_markdown(table, digits, labels={k: m.label for k, m in _METRICS.items()})
