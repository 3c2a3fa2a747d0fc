"""Sessions whose observations come from a Zarr observation file (``assimilation.observations_url``)
replay bit for bit: the replayed session re-reads the file and resumes its cursor from the start
state. A file that changed since the recording is refused (its fingerprint is in the start
state), and a file that is gone is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from coupler.assimilation import configio
from coupler.core.manager import SessionManager
from coupler.errors import FailedPrecondition
from coupler.replay import RecordError, replay

from .conftest import forcing, grid, spec

N = 3
STEPS = 60


def _write(url: Path, value_shift: float = 0.0) -> None:
    g = grid(N)
    rows = [  # (type, value, error, cell, time)
        ("ts", 291.0, 1.0, 0, "2001-06-01T10:30"),  # due after step 10
        ("ts", 289.5, 1.0, 2, "2001-06-01T10:30"),
        ("hfls", 60.0, 10.0, 1, "2001-06-01T00:00"),  # daily mean: due after step 23
        ("hfss", 25.0, 8.0, 2, "2001-06-02T00:00"),  # due after step 47
        ("ts", 288.0, 1.0, 0, "2001-05-31T10:30"),  # before the run: skipped (window)
        ("lai", 2.0, 0.2, 0, "2001-06-01T00:00"),  # 8-day window: not due within the run
    ]
    codes = {"lai": 0, "hfls": 1, "hfss": 2, "ts": 3}
    xr.Dataset(
        {
            "type": ("obs", np.array([codes[r[0]] for r in rows], dtype=np.int8),
                     {"flag_values": [0, 1, 2, 3], "flag_meanings": "lai hfls hfss ts"}),
            "value": ("obs", np.array([r[1] for r in rows]) + value_shift),
            "error": ("obs", np.array([r[2] for r in rows])),
            "lat": ("obs", g.lat[[r[3] for r in rows]]),
            "lon": ("obs", g.lon[[r[3] for r in rows]]),
            "time": ("obs", np.array([r[4] for r in rows], dtype="datetime64[ns]")),
        }
    ).to_zarr(str(url), mode="w", consolidated=False)  # fmt: skip


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("obsfile")
    obs, path = tmp / "obs.zarr", tmp / "rank0.zarr"
    _write(obs)
    da = configio.from_options({"initial_leaf_carbon_sd": 0.2, "seed": 3,
                                "observations_url": str(obs)})  # fmt: skip
    manager = SessionManager()
    s = manager.open(spec(N, record_url=str(path), assimilation=da, members=4), "a")
    for k in range(STEPS):
        s.step(k, forcing(k, N))
    manager.close(s.id, "a")
    return obs, path


def test_a_session_fed_by_an_observation_file_replays_bit_for_bit(
    recorded: tuple[Path, Path],
) -> None:
    _, path = recorded
    n_obs = np.asarray(zarr.open_group(str(path), mode="r")["assim_n_obs"][:])
    assert np.flatnonzero(np.isfinite(n_obs)).tolist() == [11, 24, 48]
    result = replay(str(path))
    assert result.mode == "bitwise" and result.bitwise_equal, result.first_difference
    assert result.observations["requests"] == 0  # nothing came through Assimilate
    assert replay(str(path), steps=(30, STEPS)).bitwise_equal


def test_a_changed_observation_file_is_refused(recorded: tuple[Path, Path], tmp_path: Path) -> None:
    obs, path = recorded
    original = {p: p.read_bytes() for p in obs.rglob("*") if p.is_file()}
    try:
        _write(obs, value_shift=0.5)
        with pytest.raises(RecordError) as err:
            replay(str(path))
        assert err.value.rule == "observations_file"
        assert f"the observation file {str(obs)!r} changed since the recording" in str(err.value)
        for p in obs.rglob("*"):
            if p.is_file():
                p.unlink()
        with pytest.raises(FailedPrecondition) as gone:
            replay(str(path))
        assert (gone.value.field, gone.value.rule) == ("assimilation.observations_url", "readable")
    finally:
        for p, data in original.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    assert replay(str(path), steps=(0, 30)).bitwise_equal
