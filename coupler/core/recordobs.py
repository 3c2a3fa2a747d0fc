"""The observation table of a record: the writer side (layout: ``coupler.core.recordformat``).

A session hands every Assimilate request it accepted to the recorder (:func:`request` makes the
copy the recorder queues, on the session's thread); the recorder's writer thread keeps them in
an :class:`ObservationTable` and calls :meth:`ObservationTable.write` whenever it commits steps,
right before it advances ``steps_complete``: the table's committed row count
(``observation_batches``) goes into the same attribute update, so a record cut by a crash holds
either both the steps of a chunk and the requests queued before them, or neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from coupler.core import recordformat as RF
from coupler.spec.observations import Parsed
from emulators import variables as V

_ATTRS: dict[str, dict[str, Any]] = {
    "step": {"long_name": "step index before which the request was queued (analysed at the "
             "start of that step)"},
    "request": {"long_name": "serial number of the accepted Assimilate request"},
    "type": {"long_name": "observed variable", "flag_values": list(range(len(V.OBSERVABLE))),
             "flag_meanings": " ".join(V.OBSERVABLE)},
    "units": {"long_name": "units the sender stated (index into unit_strings)",
              "unit_strings": []},
    "count": {"long_name": "observations in the batch", "sample_dimension": "obs"},
    "value": {"long_name": "observed value (units of its type)"},
    "error": {"long_name": "observation error standard deviation (units of its type)"},
    "lat": {"standard_name": "latitude", "units": "degrees_north"},
    "lon": {"standard_name": "longitude", "units": "degrees_east"},
    "time": {"standard_name": "time", "units": RF.OBS_TIME_UNITS,
             "calendar": "proleptic_gregorian", "long_name": "window start or overpass (UTC)"},
}  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One accepted request, copied: per batch ``types``, ``units``, ``counts``; the batches'
    observations one after the other in ``obs`` (the ``OBS_ARRAYS`` of the format)."""

    step: int
    serial: int
    types: tuple[str, ...]
    units: tuple[str, ...]
    counts: np.ndarray
    obs: dict[str, np.ndarray]


def request(step: int, serial: int, batches: Sequence[Parsed], units: Sequence[str]) -> Request:
    """The record's copy of request ``serial`` (the session's count of accepted requests
    before it), queued before step ``step``."""
    obs = {
        "value": np.concatenate([b.values for b in batches]),
        "error": np.concatenate([b.errors for b in batches]),
        "lat": np.concatenate([b.lat for b in batches]),
        "lon": np.concatenate([b.lon for b in batches]),
        "time": np.concatenate([b.times.astype("datetime64[s]").astype(np.int64) for b in batches]),
    }  # fmt: skip
    counts = np.array([len(b) for b in batches], dtype=np.int64)
    return Request(
        int(step), int(serial), tuple(b.type for b in batches), tuple(units), counts, obs
    )


class ObservationTable:
    """The ``observations/`` table of the record ``group`` (writer thread only). The subgroup
    is created with the first request, so a record without observations has none."""

    def __init__(self, group: zarr.Group, chunk: int, shard_chunks: int) -> None:
        self._root = group
        self._chunk = max(64, int(chunk))
        self._shard = self._chunk * max(1, int(shard_chunks))
        self._arrays: dict[str, zarr.Array] = {}
        self._pending: list[Request] = []
        self.committed = 0  # batch rows committed
        self._n_obs = 0
        node = group.get(RF.OBSERVATIONS)
        if isinstance(node, zarr.Group):
            self._arrays = {
                n: a for n, a in node.arrays() if n in {*RF.BATCH_ARRAYS, *RF.OBS_ARRAYS}
            }

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def add(self, req: Request) -> None:
        self._pending.append(req)

    def resume(self, committed: int, requests_before: int) -> int:
        """A resumed session whose start state holds ``requests_before`` accepted requests:
        keep those of the ``committed`` rows (the queued ones among them are in the start
        state's queue) and drop the later ones; returns the rows kept."""
        if not self._arrays:
            self.committed = 0
            return 0
        serials = np.asarray(self._arrays["request"][:committed])
        keep = int(np.count_nonzero(serials < requests_before))  # serials never decrease
        counts = np.asarray(self._arrays["count"][:keep])
        self.committed, self._n_obs = keep, int(counts.sum())
        for name in RF.BATCH_ARRAYS:
            self._arrays[name].resize((keep,))
        for name in RF.OBS_ARRAYS:
            self._arrays[name].resize((self._n_obs,))
        return keep

    def write(self) -> int:
        """Append the pending requests; returns the batch rows now committed (the caller puts
        it in ``observation_batches`` with ``steps_complete``)."""
        if not self._pending:
            return self.committed
        arrays = self._ensure()
        stored: Any = arrays["units"].attrs.get("unit_strings", [])
        units_attr = [str(u) for u in stored]
        rows: dict[str, list[Any]] = {name: [] for name in RF.BATCH_ARRAYS}
        for req in self._pending:
            for t, u, c in zip(req.types, req.units, req.counts.tolist(), strict=True):
                if u not in units_attr:
                    units_attr.append(u)
                rows["step"].append(req.step)
                rows["request"].append(req.serial)
                rows["type"].append(V.OBSERVABLE.index(t))
                rows["units"].append(units_attr.index(u))
                rows["count"].append(c)
        if units_attr != stored:
            arrays["units"].attrs.update({"unit_strings": units_attr})
        b0, o0 = self.committed, self._n_obs
        b1 = b0 + len(rows["step"])
        o1 = o0 + sum(int(r.counts.sum()) for r in self._pending)
        for name, dtype in RF.BATCH_ARRAYS.items():
            arrays[name].resize((b1,))
            arrays[name][b0:b1] = np.asarray(rows[name], dtype=dtype)
        for name in RF.OBS_ARRAYS:
            arrays[name].resize((o1,))
            arrays[name][o0:o1] = np.concatenate([r.obs[name] for r in self._pending])
        self.committed, self._n_obs, self._pending = b1, o1, []
        return b1

    def _ensure(self) -> dict[str, zarr.Array]:
        if self._arrays:
            return self._arrays
        group = self._root.require_group(RF.OBSERVATIONS)
        group.attrs.update({"long_name": "accepted Assimilate requests (CF contiguous ragged "
                            "array: count along batch, observations along obs)"})  # fmt: skip
        for dims, names in (("batch", RF.BATCH_ARRAYS), ("obs", RF.OBS_ARRAYS)):
            for name, dtype in names.items():
                self._arrays[name] = group.create_array(
                    name, shape=(0,), chunks=(self._chunk,), shards=(self._shard,), dtype=dtype,
                    fill_value=np.nan if dtype == "f8" else -1, dimension_names=[dims],
                    compressors=[ZstdCodec(level=3)], attributes=_ATTRS[name],
                )  # fmt: skip
        return self._arrays
