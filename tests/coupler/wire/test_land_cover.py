"""UpdateLandCover over a real server on 127.0.0.1:0: the change conserves water, heat and leaf
carbon (residuals in the reply), every malformed request is refused naming the field and rule
with the session unchanged, the in-process client answers the same, a checkpoint carries the new
cover, and a record with cover changes replays bit for bit."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.core.manager import SessionManager
from coupler.replay import RankReplay, RecordSource
from coupler.replay.engine import compare
from coupler.wire import fields as F
from emulators.parameters import N_CLASSES, LandCover

from .conftest import N_CELLS, OUTPUTS, forcing, open_kwargs

Code = grpc.StatusCode
OUT = (*OUTPUTS, "mrso", "lai")


def cover(shift: float = 0.0) -> np.ndarray:
    """(cell, 8): forest, grass and crop, ``shift`` of the forest turned to crop."""
    f = np.zeros((N_CELLS, N_CLASSES))
    f[:, LandCover.DECIDUOUS_FOREST_WOODLAND] = 0.6 - shift
    f[:, LandCover.GRASSLAND] = 0.3
    f[:, LandCover.CROPLAND] = 0.1 + shift
    return f


def kwargs(**over: Any) -> dict[str, Any]:
    return open_kwargs(land_cover=cover(), outputs=list(OUT), **over)


def steps(session: Any, a: int, b: int) -> list[dict[str, np.ndarray]]:
    return [session.step(i, forcing(i)) for i in range(a, b)]


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_change_conserves_and_changes_the_land(client: CouplerClient) -> None:
    with client.open_session(**kwargs()) as s, client.open_session(**kwargs()) as ref:
        steps(s, 0, 3)
        before = steps(ref, 0, 3)[-1]
        new = cover(0.4)
        new[0] = cover()[0]  # one cell keeps its cover
        up = s.update_land_cover(3, new)
        assert up.cells_changed == N_CELLS - 1
        assert up.water_residual <= 1e-12 and up.carbon_residual <= 1e-15
        assert up.energy_residual <= 1e-6  # J m-2 on ~1e8 J m-2 of soil heat
        assert set(up.released) == {"released_water", "released_heat", "released_carbon"}
        assert up.released["released_water"].shape == (N_CELLS,)
        assert up.released["released_water"][0] == 0.0
        # forest (1.5 m roots) to crop (0.8 m): the crop tiles fill up, water stays or leaves
        assert (up.released["released_water"] >= 0).all()
        a, b = s.step(3, forcing(3)), ref.step(3, forcing(3))
        assert a["lai"][0] == b["lai"][0] and a["hfls"][0] == b["hfls"][0]  # unchanged cell
        assert not np.array_equal(a["lai"][1:], b["lai"][1:])
        assert before["mrso"].shape == (N_CELLS,)


@pytest.mark.parametrize(
    ("fractions", "units", "rule"),
    [
        (np.ones((N_CELLS, N_CLASSES - 1)) / 7, "1", "shape"),
        (np.ones((N_CELLS + 1, N_CLASSES)) / 8, "1", "shape"),
        (cover() * np.array([-1.0] + [1.0] * 7) + np.eye(N_CLASSES)[0] * 0.0 - 0.1, "1",
         "valid_range"),
        (np.full((N_CELLS, N_CLASSES), np.nan), "1", "valid_range"),
        (cover() * 1.01, "1", "sums_to_one"),
        (cover(), "%", "units"),
        (cover(), "", "units"),
    ],
)  # fmt: skip
def test_refusals_leave_the_session_unchanged(
    client: CouplerClient, fractions: np.ndarray, units: str, rule: str
) -> None:
    with client.open_session(**kwargs()) as s, client.open_session(**kwargs()) as ref:
        steps(s, 0, 2)
        steps(ref, 0, 2)
        req = pb.UpdateLandCoverRequest(session_id=s.id, index=2)
        F.encode_into(req.land_cover_fractions, "land_cover", fractions, units)
        with pytest.raises(CouplerRpcError) as info:
            client.call(client.stub.UpdateLandCover, req)
        assert info.value.code() is Code.INVALID_ARGUMENT
        assert (info.value.field, info.value.rule) == ("land_cover", rule)
        assert same(s.step(2, forcing(2)), ref.step(2, forcing(2)))


def test_order_and_missing_fractions(client: CouplerClient) -> None:
    with client.open_session(**kwargs()) as s, client.open_session(**kwargs()) as ref:
        steps(s, 0, 2)
        steps(ref, 0, 2)
        for index in (1, 3):
            with pytest.raises(CouplerRpcError) as info:
                s.update_land_cover(index, cover(0.2))
            assert info.value.code() is Code.FAILED_PRECONDITION
            assert (info.value.field, info.value.rule) == ("index", "step_order")
        with pytest.raises(CouplerRpcError) as info:
            client.call(client.stub.UpdateLandCover, pb.UpdateLandCoverRequest(session_id=s.id))
        assert (info.value.field, info.value.rule) == ("land_cover", "required")
        assert same(s.step(2, forcing(2)), ref.step(2, forcing(2)))
        # the same cover again: nothing changes, bitwise
        up = s.update_land_cover(3, cover())
        assert up.cells_changed == 0 and up.water_residual == 0.0
        assert same(s.step(3, forcing(3)), ref.step(3, forcing(3)))


def test_inprocess_answers_as_grpc_and_checkpoint_carries_the_cover(
    client: CouplerClient,
) -> None:
    with InProcessClient(SessionManager()) as local:
        with client.open_session(**kwargs()) as r, local.open_session(**kwargs()) as p:
            steps(r, 0, 2)
            steps(p, 0, 2)
            ur, up = r.update_land_cover(2, cover(0.3)), p.update_land_cover(2, cover(0.3))
            assert ur.cells_changed == up.cells_changed
            assert ur.water_residual == up.water_residual
            for k in ur.released:
                assert ur.released[k].tobytes() == up.released[k].tobytes()
            with pytest.raises(CouplerRpcError) as info:
                p.update_land_cover(2, cover() * 2)
            assert (info.value.code(), info.value.rule) == (Code.INVALID_ARGUMENT, "sums_to_one")
            url = r.checkpoint("memory://wire-tests/cover.ckpt")
            a = steps(r, 2, 4)
            b = steps(p, 2, 4)
            assert all(same(x, y) for x, y in zip(a, b, strict=True))
        with client.open_session(resume_from=url) as resumed:
            c = steps(resumed, 2, 4)
        assert all(same(x, y) for x, y in zip(a, c, strict=True))


def test_replay_applies_the_recorded_cover_changes(client: CouplerClient, tmp_path) -> None:
    """A record of a session whose cover changed twice (over gRPC) replays bit for bit: the
    record holds the fractions and replay applies them before the same steps."""
    url = str(tmp_path / "rank0.zarr")
    with client.open_session(**kwargs(record_url=url)) as s:
        steps(s, 0, 2)
        s.update_land_cover(2, cover(0.1))
        steps(s, 2, 4)
        s.update_land_cover(4, cover(0.3))
        steps(s, 4, 6)
    src = RecordSource(url)
    assert src.cover_changes == [2, 4]
    np.testing.assert_array_equal(src.cover(4), cover(0.3))
    rank = RankReplay(src)
    results = list(rank.steps())
    assert rank.mode == "bitwise" and rank.cover_changes_applied == 2
    assert len(results) == 6
    assert all(compare(r, src.keepbits, src.lat, src.lon) is None for r in results)
    # the replay is not trivially equal: without the changes the steps after them differ
    with client.open_session(**kwargs()) as fixed:
        plain = steps(fixed, 0, 6)
    assert not np.array_equal(plain[5]["lai"], results[5].recorded["lai"])
