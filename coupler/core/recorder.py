"""Session records: every exchanged field, in and out, per step, to a Zarr v3 store via fsspec.

Layout (opens with ``xarray.open_zarr(url)``; pass ``consolidated=False`` to skip the lookup
of consolidated metadata, which is not written because it is not part of Zarr v3 and would go
stale between chunk writes):

- dims ``(time, cell)``; the time index *is* the step index (row i = step i).
- coordinates ``time`` (CF "seconds since <start>"), ``lat(cell)``, ``lon(cell)``, and when
  the grid has them ``areacella(cell)`` m2 and ``sftlf(cell)`` % (= 100 * land_fraction).
- one float64 variable per exchanged field, named by its registry name with the registry's CF
  attributes: forcing as received (float32 input is widened exactly), outputs as replied (the
  ensemble mean) and ``<name>_spread``. If a name were both input and output, the two would be
  ``in_<name>`` / ``out_<name>`` (none collide today). Steps where an optional field (``co2``)
  was not sent hold NaN.
- sessions with assimilation: float64 ``(time,)`` arrays ``assim_<name>`` holding the
  diagnostics of the analysis run at the start of that step (NaN on steps without one):
  ``n_obs``, ``n_used``, ``n_rejected``, ``innovation_mean``, ``innovation_rms``,
  ``obs_prior_spread``, ``prior_spread``, ``posterior_spread``, ``inflation_mean``,
  ``n_clipped``, and per observation type ``assim_<type>_<stat>`` (``n_obs``, ``n_used``,
  ``rejected_<reason>``, ``innovation_mean``, ``innovation_rms``, ``obs_prior_spread``);
  created at the first analysis.
- group attributes: ``session_config`` (JSON, grid summarised), ``backend`` (JSON identity),
  ``code_version``, ``library_versions``, ``created`` (UTC), ``chunk_steps``, ``history``.

Writes never stall a step on I/O: ``record`` puts the step on a bounded queue that a background
thread drains into per-chunk buffers; a full time chunk is written as soon as it fills, and the
partial chunk on ``flush``/``close``. A full queue makes ``record`` wait (data is never dropped)
and is counted in the metrics. A crash loses at most the steps of the chunk being filled.
"""

from __future__ import annotations

import datetime as _dt
import json
import queue
import threading
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import zarr

from coupler.core import provenance
from coupler.core.telemetry import MetricsSink
from coupler.errors import FailedPrecondition
from coupler.spec import SessionSpec
from emulators import variables as V


@runtime_checkable
class Recorder(Protocol):
    """What a session needs from a recorder."""

    def record(
        self,
        index: int,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        analysis: Mapping[str, float] | None = None,
    ) -> None:
        """Queue step ``index``'s (cell,) inputs and outputs, and the scalar diagnostics of an
        analysis run in that step (``assim_<name>``). The arrays must not be modified
        afterwards (the session hands over read-only arrays)."""
        ...

    def check(self) -> None:
        """Raise if the recorder has failed (so the session refuses the step, state intact)."""
        ...

    def flush(self) -> None:
        """Block until everything queued so far is written (partial chunk included)."""
        ...

    def close(self) -> None:
        """Flush and stop; idempotent."""
        ...


@dataclass
class _Step:
    index: int
    fields: dict[str, np.ndarray]


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()
#: prefix of the per-step scalar (time,) arrays of assimilation diagnostics
ANALYSIS_PREFIX = "assim_"


def variable_names(inputs: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, str]:
    """Map ``in:<name>`` / ``out:<name>`` to the stored variable name, prefixing collisions."""
    clash = set(inputs) & set(outputs)
    names = {f"in:{n}": (f"in_{n}" if n in clash else n) for n in inputs}
    names.update({f"out:{n}": (f"out_{n}" if n in clash else n) for n in outputs})
    return names


def _array(group: zarr.Group, name: str) -> zarr.Array:
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name!r} in the record is a group, expected an array")
    return node


