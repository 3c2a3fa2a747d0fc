"""Zarr observation files named in a session's config (``assimilation.observations_url``).

Layout (any Zarr store ``xarray.open_zarr(url)`` opens; one dimension ``obs``):

- ``type`` (obs): the observed registry variable, either as strings ("lai", "hfls", "hfss",
  "ts") or, recommended for Zarr v3 (which has no stable string type yet), as integer codes
  with the CF attributes ``flag_values`` (e.g. [0, 1, 2, 3]) and ``flag_meanings``
  (e.g. "lai hfls hfss ts");
- ``value`` (obs) float: the observation in the registry's units of its type;
- ``error`` (obs) float: its error standard deviation (> 0, same units);
- ``lat`` (obs) degrees_north, ``lon`` (obs) degrees_east;
- ``time`` (obs) datetime64 (CF-encoded, UTC): the start of the observation's window (00:00 UTC
  for the 8-day LAI composite and the daily LE/H means) or the overpass time (``ts``).

The whole file is read and checked when the session opens, with the same checks as Assimilate
batches (:mod:`coupler.spec.observations`) and the domain and day-alignment checks of
``EnsembleAssimilator.locate``; a refusal is InvalidArgument with field
``assimilation.observations_url.<name>`` and the rule. The session then queues each
observation once its window is complete (:class:`ObservationFile`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np

from coupler.assimilation.operators import WINDOWS, ObservationSet
from coupler.errors import FailedPrecondition, InvalidArgument
from coupler.spec.observations import ObservationBatch, Parsed, parse

FIELD = "assimilation.observations_url"
VARIABLES = ("type", "value", "error", "lat", "lon", "time")


def _types(ds: Any) -> np.ndarray:
    """The ``type`` variable as registry names (strings, or integer codes with flags)."""
    var = ds["type"]
    values = np.asarray(var.values)
    if values.dtype.kind in "USO":
        return values.astype(str)
    if values.dtype.kind not in "iu":
        raise InvalidArgument(
            f"{FIELD}.type: dtype {values.dtype}, expected strings or integer codes",
            field=FIELD + ".type",
            rule="dtype",
        )
    flags = np.asarray(var.attrs.get("flag_values", []))
    meanings = str(var.attrs.get("flag_meanings", "")).split()
    if flags.size == 0 or flags.size != len(meanings):
        raise InvalidArgument(
            f"{FIELD}.type: integer codes need flag_values and flag_meanings of equal length",
            field=FIELD + ".type",
            rule="flag_meanings",
        )
    lookup = dict(zip(flags.tolist(), meanings, strict=True))
    unknown = sorted(set(np.unique(values).tolist()) - set(lookup))
    if unknown:
        raise InvalidArgument(
            f"{FIELD}.type: codes {unknown} are not in flag_values",
            field=FIELD + ".type",
            rule="flag_values",
        )
    return np.array([lookup[int(v)] for v in values.tolist()], dtype=str)


def read(url: str) -> list[Parsed]:
    """The file's observations, one checked batch per type (see the module docstring)."""
    import xarray as xr

    try:
        ds = xr.open_zarr(url, consolidated=False, decode_times=True)
    except Exception as exc:  # any store/format failure: the URL is the problem
        raise FailedPrecondition(
            f"{FIELD}: cannot open {url!r} as a Zarr observation file: {exc}",
            field=FIELD,
            rule="readable",
        ) from None
    missing = [v for v in VARIABLES if v not in ds.variables]
    if missing:
        raise InvalidArgument(
            f"{FIELD}: {url!r} lacks {', '.join(missing)} (needs {', '.join(VARIABLES)})",
            field=FIELD,
            rule="layout",
        )
    bad_dims = [v for v in VARIABLES if ds[v].dims != ("obs",)]
    if bad_dims:
        raise InvalidArgument(
            f"{FIELD}: {', '.join(bad_dims)} must have the single dimension 'obs'",
            field=FIELD,
            rule="layout",
        )
    types = _types(ds)
    times = np.asarray(ds["time"].values)
    if times.dtype.kind != "M":
        raise InvalidArgument(
            f"{FIELD}.time: dtype {times.dtype}, expected CF-encoded times",
            field=FIELD + ".time",
            rule="dtype",
        )
    arrays = {v: np.asarray(ds[v].values) for v in ("value", "error", "lat", "lon")}
    out = []
    for name in dict.fromkeys(types.tolist()):
        sel = types == name
        batch = ObservationBatch(
            type=name,
            values=arrays["value"][sel],
            errors=arrays["error"][sel],
            lat=arrays["lat"][sel],
            lon=arrays["lon"][sel],
            times=list(times[sel].astype("datetime64[s]")),
        )
        try:
            out.append(parse(batch, prefix=f"{FIELD}."))
        except InvalidArgument as exc:
            raise _renamed(exc, f" ({name} observations in {url!r})") from None
    return out


