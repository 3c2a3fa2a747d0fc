"""Session records: every exchanged field, in and out, per step, to a Zarr v3 store via fsspec,
in record format v2 (layout, attributes and codecs: ``coupler.core.recordformat``; reading and
replaying them: ``coupler.replay``).

The record opens with ``xarray.open_zarr(url, consolidated=False)`` (consolidated metadata is
not written: it is not part of Zarr v3 and would go stale between chunk writes). Fields are
``(cell, time)``: forcing in the dtype it came in (float32 on the wire is stored as float32,
exactly; float64 as float64; the first recorded step fixes a field's dtype, see
:meth:`ZarrRecorder.admit`), outputs float64 as replied (the ensemble mean) and
``<name>_spread``; steps where an optional field (``co2``) was not sent hold NaN. Codecs,
keepbits and chunking come from the spec's ``record_options``
(:class:`~coupler.spec.RecordOptions`). The session's start checkpoint is stored in the record
(``starts/<index>``), so replay needs nothing else.

Writes never stall a step on I/O: ``record`` puts the step on a bounded queue that a background
thread drains into per-chunk buffers; a full time chunk is written as soon as it fills, and the
partial chunk on ``flush``/``close``. A full queue makes ``record`` wait (data is never dropped)
and is counted in the metrics. After every chunk the group attribute ``steps_complete`` is
advanced (a reader trusts nothing beyond it), and ``close`` sets ``closed``. A crash loses at
most the steps of the chunk being filled.
"""

from __future__ import annotations

import datetime as _dt
import json
import queue
import threading
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from coupler.core import recordformat as RF
from coupler.core import recordobs
from coupler.core.recorderbase import Recorder
from coupler.core.recordformat import ANALYSIS_PREFIX, variable_names
from coupler.core.telemetry import MetricsSink
from coupler.errors import FailedPrecondition
from coupler.spec import RecordOptions, SessionSpec
from coupler.spec.observations import Parsed
from emulators import variables as V

__all__ = ["ANALYSIS_PREFIX", "Recorder", "ZarrRecorder", "variable_names"]


@dataclass
class _Step:
    index: int
    fields: dict[str, np.ndarray]


@dataclass
class _Cover:
    index: int
    fractions: np.ndarray


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)
    final: bool = False


_STOP = object()


