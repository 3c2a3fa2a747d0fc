"""Shared by the session-DA tests (tests/coupler/core, tests/contracts, tests/coupler/atmosphere):
smooth hourly forcing for a few cells and a writer of Zarr observation files in the layout
``coupler.core.obsfile`` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

#: integer codes of the observation types (the file's ``type`` flag_values)
CODES = {"lai": 0, "hfls": 1, "hfss": 2, "ts": 3}


def forcing(index: int, n: int = 3) -> dict[str, np.ndarray]:
    """Smooth, physically valid hourly forcing (clear June days, a shower every few hours)."""
    hour = index % 24
    day = max(0.0, np.cos((hour - 12.0) / 12.0 * np.pi))
    ramp = np.linspace(0.0, 1.0, n)
    return {
        "tas": 288.0 + 6.0 * day + 2.0 * ramp,
        "huss": 0.006 + 0.002 * ramp,
        "ps": np.full(n, 98_000.0) + 1_000.0 * ramp,
        "sfcWind": 2.0 + ramp,
        "pr": np.where(ramp > 0.4, 2e-5 * (index % 3), 0.0),
        "rsds": 850.0 * day * (0.8 + 0.2 * ramp),
        "rlds": 320.0 + 20.0 * ramp,
    }


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