def _attrs_for(name: str) -> dict[str, Any]:
    base = name[: -len("_spread")] if name.endswith("_spread") else name
    var = V.REGISTRY.get(base)
    attrs: dict[str, Any] = var.cf_attrs() if var is not None else {}
    if name != base:
        attrs.pop("standard_name", None)
        attrs.pop("valid_min", None)
        attrs.pop("valid_max", None)
        attrs["long_name"] = f"{attrs.get('long_name', base)} (ensemble spread, std. dev.)"
        attrs["cell_methods"] = "realization: standard_deviation"
    elif var is not None and var.direction is not V.Direction.TO_LAND:
        attrs["cell_methods"] = "realization: mean"
    return attrs


class ZarrRecorder:
    """A :class:`Recorder` writing a Zarr v3 store at an fsspec URL (see the module docstring).

    ``chunk_steps`` is the time-chunk length, capped so that the chunk buffer (every field of
    ``chunk_steps`` steps) stays within ``max_buffer_bytes``; ``queue_size`` (steps) is capped
    likewise by ``max_queue_bytes``. The effective chunk length is the ``chunk_steps`` attribute.
    ``start_index`` > 0 continues an existing record (a resumed session) with its own chunking:
    rows from ``start_index`` on are discarded and the partial chunk before it is reloaded.
    """

    _time_array: zarr.Array

    def __init__(
        self,
        url: str,
        config: SessionSpec,
        backend_identity: Mapping[str, Any],
        *,
        chunk_steps: int = 24,
        cell_chunk: int | None = None,
        queue_size: int = 64,
        max_buffer_bytes: int = 512 << 20,
        max_queue_bytes: int = 512 << 20,
        start_index: int = 0,
        metrics: MetricsSink | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if chunk_steps < 1 or queue_size < 1 or (cell_chunk is not None and cell_chunk < 1):
            raise ValueError("chunk_steps, queue_size and cell_chunk must be >= 1")
        self.url = url
        self._cfg = config
        self._n = config.n_cells
        self._names = variable_names(V.FORCING, config.reply_names())
        step_bytes = 8 * self._n * len(self._names)
        self._chunk = max(1, min(int(chunk_steps), max_buffer_bytes // step_bytes))
        self._cell_chunk = min(self._n, cell_chunk or max(1, (16 << 20) // (8 * self._chunk)))
        queue_size = max(1, min(queue_size, max_queue_bytes // step_bytes))
        self._metrics = metrics
        grid = config.grid
        self._coordinates = " ".join(
            ["lat", "lon"]
            + (["areacella"] if grid.area is not None else [])
            + (["sftlf"] if grid.land_fraction is not None else [])
        )
        self._registry_name = {stored: key.split(":", 1)[1] for key, stored in self._names.items()}
        self._arrays: dict[str, zarr.Array] = {}  # the (time, cell) arrays, by stored name
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._buffer: dict[str, np.ndarray] = {}
        self._buffer_chunk = -1
        self._buffer_rows = 0  # rows [0, _buffer_rows) of the buffer chunk are filled
        try:
            self._group = self._open(dict(backend_identity), start_index, storage_options)
        except Exception as exc:
            raise FailedPrecondition(
                f"record_url: cannot write a Zarr record at {url!r}: {exc}",
                field="record_url",
                rule="writable",
            ) from exc
        self._thread = threading.Thread(target=self._run, name=f"recorder:{url}", daemon=True)
        self._thread.start()

    # ---- the producer side (the session's thread) ---------------------------------------------
    def record(
        self,
        index: int,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        analysis: Mapping[str, float] | None = None,
    ) -> None:
        if self._closed:
            raise FailedPrecondition("the recorder is closed", field="record_url", rule="open")
        fields = {self._names[f"in:{k}"]: v for k, v in inputs.items()}
        fields.update({self._names[f"out:{k}"]: v for k, v in outputs.items()})
        for name, value in (analysis or {}).items():
            if not name.startswith(ANALYSIS_PREFIX):
                raise ValueError(f"analysis entries are named {ANALYSIS_PREFIX}*, got {name!r}")
            fields[name] = np.asarray(float(value))
        self._put(_Step(int(index), fields))

    def check(self) -> None:
        if self._error is not None:
            raise FailedPrecondition(
                f"record_url: writing the record {self.url!r} failed: {self._error}",
                field="record_url",
                rule="writable",
            ) from self._error

    def flush(self) -> None:
        if self._closed:
            return
        request = _Flush()
        self._put(request)
        request.done.wait()
        self.check()

    def wait_idle(self) -> None:
        """Block until the writer has processed everything queued so far, *without* writing
        the partial chunk (what survives a crash now is what the store holds)."""
        self._queue.join()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            pass
        t0 = _time.perf_counter()
        while True:
            try:
                self._queue.put(item, timeout=0.25)
                break
            except queue.Full:
                if not self._thread.is_alive():
                    raise FailedPrecondition(
                        "the record writer stopped", field="record_url", rule="writable"
                    ) from self._error
        if self._metrics is not None:
            self._metrics.count_recorder_block(_time.perf_counter() - t0)

    # ---- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    if self._error is None:
                        self._write_buffer()
                elif isinstance(item, _Step) and self._error is None:
                    self._add(item)
            except BaseException as exc:  # surfaced to the session by check()/flush()
                self._error = exc
            finally:
                if isinstance(item, _Flush):
                    item.done.set()
                self._queue.task_done()

    def _add(self, step: _Step) -> None:
        chunk, row = divmod(step.index, self._chunk)
        if chunk != self._buffer_chunk:
            if self._buffer_rows:
                self._write_buffer()
            self._buffer_chunk, self._buffer_rows = chunk, 0
            for buf in self._buffer.values():
                buf.fill(np.nan)
        for name, values in step.fields.items():
            if name not in self._buffer:
                self._buffer[name] = np.full((self._chunk, *self._row_shape(name)), np.nan)
                self._ensure_array(name)
            self._buffer[name][row] = values
        self._buffer_rows = max(self._buffer_rows, row + 1)
        if self._buffer_rows == self._chunk:
            self._write_buffer()

    def _write_buffer(self) -> None:
        if self._buffer_chunk < 0 or not self._buffer_rows:
            return
        t0 = _time.perf_counter()
        start = self._buffer_chunk * self._chunk
        stop = start + self._buffer_rows
        self._extend(stop)
        for name, buf in self._buffer.items():
            self._arrays[name][start:stop] = buf[: self._buffer_rows]
        if self._metrics is not None:
            self._metrics.observe_phase("record_write", _time.perf_counter() - t0)

    def _extend(self, length: int) -> None:
        """Grow every time-dim array to at least ``length`` rows (filling ``time``)."""
        time = self._time_array
        old = time.shape[0]
        if length > old:
            time.resize((length,))
            time[old:length] = np.arange(old, length, dtype=np.int64) * self._cfg.timestep
        for arr in self._arrays.values():
            if arr.shape[0] < length:
                arr.resize((length, *arr.shape[1:]))

    def _row_shape(self, name: str) -> tuple[int, ...]:
        """One step's shape of a stored variable: (cell,), or () for analysis scalars."""
        return () if name.startswith(ANALYSIS_PREFIX) else (self._n,)

    def _ensure_array(self, name: str) -> None:
        if name in self._arrays:
            return
        if name.startswith(ANALYSIS_PREFIX):
            self._arrays[name] = self._group.create_array(
                name, shape=(self._time_array.shape[0],), chunks=(self._chunk,), dtype="f8",
                fill_value=np.nan, dimension_names=["time"],
                attributes={"long_name": f"assimilation diagnostic {name[len(ANALYSIS_PREFIX):]}"
                            " of the analysis at the start of the step"},
            )  # fmt: skip
            return
        attrs = _attrs_for(self._registry_name.get(name, name))
        attrs["coordinates"] = self._coordinates
        if "areacella" in self._coordinates:
            attrs["cell_measures"] = "area: areacella"
        self._arrays[name] = self._group.create_array(
            name,
            shape=(self._time_array.shape[0], self._n),
            chunks=(self._chunk, self._cell_chunk),
            dtype="f8",
            fill_value=np.nan,
            dimension_names=["time", "cell"],
            attributes=attrs,
        )

    # ---- opening -----------------------------------------------------------------------------
    def _open(
        self, backend: dict[str, Any], start_index: int, storage_options: Mapping[str, Any] | None
    ) -> zarr.Group:
        kwargs: dict[str, Any] = {"zarr_format": 3}
        if storage_options:
            kwargs["storage_options"] = dict(storage_options)
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        group = zarr.open_group(self.url, mode="a", **kwargs) if start_index > 0 else None
        if group is not None and "time" in group:
            self._time_array = _array(group, "time")
            stored = group.attrs.get("chunk_steps", self._chunk)
            self._chunk = int(stored) if isinstance(stored, int | float) else self._chunk
            self._resume(group, start_index)
            history = f"{group.attrs.get('history', '')}\n{now}: resumed at step {start_index}"
            group.attrs.update({"history": history.strip(), "backend": json.dumps(backend)})
            return group
        # a new record; a resumed session whose record is gone starts one at its step index
        # (earlier rows stay empty: NaN)
        group = zarr.open_group(self.url, mode="w", **kwargs)
        cfg = self._cfg
        created = f"{now}: created by {provenance.code_version()}"
        if start_index > 0:
            created += f", resumed at step {start_index} without the earlier record"
        group.attrs.update({
            "Conventions": "CF-1.10",
            "title": "landcoupler session record",
            "session_config": cfg.to_json(include_arrays=False),
            "backend": json.dumps(backend, sort_keys=True),
            "code_version": provenance.code_version(),
            "library_versions": json.dumps(provenance.library_versions(), sort_keys=True),
            "created": now,
            "chunk_steps": self._chunk,
            "grid_shape": list(cfg.grid.shape) if cfg.grid.shape else [],
            "history": created,
        })  # fmt: skip
        self._time_array = group.create_array(
            "time", shape=(0,), chunks=(max(self._chunk, 1024),), dtype="i8",
            dimension_names=["time"], fill_value=-1,
            attributes={"units": f"seconds since {cfg.start}", "calendar": "proleptic_gregorian",
                        "standard_name": "time", "long_name": "start of the step (UTC)"},
        )  # fmt: skip
        statics: dict[str, np.ndarray | None] = {
            "lat": cfg.grid.lat, "lon": cfg.grid.lon, "areacella": cfg.grid.area,
            "sftlf": None if cfg.grid.land_fraction is None else cfg.grid.land_fraction * 100.0,
        }  # fmt: skip
        for name, values in statics.items():
            if values is None:
                continue
            arr = group.create_array(
                name, shape=(self._n,), chunks=(self._n,), dtype="f8",
                dimension_names=["cell"], attributes=V.get(name).cf_attrs(),
            )  # fmt: skip
            arr[:] = values
        return group

    def _resume(self, group: zarr.Group, start_index: int) -> None:
        """Drop rows >= start_index and reload the partial chunk before it into the buffer."""
        chunk, rows = divmod(start_index, self._chunk)
        first = chunk * self._chunk
        length = self._time_array.shape[0]
        for name, arr in group.arrays():
            if arr.ndim != 2 and not (arr.ndim == 1 and name.startswith(ANALYSIS_PREFIX)):
                continue
            self._arrays[name] = arr
            if rows:
                buf = np.full((self._chunk, *arr.shape[1:]), np.nan)
                have = max(0, min(start_index, length) - first)
                buf[:have] = arr[first : first + have]
                self._buffer[name] = buf
            if arr.shape[0] > start_index:
                arr.resize((start_index, *arr.shape[1:]))
        if length > start_index:
            self._time_array.resize((start_index,))
        if rows:
            self._buffer_chunk, self._buffer_rows = chunk, rows
