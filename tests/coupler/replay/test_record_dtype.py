"""Forcing is recorded in the dtype it came in: float32 stays float32 (exactly), float64 stays
float64, and replay widens it as the service does (bitwise). The first recorded step fixes a
field's dtype: a later float64 step that float32 holds exactly is stored; one it cannot hold is
refused (``record_dtype``) and the session is unchanged, so the record never loses data.
Records written before the dtype was kept (float64, no ``landcoupler_wire_dtype``) still read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from coupler.core import checkpoint
from coupler.core.manager import SessionManager
from coupler.errors import FailedPrecondition
from coupler.replay import RecordSource, replay

from .conftest import forcing, record, spec

N = 4


def _as(fields: dict[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in fields.items()}


def test_a_float64_step_in_a_float32_record_is_stored_if_exact_else_refused(
    tmp_path: Path,
) -> None:
    url = str(tmp_path / "rank0.zarr")
    manager = SessionManager()
    session = manager.open(spec(N, record_url=url), "alice")
    sent = [_as(forcing(i, N), np.float32) for i in range(6)]
    session.step(0, sent[0])  # fixes float32 for every forcing field
    session.step(1, _as(sent[1], np.float64))  # float64, but float32 holds it exactly
    state = {k: v.clone() for k, v in session.state.tensors.items()}
    inexact = _as(sent[2], np.float64)
    inexact["rsds"] = forcing(2, N)["rsds"] + 1e-9  # not a float32 value
    with pytest.raises(FailedPrecondition) as err:
        session.step(2, inexact)
    assert (err.value.field, err.value.rule) == ("rsds", "record_dtype")
    assert "stores it as float32" in str(err.value) and "float64 values" in str(err.value)
    assert session.next_index == 2  # refused: nothing changed
    assert all(v.equal(state[k]) for k, v in session.state.tensors.items())
    for i in range(2, 6):  # the client sends float32 again
        session.step(i, sent[i])
    manager.close(session.id, "alice")
    src = RecordSource(url)
    block = src.read(0, 6).fields
    for name in src.forcing:
        assert src.dtypes[name] == np.float32
        assert block[name].tobytes() == np.stack([s[name] for s in sent]).tobytes(), name
    assert replay(url).bitwise_equal


def test_a_float32_step_in_a_float64_record_is_widened_exactly(tmp_path: Path) -> None:
    url = str(tmp_path / "rank0.zarr")
    manager = SessionManager()
    session = manager.open(spec(N, record_url=url), "alice")
    sent = [forcing(0, N), _as(forcing(1, N), np.float32), forcing(2, N)]
    for i, fields in enumerate(sent):
        session.step(i, fields)
    manager.close(session.id, "alice")
    src = RecordSource(url)
    assert all(src.dtypes[n] == np.float64 for n in src.forcing)
    tas = src.read(0, 3).fields["tas"]
    assert tas.tobytes() == np.stack([s["tas"].astype(np.float64) for s in sent]).tobytes()
    assert replay(url).bitwise_equal


def test_a_record_from_before_the_wire_dtype_attribute_still_replays(tmp_path: Path) -> None:
    url = str(tmp_path / "rank0.zarr")
    record(url, 30, n=N)
    group = zarr.open_group(url, mode="a")
    for _, arr in group.arrays():
        if "landcoupler_wire_dtype" in arr.attrs:
            del arr.attrs["landcoupler_wire_dtype"]
    src = RecordSource(url)
    assert src.dtypes["tas"] == np.float64 and src.n_steps == 30
    assert replay(url).bitwise_equal


def test_a_resumed_float32_record_keeps_its_dtype(tmp_path: Path) -> None:
    url = str(tmp_path / "rank0.zarr")
    ckpt = str(tmp_path / "ckpt") + "/"
    manager = SessionManager()
    cfg = spec(N, record_url=url, checkpoint_url=ckpt, checkpoint_every=10)
    session = manager.open(cfg, "alice")
    for i in range(13):
        session.step(i, _as(forcing(i, N), np.float32))
    manager.close(session.id, "alice")
    resumed = manager.resume(checkpoint.default_url(ckpt, session.id), "alice")
    assert resumed.next_index == 10
    for i in range(10, 25):
        resumed.step(i, _as(forcing(i, N), np.float32))
    manager.close(resumed.id, "alice")
    src = RecordSource(url)
    assert src.dtypes["tas"] == np.float32 and src.n_steps == 25 and src.starts == [0, 10]
    assert replay(url).bitwise_equal
