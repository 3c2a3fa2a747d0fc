"""Reading a record's observation table (``observations/``, ``coupler.core.recordformat``): the
accepted Assimilate requests, which replay re-sends before the steps they preceded.

:class:`RecordedObservations` reads and checks the batch index when the record opens (an
array that is missing, damaged or inconsistent is a :class:`RecordError` naming it) and the
observations of a range of steps on demand. Only the committed rows
(``observation_batches``) are read; a record without the table holds no observations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from coupler.core import recordformat as RF
from coupler.replay.errors import RecordError
from coupler.spec.observations import ObservationBatch


@dataclass(frozen=True)
class RecordedRequest:
    """One accepted Assimilate request: its serial number, the step it was queued before, and
    its batches as the session checked them (float64 arrays, datetime64[s] times)."""

    serial: int
    step: int
    batches: tuple[ObservationBatch, ...]

    @property
    def n_obs(self) -> int:
        return sum(len(b.values) for b in self.batches)


class RecordedObservations:
    """The committed observation table of the record ``group`` at ``url`` (module docstring)."""

    def __init__(self, url: str, group: zarr.Group, attrs: Mapping[str, Any]) -> None:
        self.url = url
        try:
            self.n_batches = int(attrs.get(RF.OBS_BATCHES, 0))
        except (TypeError, ValueError):
            raise self._error("attributes", f"{RF.OBS_BATCHES} is not an integer") from None
        node = group.get(RF.OBSERVATIONS)
        self._arrays: dict[str, zarr.Array] = {}
        if not isinstance(node, zarr.Group):
            if self.n_batches:
                raise self._error(
                    "missing_array",
                    f"{self.n_batches} observation batches are committed but the table "
                    f"{RF.OBSERVATIONS}/ is missing",
                )
            self._index: dict[str, np.ndarray] = {n: np.zeros(0, np.int64) for n in RF.BATCH_ARRAYS}
            self._offsets = np.zeros(1, dtype=np.int64)
            self._types: list[str] = []
            self._units: list[str] = []
            return
        present = {n: a for n, a in node.arrays()}
        missing = [f"{RF.OBSERVATIONS}/{n}" for n in (*RF.BATCH_ARRAYS, *RF.OBS_ARRAYS)
                   if n not in present]  # fmt: skip
        if missing:
            raise self._error("missing_array", f"observation table array(s) {missing} are "
                              "missing from the store")  # fmt: skip
        self._arrays = present
        self._index = {n: self._read(n, 0, self.n_batches) for n in RF.BATCH_ARRAYS}
        self._types = str(present["type"].attrs.get("flag_meanings", "")).split()
        self._units = [str(u) for u in present["units"].attrs.get("unit_strings", [])]  # type: ignore[union-attr]
        self._offsets = np.concatenate([[0], np.cumsum(self._index["count"])])
        self._check()

    # ---- what it holds -----------------------------------------------------------------------
    @property
    def n_requests(self) -> int:
        return len(np.unique(self._index["request"]))

    @property
    def n_obs(self) -> int:
        return int(self._offsets[-1])

    def requests(self, start: int, stop: int) -> list[RecordedRequest]:
        """The requests queued before steps ``start`` .. ``stop - 1``, in the order accepted."""
        steps = self._index["step"]
        lo, hi = np.searchsorted(steps, start, "left"), np.searchsorted(steps, stop, "left")
        if lo == hi:
            return []
        o0, o1 = int(self._offsets[lo]), int(self._offsets[hi])
        obs = {n: self._read(n, o0, o1) for n in RF.OBS_ARRAYS}
        out: list[RecordedRequest] = []
        for row in range(int(lo), int(hi)):
            a, b = int(self._offsets[row]) - o0, int(self._offsets[row + 1]) - o0
            batch = ObservationBatch(
                type=self._types[int(self._index["type"][row])],
                values=obs["value"][a:b], errors=obs["error"][a:b],
                lat=obs["lat"][a:b], lon=obs["lon"][a:b],
                times=obs["time"][a:b].astype("datetime64[s]"),
                units=self._units[int(self._index["units"][row])],
            )  # fmt: skip
            serial, step = int(self._index["request"][row]), int(steps[row])
            if out and out[-1].serial == serial:
                out[-1] = RecordedRequest(serial, step, (*out[-1].batches, batch))
            else:
                out.append(RecordedRequest(serial, step, (batch,)))
        return out

    def beyond(self, n_steps: int) -> list[str]:
        """Why requests queued before step ``n_steps`` or later are not replayed (one line
        each): the record's committed steps end before their analysis."""
        lines = []
        steps = self._index["step"]
        for serial in np.unique(self._index["request"][steps >= n_steps]).tolist():
            rows = np.nonzero(self._index["request"] == serial)[0]
            n = int(self._index["count"][rows].sum())
            lines.append(
                f"observation request {serial} ({len(rows)} batch(es), {n} observations) was "
                f"queued before step {int(steps[rows[0]])}, after the record's last committed "
                f"step {n_steps - 1}: not replayed"
            )
        return lines

    # ---- checks --------------------------------------------------------------------------------
    def _check(self) -> None:
        idx, n = self._index, self.n_batches
        if (idx["count"] < 1).any():
            raise self._error("corrupt", f"{RF.OBSERVATIONS}/count: a batch without observations")
        if n and ((np.diff(idx["step"]) < 0).any() or (np.diff(idx["request"]) < 0).any()):
            raise self._error("corrupt", f"{RF.OBSERVATIONS}/step or /request: rows out of order")
        if n and (idx["type"].min() < 0 or idx["type"].max() >= len(self._types)):
            raise self._error("corrupt", f"{RF.OBSERVATIONS}/type: a code outside its "
                              f"flag_meanings {self._types}")  # fmt: skip
        if n and (idx["units"].min() < 0 or idx["units"].max() >= len(self._units)):
            raise self._error("corrupt", f"{RF.OBSERVATIONS}/units: a code outside its "
                              f"unit_strings {self._units}")  # fmt: skip
        for name in RF.OBS_ARRAYS:
            have = int(self._arrays[name].shape[0])
            if have < self.n_obs:
                raise self._error(
                    "missing_data",
                    f"{RF.OBSERVATIONS}/{name}: {have} observations, the committed batches "
                    f"hold {self.n_obs}",
                )

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        arr = self._arrays[name]
        if int(arr.shape[0]) < stop:
            raise self._error("missing_data", f"{RF.OBSERVATIONS}/{name}: {arr.shape[0]} rows, "
                              f"{stop} are committed")  # fmt: skip
        try:
            values = np.asarray(arr[start:stop])
        except Exception as exc:
            raise self._error("corrupt", f"{RF.OBSERVATIONS}/{name}: rows {start}..{stop - 1} do "
                              f"not decode: {type(exc).__name__}: {exc}") from None  # fmt: skip
        fill = np.isnan(values) if values.dtype.kind == "f" else values == -1
        if fill.any():
            row = start + int(np.argmax(fill))
            raise self._error("missing_data", f"{RF.OBSERVATIONS}/{name}: row {row} is committed "
                              "but its chunk is missing from the store")  # fmt: skip
        values.flags.writeable = False
        return values

    def _error(self, rule: str, message: str) -> RecordError:
        return RecordError(self.url, rule, message)
