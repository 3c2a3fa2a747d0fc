"""All ranks of a run: ``RECORD_URL`` is one rank's record, or a prefix holding ``rank<r>.zarr``
records of one run id (what ``landcoupler run`` and ``ServiceLand`` write). :func:`open_run`
returns their :class:`RecordSource` in rank order; :func:`open_dataset` opens them as one
xarray Dataset (cells of every rank concatenated, with a ``rank(cell)`` coordinate).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import fsspec
import numpy as np
import xarray as xr

from coupler.replay.source import RecordError, RecordSource

_RANK = re.compile(r"rank(\d+)\.zarr$")


def rank_urls(url: str, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The record URLs under ``url``: ``[url]`` for a record, else its ``rank<r>.zarr``
    children sorted by r (RecordError ``not_found`` when there are none)."""
    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    path = path.rstrip("/")
    if fs.exists(f"{path}/zarr.json"):
        return [url]
    try:
        children = [str(c).rstrip("/") for c in fs.ls(path, detail=False)]
    except (FileNotFoundError, NotADirectoryError):
        raise RecordError(url, "not_found", "no record and no rank<r>.zarr records there") from None
    ranked = sorted(
        (int(m.group(1)), c) for c in children if (m := _RANK.search(c.rsplit("/", 1)[-1]))
    )
    if not ranked:
        raise RecordError(url, "not_found", "no record and no rank<r>.zarr records there")
    base = url.rstrip("/")
    return [f"{base}/{c.rsplit('/', 1)[-1]}" for _, c in ranked]


def open_run(
    url: str,
    ranks: Sequence[int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[RecordSource]:
    """The records of one run (optionally only ``ranks``), checked to share the run id."""
    sources = [RecordSource(u, storage_options) for u in rank_urls(url, storage_options)]
    run_ids = {s.run_id for s in sources}
    if len(run_ids) > 1:
        raise RecordError(url, "run_id", f"records of different runs: {sorted(run_ids)}")
    by_rank = {s.rank: s for s in sources}
    if len(by_rank) != len(sources):
        raise RecordError(url, "rank", "two records claim the same rank")
    if ranks is None:
        return [by_rank[r] for r in sorted(by_rank)]
    unknown = sorted(set(ranks) - set(by_rank))
    if unknown:
        raise RecordError(url, "rank", f"no rank(s) {unknown}; the run has {sorted(by_rank)}")
    return [by_rank[r] for r in ranks]


def open_dataset(url: str, storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Every rank of the run at ``url`` as one Dataset, (time, cell) fields, up to the shortest
    rank's committed steps; ``rank(cell)`` tells which record a cell came from."""
    sources = open_run(url, storage_options=storage_options)
    steps = min(s.n_steps for s in sources)
    parts = []
    for s in sources:
        ds = xr.open_zarr(s.url, consolidated=False, storage_options=storage_options)
        ds = ds.isel(time=slice(0, steps)).transpose("time", ...)
        parts.append(ds.assign_coords(rank=("cell", np.full(s.n_cells, s.rank))))
    return xr.concat(parts, dim="cell", data_vars="minimal", coords="minimal",
                     compat="override", combine_attrs="drop_conflicts")  # fmt: skip
