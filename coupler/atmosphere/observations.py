"""Observations for the sessions of a coupled run (``landcoupler run --assimilate OBS.zarr``).

The observation file (the Zarr layout of ``assimilation.observations_url``, docs/assimilation.md:
one dimension ``obs``; ``type``, ``value``, ``error``, ``lat``, ``lon``, ``time``) covers the
whole globe, but each rank's session holds only its own land cells and refuses observations
outside them. So the run maps every observation to its nearest land cell (great-circle) and
writes one file per rank under ``OUT/observations/rank<r>.zarr`` (ranks without observations get
none); every session then opens with its own file, and checks it as any session does (types,
values, errors, windows: refusals name ``assimilation.observations_url.<variable>``).

An observation farther than ``match_km`` from every land cell (over the ocean, or outside the
grid's land) is refused here, naming ``assimilate.lat`` and the rule ``in_domain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from coupler.assimilation.localization import great_circle_km
from coupler.atmosphere.grid import CellGrid
from coupler.atmosphere.runconfig import RunConfigError

#: the variables an observation file must hold
VARIABLES = ("type", "value", "error", "lat", "lon", "time")
KM_PER_DEGREE = 111.2


def match_km(resolution: float) -> float:
    """How far an observation may lie from its cell's centre: half the diagonal of a grid cell
    of ``resolution`` degrees at the equator (any point inside a land cell maps to it)."""
    return 0.5 * np.sqrt(2.0) * resolution * KM_PER_DEGREE


def split_by_rank(
    url: str, grid: CellGrid, parts: Sequence[np.ndarray], out: Path, max_km: float
) -> tuple[tuple[str | None, ...], tuple[int, ...]]:
    """Write the observations of ``url`` nearest to each rank's land cells to
    ``out/rank<r>.zarr``; returns the per-rank URLs (None: no observation) and counts."""
    import xarray as xr

    try:
        ds = xr.open_zarr(url, consolidated=False)
    except Exception as exc:  # any unreadable store: say which and why
        raise RunConfigError(
            f"cannot open {url!r}: {exc}", field="assimilate", rule="readable"
        ) from None
    missing = [v for v in VARIABLES if v not in ds.variables]
    if missing or "obs" not in ds.dims:
        raise RunConfigError(
            f"{url!r} needs the variables {', '.join(VARIABLES)} along dimension obs; "
            f"missing {', '.join(missing) or 'the obs dimension'}",
            field="assimilate", rule="layout",
        )  # fmt: skip
    lat = np.asarray(ds["lat"].values, dtype=np.float64)
    lon = np.asarray(ds["lon"].values, dtype=np.float64)
    land = grid.land_index
    dist = great_circle_km(
        torch.from_numpy(lat)[:, None],
        torch.from_numpy(lon)[:, None],
        torch.from_numpy(grid.lat[land])[None, :],
        torch.from_numpy(grid.lon[land])[None, :],
    ).numpy()
    if lat.size:
        nearest = dist.argmin(axis=1)
        far = np.nonzero(dist[np.arange(lat.size), nearest] > max_km)[0]
    else:
        nearest, far = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if far.size:
        i = int(far[0])
        raise RunConfigError(
            f"{far.size} observation(s) lie farther than {max_km:.0f} km from every land cell, "
            f"e.g. obs {i} at ({lat[i]:.2f}, {lon[i]:.2f})",
            field="assimilate.lat", rule="in_domain",
        )  # fmt: skip
    rank_of = np.empty(land.size, dtype=np.int64)
    position = {int(c): k for k, c in enumerate(land)}
    for r, part in enumerate(parts):
        rank_of[[position[int(c)] for c in part]] = r
    obs_rank = rank_of[nearest]
    out.mkdir(parents=True, exist_ok=True)
    urls: list[str | None] = []
    counts: list[int] = []
    for r in range(len(parts)):
        idx = np.nonzero(obs_rank == r)[0]
        counts.append(int(idx.size))
        if not idx.size:
            urls.append(None)
            continue
        sub = ds[list(VARIABLES)].isel(obs=idx).load()
        for name in VARIABLES:
            sub[name].encoding = {
                k: v for k, v in ds[name].encoding.items() if k in ("units", "calendar", "dtype")
            }
        path = out / f"rank{r}.zarr"
        sub.to_zarr(path, mode="w", consolidated=False)
        urls.append(str(path))
    return tuple(urls), tuple(counts)