#: the batch checks' names -> the file's variable names
_RENAME = {"values": "value", "errors": "error", "times": "time"}


def _renamed(exc: InvalidArgument, context: str = "") -> InvalidArgument:
    """``exc`` with its field named by the file's variable (``value`` not ``values``, ...)."""
    field = exc.field or FIELD
    head, _, tail = field.rpartition(".")
    field = f"{head}.{_RENAME.get(tail, tail)}" if head else field
    return InvalidArgument(f"{field}: {exc}{context}", field=field, rule=exc.rule)


def ready_time(obs: ObservationSet) -> np.ndarray:
    """(P,) int64 s since 1970: when each observation's window is complete (end of the window;
    for ``ts`` one second after the overpass, i.e. once the step containing it is done)."""
    t = obs.time.astype("datetime64[s]").astype(np.int64)
    w = np.array([WINDOWS[v] for v in obs.variable], dtype=np.int64)
    return np.where(w > 0, t + w, t + 1)


class ObservationFile:
    """The located observations of a file, in the order their windows complete, and a cursor:
    :meth:`due` returns those complete by ``now`` that were not returned before."""

    def __init__(self, obs: ObservationSet, cursor: int = 0) -> None:
        ready = ready_time(obs)
        order = np.argsort(ready, kind="stable")
        self.obs = ObservationSet(
            tuple(obs.variable[i] for i in order),
            obs.cell[order],
            obs.time[order],
            obs.value[order],
            obs.error_sd[order],
        )
        self.ready = ready[order]
        self.cursor = int(cursor)

    @staticmethod
    def load(url: str, locate: Callable[[Parsed, str], ObservationSet]) -> ObservationFile:
        """Read ``url`` and map every batch with ``locate(batch, prefix)``."""
        sets = []
        for p in read(url):
            try:
                sets.append(locate(p, f"{FIELD}."))
            except InvalidArgument as exc:
                raise _renamed(exc, f" ({p.type} observations in {url!r})") from None
        return ObservationFile(ObservationSet.concat(sets))

    def due(self, now: int) -> tuple[ObservationSet, int]:
        """(observations whose windows completed by ``now`` (s since 1970), the new cursor);
        the cursor is not advanced here (the caller commits it)."""
        stop = int(np.searchsorted(self.ready, now, side="right"))
        stop = max(stop, self.cursor)
        idx = np.arange(self.cursor, stop)
        sub = ObservationSet(
            tuple(self.obs.variable[i] for i in idx),
            self.obs.cell[idx],
            self.obs.time[idx],
            self.obs.value[idx],
            self.obs.error_sd[idx],
        )
        return sub, stop

    def __len__(self) -> int:
        return len(self.obs)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the located observations in order (types, cells, times, values, errors):
        checkpoints carry it, so a replay can tell that the file changed since."""
        h = hashlib.sha256(" ".join(self.obs.variable).encode())
        for a in (self.obs.cell, self.obs.time, self.obs.value, self.obs.error_sd):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


__all__ = ["FIELD", "ObservationFile", "read", "ready_time"]
