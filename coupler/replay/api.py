"""``replay(url, ...)``: replay every (chosen) rank of a record and compare with it.

The result holds the mode (bitwise or A/B), whether every output is bit-identical to the record,
the first differing step/field/cell, and the recorded and replayed outputs (step, cell) per rank
for the skill tables and plots of :mod:`coupler.replay.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from coupler.errors import InvalidArgument
from coupler.replay.engine import Difference
from coupler.replay.ranks import RankData, cores, replay_ranks
from coupler.replay.runindex import open_run
from coupler.replay.source import RecordSource
from emulators import metrics as M

__all__ = ["RankData", "ReplayResult", "replay"]


@dataclass
class ReplayResult:
    record: str
    mode: str
    backend: str
    recorded_backend: dict[str, Any]
    steps: tuple[int, int]
    ranks: list[int]
    bitwise_equal: bool
    first_difference: Difference | None
    truncated: list[str]
    seconds: float
    data: list[RankData]
    #: recorded Assimilate requests re-sent: ``requests``, ``observations`` (counts over the
    #: ranks) and ``ignored`` (one line per request the record's steps end before)
    observations: dict[str, Any] = field(default_factory=dict)
    #: worker processes the ranks were replayed in (1: serially, in this process)
    workers: int = 1

    @property
    def steps_per_second(self) -> float:
        """Run steps (every rank one step) per second of replay."""
        n = self.steps[1] - self.steps[0]
        return n / self.seconds if self.seconds > 0 else float("nan")

    def datasets(self) -> tuple[xr.Dataset, xr.Dataset]:
        """(replayed, recorded) as Datasets of (time, cell) over every rank, with ``lat``,
        ``lon`` and ``rank`` cell coordinates and the registry's units."""
        from emulators import variables as V

        out = []
        for which in ("replayed", "recorded"):
            parts = []
            for d in self.data:
                arrays = getattr(d, which)
                coords = {"time": d.times, "lat": ("cell", d.lat), "lon": ("cell", d.lon),
                          "rank": ("cell", np.full(d.lat.size, d.rank))}  # fmt: skip
                parts.append(xr.Dataset({k: (("time", "cell"), v) for k, v in arrays.items()},
                                        coords=coords))  # fmt: skip
            ds = xr.concat(parts, dim="cell") if len(parts) > 1 else parts[0]
            for name in ds.data_vars:
                base = str(name).removesuffix("_spread")
                if base in V.REGISTRY:
                    ds[name].attrs["units"] = V.REGISTRY[base].units
            out.append(ds)
        return out[0], out[1]

    def skill(self) -> pd.DataFrame:
        """Skill of the replayed outputs against the record, per variable, over every step
        and cell (``emulators.metrics.skill_table``; undefined metrics are NaN)."""
        sim, obs = self.datasets()
        return M.skill_table(sim, obs, strict=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "mode": self.mode,
            "backend": self.backend,
            "recorded_backend": self.recorded_backend,
            "steps": list(self.steps),
            "ranks": self.ranks,
            "bitwise_equal": self.bitwise_equal,
            "first_difference": None
            if self.first_difference is None
            else self.first_difference.to_dict(),
            "truncated": self.truncated,
            "observations": self.observations,
            "seconds": self.seconds,
            "workers": self.workers,
            "steps_per_second": self.steps_per_second,
            "skill": M.table_to_records(self.skill()) if self.data else [],
        }


def replay(
    url: str | Sequence[RecordSource],
    *,
    backend: str | None = None,
    steps: tuple[int, int | None] = (0, None),
    ranks: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
    collect: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    workers: int | None = None,
) -> ReplayResult:
    """Replay the record(s) at ``url`` (one rank's record or a run prefix with
    ``rank<r>.zarr``) on ``backend`` (default: the recorded one) over ``steps`` [a, b) (b None:
    every committed step), comparing with the record. ``progress(n)`` is called per step
    replayed; ``collect`` keeps the outputs for skill and plots. Ranks are independent: they are
    replayed in ``workers`` processes (default: one per rank, at most the cores available;
    1: one after the other in this process; ``coupler.replay.ranks``) with the same results
    (threads were measured slower: the land step is bound by Python dispatch under the GIL).
    The first difference reported is the earliest step's (lowest rank on a tie)."""
    sources = (
        open_run(url, ranks, storage_options) if isinstance(url, str) else list(url)
    )  # fmt: skip
    n_steps = min(s.n_steps for s in sources)
    a, b = steps[0], n_steps if steps[1] is None else min(steps[1], n_steps)
    if workers is not None and workers < 1:
        raise InvalidArgument(f"workers: must be >= 1, got {workers}", field="workers",
                              rule="int_range")  # fmt: skip
    n_workers = min(len(sources), cores() if workers is None else workers)
    t0 = time.perf_counter()
    done = replay_ranks(sources, backend, a, b, collect, progress, n_workers, storage_options)
    seconds = time.perf_counter() - t0
    diffs = [o.first for o in done if o.first is not None]
    first = min(diffs, key=lambda d: (d.step, d.rank)) if diffs else None
    observations = {
        "requests": sum(o.requests_sent for o in done),
        "observations": sum(o.observations_sent for o in done),
        "ignored": [f"rank {s.rank}: {line}" for s in sources
                    for line in s.observations.beyond(s.n_steps)],
    }  # fmt: skip
    head = sources[0]
    return ReplayResult(
        record=url if isinstance(url, str) else head.url,
        mode="ab" if any(o.mode == "ab" for o in done) else "bitwise",
        backend=backend or head.spec.backend,
        recorded_backend=head.backend,
        steps=(a, b),
        ranks=[s.rank for s in sources],
        bitwise_equal=first is None,
        first_difference=first,
        truncated=[f"rank {s.rank}: {s.truncated}" for s in sources if s.truncated],
        seconds=seconds,
        data=[o.data for o in done],
        observations=observations,
        workers=max(1, n_workers),
    )
