"""Reading v2 records (``coupler.core.recordformat``): :class:`RecordSource`, one rank's record.

Opening checks what a replay relies on, and refuses anything else with a :class:`RecordError`
(``field="record"``) whose ``rule`` and message name what is wrong: ``not_found`` (no Zarr group
at the URL), ``record_format`` (a Zarr store that is not a landcoupler record: a foreign store),
``record_version`` (a v1 record, which holds neither the start state nor the land-cover
fractions, or a newer version), ``missing_array`` (an array the record lists, the grid, ``time``
or the start state is absent), ``attributes`` (a damaged attribute), ``corrupt`` (a chunk that
does not decode) and ``missing_data`` (a committed chunk that is not there); the same rules
name the arrays of the observation table (``observations/<name>``). A record whose
writer stopped (crash) is not an error: it is read up to its last complete chunk
(``steps_complete``) and :attr:`RecordSource.truncated` says so. The store is opened read-only;
nothing is ever written to it.

Reads are time blocks of whole chunks, (step, cell) per field in its stored dtype (float64, or
float32 for forcing that came as float32 on the wire: the replayed session widens it exactly as
the service did); :meth:`blocks` reads ahead in a background thread.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import zarr

from coupler.core import checkpoint
from coupler.core import recordformat as RF
from coupler.errors import CouplerError
from coupler.replay.errors import RecordError
from coupler.replay.observations import RecordedObservations
from coupler.spec import SessionSpec
from emulators import variables as V


@dataclass(frozen=True)
class Block:
    """Steps ``[start, stop)`` of every field: (step, cell) arrays, read-only."""

    start: int
    stop: int
    fields: Mapping[str, np.ndarray]


def _open_group(url: str, storage_options: Mapping[str, Any] | None) -> zarr.Group:
    kwargs: dict[str, Any] = {"mode": "r"}
    if storage_options:
        kwargs["storage_options"] = dict(storage_options)
    try:
        return zarr.open_group(url, **kwargs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        raise RecordError(url, "not_found", "no Zarr group there") from None
    except (ValueError, KeyError, OSError) as exc:
        raise RecordError(url, "record_format", f"not a readable Zarr group: {exc}") from None


class RecordSource:
    """One rank's v2 record at an fsspec URL, opened read-only (see the module docstring)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        group = _open_group(url, storage_options)
        self._group = group
        attrs: dict[str, Any] = dict(group.attrs)
        self._check_format(attrs, group)
        try:
            self.backend: dict[str, Any] = json.loads(attrs["backend"])
            self.options: dict[str, Any] = json.loads(attrs["record_options"])
            self.chunk_steps = int(attrs["chunk_steps"])
            self.steps_complete = int(attrs["steps_complete"])
            listed = [str(a) for a in attrs["arrays"]]
            self.closed = bool(attrs["closed"])
            self.run_id = str(attrs.get("run_id", ""))
            self.rank = int(attrs.get("rank", 0))
            self.torch_threads = int(attrs.get("torch_num_threads", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(url, "attributes", f"a record attribute is missing or "
                              f"damaged: {exc!r}") from None  # fmt: skip
        try:
            #: steps before which the session's land cover changed (``cover``)
            self.cover_changes = [int(i) for i in attrs.get(RF.COVER_CHANGES) or []]
        except (TypeError, ValueError):
            raise RecordError(url, "attributes", f"{RF.COVER_CHANGES} is not a list of step "
                              "indices") from None  # fmt: skip
        present = {name for name, _ in group.arrays()}
        required = ["time", "lat", "lon", *listed]
        missing = [a for a in required if a not in present]
        if missing:
            raise RecordError(
                url, "missing_array", f"array(s) {missing} are missing from the store"
                f" (it holds {sorted(present)})",
            )  # fmt: skip
        self._arrays = {name: _array(group, name) for name in listed}
        self.time_length = int(_array(group, "time").shape[0])
        self.n_steps = min(self.steps_complete, self.time_length)
        self.starts = self._start_indices()
        self.roles = {n: str(a.attrs.get("landcoupler_role", "")) for n, a in self._arrays.items()}
        self.forcing = tuple(n for n, r in self.roles.items() if r == "forcing")
        self.outputs = tuple(n for n, r in self.roles.items() if r == "output")
        self.keepbits = {n: _int(a.attrs.get("keepbits", 0)) for n, a in self._arrays.items()}
        #: each field's stored dtype (``landcoupler_wire_dtype``; records before it: float64)
        self.dtypes = {n: np.dtype(a.dtype) for n, a in self._arrays.items()}
        self.lat = np.asarray(_array(group, "lat")[:])
        self.lon = np.asarray(_array(group, "lon")[:])
        self.n_cells = int(self.lat.shape[0])
        self.spec = self.checkpoint(self.starts[0]).config
        #: the accepted Assimilate requests (``coupler.replay.observations``)
        self.observations = RecordedObservations(url, group, attrs)

    # ---- what it holds ---------------------------------------------------------------------
    @property
    def truncated(self) -> str | None:
        """Why the record ends early (the writer stopped), or None for a closed record."""
        if self.closed and self.time_length <= self.steps_complete:
            return None
        if self.time_length > self.steps_complete:
            return (
                f"the record was cut mid-chunk: arrays reach step {self.time_length} but only "
                f"{self.steps_complete} steps were committed; replaying steps 0..{self.n_steps - 1}"
            )
        return (
            f"the record was not closed (its writer stopped); it holds {self.n_steps} steps up "
            f"to its last complete chunk"
        )

    @property
    def bitwise_replayable(self) -> bool:
        """Whether every forcing field is stored losslessly."""
        return not any(self.keepbits.get(n) for n in self.forcing)

    def checkpoint(self, index: int) -> checkpoint.CheckpointData:
        """The session checkpoint stored at step ``index`` (one of :attr:`starts`)."""
        try:
            blob = np.asarray(_array(self._group, f"{RF.STARTS}/{index}")[:]).tobytes()
        except KeyError:
            raise RecordError(self.url, "missing_array",
                              f"no start state at step {index}") from None  # fmt: skip
        except Exception as exc:
            raise RecordError(self.url, "corrupt",
                              f"start state {index} does not decode: {exc}") from None  # fmt: skip
        try:
            return checkpoint.from_bytes(blob, source=f"{self.url} starts/{index}")
        except CouplerError as exc:
            raise RecordError(self.url, "corrupt", f"start state {index}: {exc}") from None

    def cover(self, index: int) -> np.ndarray:
        """The (cell, 8) land-cover fractions the session took before step ``index`` (one of
        :attr:`cover_changes`)."""
        name = f"{RF.COVER_CHANGES}/{index}"
        try:
            values = np.asarray(_array(self._group, name)[:], dtype=np.float64)
        except KeyError:
            raise RecordError(self.url, "missing_array", f"{name}: the land cover of a recorded "
                              "change is gone") from None  # fmt: skip
        except Exception as exc:
            raise RecordError(self.url, "corrupt", f"{name} does not decode: {exc}") from None
        if values.shape != (self.n_cells, 8):
            raise RecordError(self.url, "corrupt", f"{name}: shape {values.shape}, expected "
                              f"({self.n_cells}, 8)")  # fmt: skip
        return values

    def start_for(self, step: int) -> int:
        """The last start state at or before ``step``."""
        before = [s for s in self.starts if s <= step]
        if not before:
            raise RecordError(self.url, "start_state", f"no start state at or before step {step}"
                              f" (the record starts at {self.starts})")  # fmt: skip
        return before[-1]

    def _start_indices(self) -> list[int]:
        node = self._group.get(RF.STARTS)
        found = sorted(int(n) for n, _ in node.arrays()) if isinstance(node, zarr.Group) else []
        if not found:
            raise RecordError(self.url, "missing_array", f"the start state ({RF.STARTS}/) is "
                              "missing from the store")  # fmt: skip
        return found

    def _check_format(self, attrs: Mapping[str, Any], group: zarr.Group) -> None:
        fmt, version = attrs.get("record_format"), attrs.get("record_version")
        if fmt is None and attrs.get("title") == RF.TITLE:
            raise RecordError(
                self.url, "record_version", "a v1 record (written before record format 2): it "
                "holds neither the start state nor the land-cover fractions, so it cannot be "
                "replayed; read it with xarray.open_zarr(url, consolidated=False) or record the "
                "scenario again",
            )  # fmt: skip
        if fmt != RF.FORMAT:
            names = sorted(n for n, _ in group.members())
            raise RecordError(
                self.url, "record_format", f"not a landcoupler record: a Zarr group without "
                f"record_format={RF.FORMAT!r} (attributes {sorted(attrs)[:8]}, members "
                f"{names[:8]})",
            )  # fmt: skip
        if version != RF.VERSION:
            raise RecordError(
                self.url, "record_version", f"record format version {version!r}; this "
                f"landcoupler reads version {RF.VERSION}",
            )  # fmt: skip

    # ---- reading ---------------------------------------------------------------------------
    def read(self, start: int, stop: int, names: tuple[str, ...] | None = None) -> Block:
        """Steps ``[start, stop)`` (within the committed steps) of ``names`` (default all)."""
        stop = min(stop, self.n_steps)
        out: dict[str, np.ndarray] = {}
        for name in names if names is not None else tuple(self._arrays):
            arr = self._arrays[name]
            try:
                values = np.asarray(arr[..., start:stop])
            except Exception as exc:
                raise RecordError(self.url, "corrupt", f"{name}: steps {start}..{stop - 1} do "
                                  f"not decode: {type(exc).__name__}: {exc}") from None  # fmt: skip
            values = np.ascontiguousarray(values.T)
            self._check_present(name, values, start)
            values.flags.writeable = False
            out[name] = values
        return Block(start, stop, out)

    def _check_present(self, name: str, values: np.ndarray, start: int) -> None:
        """A committed row of a required forcing field or an output that is all NaN is a chunk
        that was lost (zarr reads absent chunks as the fill value)."""
        var = V.REGISTRY.get(name)
        required = name in self.outputs or (var is not None and var.required)
        if not required or values.ndim != 2 or values.size == 0:
            return
        empty = np.isnan(values).all(axis=1)
        if empty.any():
            step = start + int(np.argmax(empty))
            raise RecordError(self.url, "missing_data", f"{name}: step {step} is committed but "
                              "its chunk is missing from the store")  # fmt: skip

    def blocks(
        self, start: int = 0, stop: int | None = None, names: tuple[str, ...] | None = None,
        prefetch: int = 2,
    ) -> Iterator[Block]:  # fmt: skip
        """Chunk-aligned blocks covering ``[start, stop)``, read ahead by a background thread
        (``prefetch`` blocks deep; 0 reads in the caller's thread)."""
        stop = self.n_steps if stop is None else min(stop, self.n_steps)
        edges = list(range(start - start % self.chunk_steps, stop, self.chunk_steps))
        spans = [(max(a, start), min(a + self.chunk_steps, stop)) for a in edges]
        if prefetch <= 0:
            for a, b in spans:
                yield self.read(a, b, names)
            return
        ahead: queue.Queue[Block | BaseException | None] = queue.Queue(maxsize=prefetch)
        halt = threading.Event()

        def produce() -> None:
            try:
                for a, b in spans:
                    if halt.is_set():
                        return
                    ahead.put(self.read(a, b, names))
            except BaseException as exc:  # handed to the consumer
                ahead.put(exc)
            ahead.put(None)

        thread = threading.Thread(target=produce, name=f"prefetch:{self.url}", daemon=True)
        thread.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            halt.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ahead.get(timeout=0.05)
                except queue.Empty:
                    pass

    def spec_for_replay(self, backend: str | None = None) -> SessionSpec:
        """The recorded spec with no record, checkpoints or observation side effects, on
        ``backend`` (default: the recorded one)."""
        return replace(
            self.spec, record_url=None, checkpoint_url=None, checkpoint_every=0,
            backend=backend or self.spec.backend,
        )  # fmt: skip


def _int(value: Any) -> int:
    return int(value)


def _array(group: zarr.Group, name: str) -> zarr.Array:
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise KeyError(name)
    return node
