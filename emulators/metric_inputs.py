"""Input handling of the skill metrics (``emulators.metrics``): pairing ``sim`` with ``obs`` —
xarray DataArrays (dims, coordinates and units checked), numpy arrays or torch tensors — resolving
``dim`` to axes, and wrapping results back into the input's kind. Refusals are
:class:`MetricError` naming the variable and the rule."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from emulators.variables import VariableError

Dim = Hashable | Sequence[Hashable] | None
#: metric key -> (display label, True when the metric is in the units of obs)
Describe = Callable[[str], tuple[str, bool]]


class MetricError(VariableError):
    """A metric cannot be computed. ``variable`` names the series, ``rule`` the violated rule:
    type, dtype, units, shape, dims, coords, dim, finite, valid_pairs, obs_variance, sim_variance,
    obs_mean, sim_mean, obs_sum, known_metric, present."""


@dataclass(frozen=True)
class Ctx:
    """How to report a slice: variable name, strictness, and a locator for result positions."""

    name: str
    strict: bool
    out_shape: tuple[int, ...]
    locate: Callable[[tuple[int, ...]], str]


@dataclass(frozen=True)
class Prepared:
    s: Any
    o: Any
    axes: tuple[int, ...]
    ctx: Ctx
    wrap: Callable[[Any, str], Any]  # (keepdims values, metric key) -> result of the input kind


def _name_of(sim: Any, obs: Any, name: str | None) -> str:
    if name is not None:
        return name
    for x in (obs, sim):
        if isinstance(x, xr.DataArray) and x.name is not None:
            return str(x.name)
    return "values"


def _axes(name: str, dim: Dim, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    given = [dim] if isinstance(dim, int) or not isinstance(dim, Sequence) else list(dim)
    items = [a for a in given if isinstance(a, int) and not isinstance(a, bool)]
    if not items or len(items) != len(given):
        raise MetricError(name, "dim", f"{name}: dim must be None, an axis or axes, got {dim!r}")
    if any(not -ndim <= a < ndim for a in items):
        raise MetricError(name, "dim", f"{name}: axis {dim!r} out of range for {ndim}-d input")
    return tuple(sorted({a % ndim for a in items}))


def prepare(
    sim: Any, obs: Any, dim: Dim, name: str | None, strict: bool, describe: Describe
) -> Prepared:
    label = _name_of(sim, obs, name)
    kinds = {type(x).__name__ for x in (sim, obs)}
    if isinstance(sim, xr.DataArray) or isinstance(obs, xr.DataArray):
        if not (isinstance(sim, xr.DataArray) and isinstance(obs, xr.DataArray)):
            raise MetricError(
                label, "type", f"{label}: sim and obs must both be DataArrays: {kinds}"
            )
        return _prepare_xarray(sim, obs, dim, label, strict, describe)
    if isinstance(sim, torch.Tensor) != isinstance(obs, torch.Tensor):
        raise MetricError(label, "type", f"{label}: sim and obs must both be tensors: {kinds}")
    s: Any
    o: Any
    if isinstance(sim, torch.Tensor):
        for what, x in (("sim", sim), ("obs", obs)):
            if x.dtype == torch.bool or x.is_complex():
                raise MetricError(label, "dtype", f"{label}: {what} has dtype {x.dtype}")
        s, o = sim.to(torch.float64), obs.to(torch.float64)
    else:
        s, o = np.asarray(sim), np.asarray(obs)
        for what, x in (("sim", s), ("obs", o)):
            if x.dtype.kind not in "fiu":
                msg = f"{label}: {what} has non-numeric dtype {x.dtype}"
                raise MetricError(label, "dtype", msg)
        s, o = s.astype(np.float64), o.astype(np.float64)
    if s.shape != o.shape:
        msg = f"{label}: sim shape {tuple(s.shape)} != obs shape {tuple(o.shape)}"
        raise MetricError(label, "shape", msg)
    axes = _axes(label, dim, s.ndim)
    out_shape = tuple(int(n) for i, n in enumerate(s.shape) if i not in axes)

    def wrap(values: Any, key: str) -> Any:
        return values.reshape(out_shape)

    ctx = Ctx(label, strict, out_shape, lambda idx: f"index {idx} of the unreduced axes")
    return Prepared(s, o, axes, ctx, wrap)


def _prepare_xarray(
    sim: xr.DataArray, obs: xr.DataArray, dim: Dim, label: str, strict: bool, describe: Describe
) -> Prepared:
    for what, x in (("sim", sim), ("obs", obs)):
        if x.dtype.kind not in "fiu":
            raise MetricError(label, "dtype", f"{label}: {what} has non-numeric dtype {x.dtype}")
    units_s, units = sim.attrs.get("units"), str(obs.attrs.get("units", ""))
    if units_s is not None and "units" in obs.attrs and str(units_s) != units:
        raise MetricError(label, "units", f"{label}: sim units {units_s!r} != obs units {units!r}")
    if set(sim.dims) != set(obs.dims):
        raise MetricError(label, "dims", f"{label}: sim dims {sim.dims} != obs dims {obs.dims}")
    if any(sim.sizes[d] != obs.sizes[d] for d in sim.dims):
        msg = f"{label}: sim sizes {dict(sim.sizes)} != obs sizes {dict(obs.sizes)}"
        raise MetricError(label, "shape", msg)
    try:
        sim, obs = xr.align(sim, obs, join="exact")
    except ValueError as exc:
        raise MetricError(
            label, "coords", f"{label}: sim and obs coordinates differ: {exc}"
        ) from None
    obs = obs.transpose(*sim.dims)
    if dim is None:
        names = list(sim.dims)
    else:
        names = [dim] if isinstance(dim, str) or not isinstance(dim, Sequence) else list(dim)
    missing = [d for d in names if d not in sim.dims]
    if not names or missing:
        raise MetricError(label, "dim", f"{label}: dim {dim!r} not among the dims {sim.dims}")
    axes = tuple(sorted({sim.dims.index(d) for d in names}))
    reduced = [sim.dims[a] for a in axes]
    template = sim.isel(dict.fromkeys(reduced, 0), drop=True)
    out_shape = tuple(template.shape)

    def wrap(values: Any, key: str) -> xr.DataArray:
        metric_label, obs_units = describe(key)
        attrs = {"long_name": f"{metric_label} of {label}", "variable": label}
        attrs["units"] = units if obs_units else "1"
        data = np.asarray(values).reshape(out_shape)
        return xr.DataArray(data, coords=template.coords, dims=template.dims, name=key, attrs=attrs)

    def locate(idx: tuple[int, ...]) -> str:
        parts = []
        for d, i in zip(template.dims, idx, strict=True):
            has_index = d in template.indexes
            label_i = template[d].values[i]
            label_i = label_i.item() if isinstance(label_i, np.generic) else label_i
            parts.append(f"{d}={label_i!r}" if has_index else f"{d}[{i}]")
        return ", ".join(parts)

    ctx = Ctx(label, strict, out_shape, locate)
    return Prepared(
        np.asarray(sim.data, np.float64), np.asarray(obs.data, np.float64), axes, ctx, wrap
    )
