"""Shared by the session-DA tests (tests/coupler/core, tests/contracts, tests/coupler/atmosphere):
smooth hourly forcing for a few cells and a writer of Zarr observation files in the layout
``coupler.core.obsfile`` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from tests.coupler.wire.conftest import forcing as wire_forcing

#: integer codes of the observation types (the file's ``type`` flag_values)
CODES = {"lai": 0, "hfls": 1, "hfss": 2, "ts": 3}


def forcing(index: int, n: int = 3) -> dict[str, np.ndarray]:
    """Smooth, physically valid hourly forcing (clear June days, a shower every few hours on the
    wetter 60 % of the cells)."""
    return wire_forcing(index, n, wet_above=0.4)


def write_observations(
    url: str | Path, rows: list[tuple[str, float, float, float, float, str]]
) -> None:
    """An observation file at ``url``: rows of (type, value, error, lat, lon, time)."""
    ds = xr.Dataset(
        {
            "type": ("obs", np.array([CODES[r[0]] for r in rows], dtype=np.int8),
                     {"flag_values": [0, 1, 2, 3], "flag_meanings": "lai hfls hfss ts"}),
            "value": ("obs", np.array([r[1] for r in rows])),
            "error": ("obs", np.array([r[2] for r in rows])),
            "lat": ("obs", np.array([r[3] for r in rows])),
            "lon": ("obs", np.array([r[4] for r in rows])),
            "time": ("obs", np.array([r[5] for r in rows], dtype="datetime64[ns]")),
        }
    )  # fmt: skip
    ds.to_zarr(url, mode="w", consolidated=False)
