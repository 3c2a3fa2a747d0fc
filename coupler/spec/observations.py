"""Observation batches for assimilation: the format checks every batch passes first.

A batch is one observed variable (an ``observable`` registry entry: lai, hfls, hfss, ts) with
values, error standard deviations, locations and valid times, all (obs,). :func:`parse` refuses a
malformed batch with InvalidArgument naming the field (``<prefix>values``, ``<prefix>errors``,
``<prefix>lat``, ...) and the rule, and returns it as float64 arrays and datetime64[s] times
(:class:`Parsed`); a request is accepted or refused as a whole. Whether an observation fits the
session (its domain, its ensemble's history) is checked afterwards by the session
(``coupler.core.assimilate``). Used by the clients, the gRPC servicer and the Zarr
observation file reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coupler.errors import InvalidArgument
from emulators import variables as V

#: Most observations in one request.
MAX_OBSERVATIONS = 10_000_000


@dataclass(frozen=True, eq=False)
class ObservationBatch:
    """type: registry name; values, errors (same units, errors > 0), lat (degrees_north),
    lon (degrees_east): (obs,) arrays; times: (obs,) RFC 3339 UTC strings or datetime64;
    units: the sender's units ("" = not stated; else must equal the registry's)."""

    type: str
    values: Any
    errors: Any
    lat: Any
    lon: Any
    times: Any
    units: str = ""


def _bad(field: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, field=field, rule=rule)


def _vector(prefix: str, name: str, values: Any, n: int | None) -> np.ndarray:
    arr = np.asarray(values)
    field = prefix + name
    if arr.dtype.kind not in "fiu":
        raise _bad(field, "dtype", f"{field}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(obs,)"
        raise _bad(field, "shape", f"{field}: shape {arr.shape}, expected {want}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise _bad(field, "finite", f"{field}: {bad} non-finite value(s)")
    return out


def _times(prefix: str, values: Any, n: int) -> np.ndarray:
    field = prefix + "times"
    items = list(values) if not isinstance(values, str | bytes) else [values]
    if len(items) != n:
        raise _bad(field, "shape", f"{field}: {len(items)} times, expected {n}")
    out = np.empty(n, dtype="datetime64[s]")
    for i, item in enumerate(items):
        try:
            if isinstance(item, np.datetime64):
                out[i] = item.astype("datetime64[s]")
                if np.isnat(out[i]):
                    raise ValueError("NaT")
                continue
            t = dt.datetime.fromisoformat(str(item))
            if t.tzinfo is not None:
                t = t.astimezone(dt.UTC).replace(tzinfo=None)
            out[i] = np.datetime64(t, "s")
        except (ValueError, TypeError, OverflowError):
            raise _bad(
                field, "rfc3339", f"{field}[{i}]: {str(item)[:40]!r} is not an RFC 3339 time"
            ) from None
    return out


@dataclass(frozen=True, eq=False)
class Parsed:
    """A checked batch: ``type`` registry name; float64 (obs,) ``values``, ``errors`` (> 0, the
    variable's units), ``lat``, ``lon`` (degrees); ``times`` datetime64[s] (UTC)."""

    type: str
    values: np.ndarray
    errors: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


def validate(batch: ObservationBatch, prefix: str = "") -> int:
    """Check one batch; returns its number of observations."""
    return len(parse(batch, prefix))


def parse(batch: ObservationBatch, prefix: str = "") -> Parsed:
    """Check one batch (see the module docstring) and return it as arrays."""
    var = V.REGISTRY.get(batch.type)
    if var is None or not var.observable:
        allowed = ", ".join(V.OBSERVABLE)
        raise _bad(
            prefix + "type",
            "observable",
            f"{prefix}type: {batch.type!r} is not an observable variable ({allowed})",
        )
    if batch.units and batch.units != var.units:
        raise _bad(
            prefix + "units",
            "units",
            f"{prefix}units: {batch.units!r}, expected {var.units!r} for {var.name}",
        )
    values = _vector(prefix, "values", batch.values, None)
    n = values.shape[0]
    if n == 0:
        raise _bad(prefix + "values", "non_empty", f"{prefix}values: an empty batch")
    if n > MAX_OBSERVATIONS:
        raise _bad(
            prefix + "values",
            "max_observations",
            f"{prefix}values: {n} observations > {MAX_OBSERVATIONS}",
        )
    try:
        V.check(var.name, values)
    except V.VariableError as exc:
        raise _bad(prefix + "values", exc.rule, f"{prefix}values: {exc}") from None
    errors = _vector(prefix, "errors", batch.errors, n)
    if errors.min() <= 0.0:
        raise _bad(
            prefix + "errors",
            "positive",
            f"{prefix}errors: observation error standard deviations must be > 0",
        )
    lat = _vector(prefix, "lat", batch.lat, n)
    if lat.min() < -90.0 or lat.max() > 90.0:
        raise _bad(prefix + "lat", "valid_range", f"{prefix}lat: outside [-90, 90] degrees_north")
    lon = _vector(prefix, "lon", batch.lon, n)
    if lon.min() < -360.0 or lon.max() > 360.0:
        raise _bad(prefix + "lon", "valid_range", f"{prefix}lon: outside [-360, 360] degrees_east")
    times = _times(prefix, batch.times, n)
    return Parsed(var.name, values, errors, lat, lon, times)


def validate_all(batches: Sequence[ObservationBatch]) -> int:
    """Check every batch (refusing the request as a whole); returns the observation count."""
    return sum(len(p) for p in parse_all(batches))


def parse_all(batches: Sequence[ObservationBatch]) -> list[Parsed]:
    """Check every batch (``batches[i].`` prefixes; the request is refused as a whole)."""
    if not batches:
        raise _bad("batches", "non_empty", "batches: no observation batch given")
    parsed = [parse(batch, prefix=f"batches[{i}].") for i, batch in enumerate(batches)]
    total = sum(len(p) for p in parsed)
    if total > MAX_OBSERVATIONS:
        raise _bad("batches", "max_observations", f"batches: {total} > {MAX_OBSERVATIONS}")
    return parsed