class ZarrRecorder:
    """A :class:`Recorder` writing a v2 record at an fsspec URL (see the module docstring).

    A time chunk holds ``record_options.chunk_bytes`` of a field unless ``chunk_steps``
    overrides it; either is capped so that one chunk of every field fits ``max_buffer_bytes``
    (the effective length is the ``chunk_steps`` attribute); ``queue_size`` (steps) is capped by
    ``max_queue_bytes``. ``start`` (``checkpoint.to_bytes``) is stored as
    ``starts/<start_index>``. ``start_index`` > 0 continues an existing v2 record (a resumed
    session): rows from ``start_index`` on are dropped and the partial chunk before it reloaded.
    """

    _time_array: zarr.Array

    def __init__(
        self,
        url: str,
        config: SessionSpec,
        backend_identity: Mapping[str, Any],
        *,
        chunk_steps: int | None = None,
        cell_chunk: int | None = None,
        queue_size: int = 64,
        max_buffer_bytes: int = 512 << 20,
        max_queue_bytes: int = 512 << 20,
        start_index: int = 0,
        start: bytes | None = None,
        requests_before: int = 0,
        metrics: MetricsSink | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if min([queue_size, *(v for v in (chunk_steps, cell_chunk) if v is not None)]) < 1:
            raise ValueError("chunk_steps, queue_size and cell_chunk must be >= 1")
        self.url = url
        self._cfg = config
        self._options = config.record_options or RecordOptions()
        self._n = config.n_cells
        self._names = variable_names(V.FORCING, config.reply_names())
        step_bytes = 8 * self._n * len(self._names)
        if chunk_steps is None:
            self._chunk = RF.chunk_steps(
                self._n, self._options.chunk_bytes, step_bytes, max_buffer_bytes
            )
        else:
            self._chunk = max(1, min(int(chunk_steps), max_buffer_bytes // step_bytes))
        self._cell_chunk = min(self._n, cell_chunk or self._n)
        queue_size = max(1, min(queue_size, max_queue_bytes // step_bytes))
        self._metrics = metrics
        grid = config.grid
        self._coordinates = " ".join(
            ["lat", "lon"]
            + (["areacella"] if grid.area is not None else [])
            + (["sftlf"] if grid.land_fraction is not None else [])
        )
        self._registry_name = {stored: key.split(":", 1)[1] for key, stored in self._names.items()}
        self._arrays: dict[str, zarr.Array] = {}  # the (cell, time) and (time,) arrays by name
        # each forcing field's stored dtype, fixed by its first recorded step (or the record)
        self._dtypes: dict[str, np.dtype] = {}
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._buffer: dict[str, np.ndarray] = {}
        self._buffer_chunk = -1
        self._buffer_rows = 0  # rows [0, _buffer_rows) of the buffer chunk are filled
        self._dirty = False  # the buffer holds rows not written yet
        self._complete = start_index
        self._obs: recordobs.ObservationTable | None = None
        self._requests_before = requests_before
        try:
            self._group = self._open(dict(backend_identity), start_index, storage_options)
            if start is not None:
                RF.store_start(self._group, start_index, start)
        except FailedPrecondition:
            raise
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
        dtypes: Mapping[str, np.dtype] | None = None,
    ) -> None:
        if self._closed:
            raise FailedPrecondition("the recorder is closed", field="record_url", rule="open")
        fields = {self._names[f"in:{k}"]: v for k, v in inputs.items()}
        for key, name in zip(inputs, fields, strict=True):
            if name not in self._dtypes:
                given = inputs[key].dtype if dtypes is None else dtypes.get(key, np.float64)
                self._dtypes[name] = RF.stored_dtype(given)
        fields.update({self._names[f"out:{k}"]: v for k, v in outputs.items()})
        for name, value in (analysis or {}).items():
            if not name.startswith(ANALYSIS_PREFIX):
                raise ValueError(f"analysis entries are named {ANALYSIS_PREFIX}*, got {name!r}")
            fields[name] = np.asarray(float(value))
        self._put(_Step(int(index), fields))

    def admit(self, inputs: Mapping[str, np.ndarray], dtypes: Mapping[str, np.dtype]) -> None:
        """A float32 field refuses a later step's values that float32 cannot hold exactly
        (float64 values that are float32-representable are stored, exactly): the record never
        loses data, and the session stays as it was (docs/replay.md)."""
        for key, values in inputs.items():
            stored = self._dtypes.get(self._names[f"in:{key}"])
            given = np.dtype(dtypes.get(key, values.dtype))
            if stored is None or stored.itemsize == 8 or RF.stored_dtype(given) == stored:
                continue
            same = values.astype(stored) == values
            if not same.all():
                cell = int(np.argmin(same))
                raise FailedPrecondition(
                    f"{key}: the record stores it as {stored.name} (the dtype of its first "
                    f"recorded step), but this step sent {given.name} values that "
                    f"{stored.name} cannot hold exactly (cell {cell}: {values[cell]!r}); send "
                    f"{stored.name} as before, or record to a new record_url",
                    field=key,
                    rule="record_dtype",
                )

    def observations(
        self, index: int, serial: int, batches: Sequence[Parsed], units: Sequence[str]
    ) -> None:
        if self._closed:
            raise FailedPrecondition("the recorder is closed", field="record_url", rule="open")
        self._put(recordobs.request(index, serial, batches, units))

    def cover_change(self, index: int, fractions: np.ndarray) -> None:
        if self._closed:
            raise FailedPrecondition("the recorder is closed", field="record_url", rule="open")
        self._put(_Cover(int(index), np.array(fractions, dtype=np.float64)))

    def check(self) -> None:
        if self._error is not None:
            raise FailedPrecondition(
                f"record_url: writing the record {self.url!r} failed: {self._error}",
                field="record_url",
                rule="writable",
            ) from self._error

    def flush(self, final: bool = False) -> None:
        if self._closed:
            return
        request = _Flush(final=final)
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
            self.flush(final=True)
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
                        if item.final:
                            self._group.attrs.update({"closed": True})
                elif isinstance(item, _Step) and self._error is None:
                    self._add(item)
                elif isinstance(item, recordobs.Request) and self._error is None:
                    self._table().add(item)
                elif isinstance(item, _Cover) and self._error is None:
                    RF.store_cover(self._group, item.index, item.fractions)
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
                shape = (self._chunk, *self._row_shape(name))
                self._buffer[name] = np.full(shape, np.nan, self._dtypes.get(name, np.float64))
                self._ensure_array(name)
            self._buffer[name][row] = values
        self._buffer_rows = max(self._buffer_rows, row + 1)
        self._dirty = True
        if self._buffer_rows == self._chunk:
            self._write_buffer()

    def _write_buffer(self) -> None:
        steps = self._buffer_chunk >= 0 and self._buffer_rows > 0 and self._dirty
        if not steps and not (self._obs is not None and self._obs.dirty):
            return
        t0 = _time.perf_counter()
        # the requests queued before these steps first: one attribute update commits both
        attrs: dict[str, Any] = {} if self._obs is None else {RF.OBS_BATCHES: self._obs.write()}
        if steps:
            start = self._buffer_chunk * self._chunk
            stop = start + self._buffer_rows
            self._extend(stop)
            for name, buf in self._buffer.items():
                rows = buf[: self._buffer_rows]
                # C-contiguous (cell, time): zarr hands a chunk-sized value to the codecs as
                # given, and the numcodecs PCodec wrapper encodes it in memory order
                self._arrays[name][..., start:stop] = np.ascontiguousarray(rows.T)
            self._complete = max(self._complete, stop)
            self._dirty = False
            attrs.update({"steps_complete": self._complete, "arrays": sorted(self._arrays)})
        self._group.attrs.update(attrs)
        if self._metrics is not None:
            self._metrics.observe_phase("record_write", _time.perf_counter() - t0)

    def _extend(self, length: int) -> None:
        """Grow every time-dim array to at least ``length`` steps (filling ``time``)."""
        time = self._time_array
        old = time.shape[0]
        if length > old:
            time.resize((length,))
            time[old:length] = np.arange(old, length, dtype=np.int64) * self._cfg.timestep
        for arr in self._arrays.values():
            if arr.shape[-1] < length:
                arr.resize((*arr.shape[:-1], length))

    def _table(self) -> recordobs.ObservationTable:
        if self._obs is None:
            chunk = self._options.chunk_bytes // 8
            self._obs = recordobs.ObservationTable(self._group, chunk, self._options.shard_chunks)
        return self._obs

    def _row_shape(self, name: str) -> tuple[int, ...]:
        """One step's shape of a stored variable: (cell,), or () for analysis scalars."""
        return () if name.startswith(ANALYSIS_PREFIX) else (self._n,)

    def _ensure_array(self, name: str) -> None:
        if name not in self._arrays:
            self._arrays[name] = RF.create_field(
                self._group, name, self._registry_name.get(name, name), self._options,
                (self._n, self._time_array.shape[0]), (self._cell_chunk, self._chunk),
                self._coordinates, self._dtypes.get(name, np.dtype(np.float64)),
            )  # fmt: skip

    # ---- opening -----------------------------------------------------------------------------
    def _open(
        self, backend: dict[str, Any], start_index: int, storage_options: Mapping[str, Any] | None
    ) -> zarr.Group:
        kwargs: dict[str, Any] = {"zarr_format": 3}
        options = dict(storage_options or {})
        if self.url.startswith("file://"):
            options.setdefault("auto_mkdir", True)  # as a plain path does (zarr's LocalStore)
        if options:
            kwargs["storage_options"] = options
        now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        group = zarr.open_group(self.url, mode="a", **kwargs) if start_index > 0 else None
        if group is not None and "time" in group:
            if group.attrs.get("record_format") != RF.FORMAT:
                raise FailedPrecondition(
                    f"record_url: {self.url!r} holds a record of another format (v1 or "
                    f"foreign); a resumed session cannot continue it",
                    field="record_url",
                    rule="record_format",
                )
            self._time_array = RF.array(group, "time")
            stored = group.attrs.get("chunk_steps", self._chunk)
            self._chunk = int(stored) if isinstance(stored, int | float) else self._chunk
            self._resume(group, start_index)
            history = f"{group.attrs.get('history', '')}\n{now}: resumed at step {start_index}"
            group.attrs.update({"history": history.strip(), "backend": json.dumps(backend),
                                "steps_complete": self._complete, "closed": False})  # fmt: skip
            return group
        # a new record; a resumed session whose record is gone starts one at its step index
        # (earlier rows stay empty: NaN)
        group = zarr.open_group(self.url, mode="w", **kwargs)
        self._time_array = RF.new_record(
            group, self._cfg, self._options, backend, self._chunk, start_index, now
        )
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
            if arr.ndim == 2:
                self._dtypes[name] = RF.stored_dtype(arr.dtype)
            if rows:
                have = max(0, min(start_index, length) - first)
                buf = np.full((self._chunk, *arr.shape[:-1]), np.nan, arr.dtype)
                part = np.asarray(arr[..., first : first + have])
                buf[:have] = part.T
                self._buffer[name] = buf
            if arr.shape[-1] > start_index:
                arr.resize((*arr.shape[:-1], start_index))
        if length > start_index:
            self._time_array.resize((start_index,))
        complete: Any = group.attrs.get("steps_complete", length)
        self._complete = min(int(complete), start_index)
        if RF.OBSERVATIONS in group:  # the requests accepted before the start state stay
            self._group, committed = group, group.attrs.get(RF.OBS_BATCHES, 0)
            kept = self._table().resume(int(committed), self._requests_before)  # type: ignore[arg-type]
            group.attrs.update({RF.OBS_BATCHES: kept})
        if rows:
            self._buffer_chunk, self._buffer_rows, self._dirty = chunk, rows, True
