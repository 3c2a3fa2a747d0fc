"""Observation operators on (member, cell) land outputs, and the short history they need.

Each observable registry variable has an operator over a time window that starts at the
observation's time:
- ``lai``: 8-day composite (GLASS-like): mean of the daily-mean cell LAI over the 8 UTC days
  starting at the observation's time (which must be 00:00 UTC);
- ``hfls``, ``hfss``: daily mean latent / sensible heat flux of the UTC day starting at the
  observation's time (00:00 UTC), W m-2 positive upward;
- ``ts``: skin temperature of the model step whose interval [t, t + dt) contains the
  observation's time (the satellite overpass), K.
The observed ensemble of an observation is computed from the history recorded after every step
(:class:`ObservationBuffer`): daily means for ``keep_days`` days, and the last ``keep_steps``
steps of instantaneous variables. An observation whose window is not complete yet, or older
than the history, is refused (InvalidArgument, field ``times``, rule ``window``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from coupler.assimilation.localization import great_circle_km
from coupler.assimilation.settings import WINDOWS
from coupler.errors import InvalidArgument
from emulators import variables as V
from emulators.constants import SECONDS_PER_DAY


@dataclass(frozen=True, eq=False)
class ObservationSet:
    """Observations mapped onto a domain, all (P,): ``variable`` registry names, ``cell``
    indices, ``time`` (datetime64[s], window start), ``value`` and ``error_sd`` (variable's
    units; error standard deviation > 0)."""

    variable: tuple[str, ...]
    cell: np.ndarray
    time: np.ndarray
    value: np.ndarray
    error_sd: np.ndarray

    def __len__(self) -> int:
        return len(self.variable)

    def to_tensors(self) -> dict[str, Any]:
        """Plain types and tensors (for checkpoints): times as int64 s since 1970."""
        return {
            "variable": list(self.variable),
            "cell": torch.from_numpy(np.array(self.cell, dtype=np.int64)),
            "time": torch.from_numpy(self.time.astype("datetime64[s]").astype(np.int64)),
            "value": torch.from_numpy(np.array(self.value, dtype=np.float64)),
            "error_sd": torch.from_numpy(np.array(self.error_sd, dtype=np.float64)),
        }

    @staticmethod
    def from_tensors(d: Mapping[str, Any]) -> ObservationSet:
        return ObservationSet(
            tuple(str(v) for v in d["variable"]),
            d["cell"].numpy().astype(np.int64),
            d["time"].numpy().astype("datetime64[s]"),
            d["value"].numpy().astype(np.float64),
            d["error_sd"].numpy().astype(np.float64),
        )

    @staticmethod
    def concat(sets: Sequence[ObservationSet]) -> ObservationSet:
        if not sets:
            return ObservationSet(
                (), np.zeros(0, np.int64), np.zeros(0, "datetime64[s]"), np.zeros(0), np.zeros(0)
            )
        return ObservationSet(
            tuple(v for s in sets for v in s.variable),
            np.concatenate([s.cell for s in sets]),
            np.concatenate([s.time for s in sets]),
            np.concatenate([s.value for s in sets]),
            np.concatenate([s.error_sd for s in sets]),
        )


def locate(
    variable: str,
    values: np.ndarray,
    errors: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    times: np.ndarray,
    grid_lat: np.ndarray,
    grid_lon: np.ndarray,
    match_km: float,
    prefix: str = "",
) -> ObservationSet:
    """Map one validated batch onto the domain: each observation goes to the nearest cell by
    great-circle distance, which must be within ``match_km`` (else InvalidArgument, field
    ``<prefix>lat``, rule ``in_domain``). The variable must have an operator (rule
    ``observable``); windowed variables need window starts at 00:00 UTC (``times``,
    ``day_aligned``)."""
    if variable not in WINDOWS or not V.REGISTRY[variable].observable:
        raise InvalidArgument(
            f"{prefix}type: no observation operator for {variable!r} (known: {', '.join(WINDOWS)})",
            field=prefix + "type",
            rule="observable",
        )
    times = np.asarray(times).astype("datetime64[s]")
    if WINDOWS[variable] and (times.astype(np.int64) % SECONDS_PER_DAY != 0).any():
        raise InvalidArgument(
            f"{prefix}times: {variable} windows must start at 00:00 UTC",
            field=prefix + "times",
            rule="day_aligned",
        )
    d = great_circle_km(
        torch.from_numpy(np.asarray(lat, float))[:, None],
        torch.from_numpy(np.asarray(lon, float))[:, None],
        torch.from_numpy(np.asarray(grid_lat, float))[None, :],
        torch.from_numpy(np.asarray(grid_lon, float))[None, :],
    )
    dist, cell = d.min(dim=1)
    far = dist > match_km
    if bool(far.any()):
        i = int(far.nonzero()[0, 0])
        raise InvalidArgument(
            f"{prefix}lat: observation {i} at ({float(lat[i]):.4g}, {float(lon[i]):.4g}) is "
            f"{float(dist[i]):.0f} km from the nearest cell of the domain (limit {match_km:g} km)",
            field=prefix + "lat",
            rule="in_domain",
        )
    n = len(values)
    return ObservationSet(
        (variable,) * n,
        cell.numpy().astype(np.int64),
        times,
        np.asarray(values, float),
        np.asarray(errors, float),
    )


class ObservationBuffer:
    """History of the observable outputs of an ensemble (member, cell), fed after every step."""

    def __init__(self, keep_days: int = 9, keep_steps: int = 48) -> None:
        if keep_days < 8 or keep_steps < 1:
            raise InvalidArgument(
                "buffer: keep_days must be >= 8 (LAI composites) and keep_steps >= 1",
                field="buffer",
                rule="min",
            )
        self.keep_days = keep_days
        self.keep_steps = keep_steps
        self._daily: dict[int, dict[str, torch.Tensor]] = {}
        self._steps: dict[int, tuple[int, dict[str, torch.Tensor]]] = {}
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_time = 0.0
        self._acc_day: int | None = None
        self.now: int | None = None  # s since epoch: end of the last recorded step

    def record(self, outputs: Mapping[str, torch.Tensor], start: np.datetime64, dt: float) -> None:
        """Add one step [start, start + dt) of outputs (member, cell)."""
        t0 = int(np.asarray(start).astype("datetime64[s]").astype(np.int64))
        t1 = t0 + int(dt)
        day = t0 // SECONDS_PER_DAY
        if self._acc_day is not None and day != self._acc_day:
            self._acc, self._acc_time = {}, 0.0  # a partial day is never published
        self._acc_day = day
        daily_vars = [v for v, w in WINDOWS.items() if w]
        for v in daily_vars:
            if v in outputs:
                x = outputs[v].detach().to(torch.float64) * float(dt)
                self._acc[v] = self._acc[v] + x if v in self._acc else x.clone()
        self._acc_time += float(dt)
        inst = {
            v: outputs[v].detach().to(torch.float64).clone()
            for v, w in WINDOWS.items()
            if not w and v in outputs
        }
        self._steps[t0] = (t1, inst)
        for old in sorted(self._steps)[: max(0, len(self._steps) - self.keep_steps)]:
            del self._steps[old]
        if t1 % SECONDS_PER_DAY == 0 or dt >= SECONDS_PER_DAY:
            self._daily[day] = {v: s / self._acc_time for v, s in self._acc.items()}
            self._acc, self._acc_time, self._acc_day = {}, 0.0, None
            for old in sorted(self._daily)[: max(0, len(self._daily) - self.keep_days)]:
                del self._daily[old]
        self.now = t1

    def available(self, obs: ObservationSet) -> np.ndarray:
        """(P,) bool: the window of each observation is complete and still in the history."""
        ok = np.zeros(len(obs), dtype=bool)
        for j, (v, t) in enumerate(zip(obs.variable, obs.time.astype(np.int64), strict=True)):
            w = WINDOWS[v]
            if w == 0:
                ok[j] = any(s <= t < e and v in inst for s, (e, inst) in self._steps.items())
            else:
                days = range(int(t) // SECONDS_PER_DAY, (int(t) + w) // SECONDS_PER_DAY)
                ok[j] = all(d in self._daily and v in self._daily[d] for d in days)
        return ok

    def check(self, obs: ObservationSet, prefix: str = "") -> None:
        """InvalidArgument(``times``, ``window``) unless every observation is available."""
        ok = self.available(obs)
        if not ok.all():
            j = int(np.nonzero(~ok)[0][0])
            raise InvalidArgument(
                f"{prefix}times: observation {j} ({obs.variable[j]} at {obs.time[j]}) has a "
                f"window that is not complete yet or no longer in the ensemble's history "
                f"(last {self.keep_days} days, {self.keep_steps} steps)",
                field=prefix + "times",
                rule="window",
            )

    def observed(self, obs: ObservationSet) -> torch.Tensor:
        """Observed ensemble hE (member, P) of ``obs`` (all available, see :meth:`check`)."""
        cols = []
        for v, t, c in zip(obs.variable, obs.time.astype(np.int64), obs.cell, strict=True):
            w = WINDOWS[v]
            if w == 0:
                inst = next(i for s, (e, i) in self._steps.items() if s <= t < e)
                cols.append(inst[v][:, c])
            else:
                days = range(int(t) // SECONDS_PER_DAY, (int(t) + w) // SECONDS_PER_DAY)
                cols.append(torch.stack([self._daily[d][v][:, c] for d in days]).mean(0))
        return torch.stack(cols, dim=1)

    def daily_mean(self, variable: str, day: int) -> torch.Tensor:
        """Daily mean (member, cell) of ``variable`` on UTC day ``day`` (days since 1970-01-01)."""
        return self._daily[day][variable]

    def instant(self, variable: str, time: int) -> torch.Tensor:
        """(member, cell) value of an instantaneous variable in the step containing ``time``
        (s since 1970-01-01)."""
        return next(i for s, (e, i) in self._steps.items() if s <= time < e)[variable]

    def state_dict(self) -> dict[str, Any]:
        """The history as plain containers of tensors (shallow copies: recorded tensors are
        never modified in place, so this is also a cheap snapshot for :meth:`load_state_dict`)."""
        return {
            "daily": {d: dict(v) for d, v in self._daily.items()},
            "steps": {t: (e, dict(i)) for t, (e, i) in self._steps.items()},
            "acc": dict(self._acc),
            "acc_time": self._acc_time,
            "acc_day": self._acc_day,
            "now": self.now,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a history from :meth:`state_dict` (as saved, or read back from a checkpoint)."""
        self._daily = {int(d): dict(v) for d, v in state["daily"].items()}
        self._steps = {int(t): (int(e), dict(i)) for t, (e, i) in state["steps"].items()}
        self._acc = dict(state["acc"])
        self._acc_time = float(state["acc_time"])
        self._acc_day = None if state["acc_day"] is None else int(state["acc_day"])
        self.now = None if state["now"] is None else int(state["now"])
