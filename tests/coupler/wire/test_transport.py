"""The in-process transport has the client's interface and refuses exactly what the wire does,
with the same code, field, rule and message."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient, InProcessSession
from coupler.wire.server import Service

from .conftest import N_CELLS, OUTPUTS, forcing, open_kwargs

N = N_CELLS
BAD_STEPS: dict[str, tuple[dict[str, Any], dict[str, str] | None]] = {
    "NaN": ({"tas": np.full(N, np.nan)}, None),
    "out of range": ({"rsds": np.full(N, 2000.0)}, None),
    "short": ({"ps": np.full(N - 2, 1e5)}, None),
    "2-D": ({"huss": np.full((N, 2), 0.01)}, None),
    "integers": ({"tas": np.full(N, 290, dtype=np.int64)}, None),
    "booleans": ({"pr": np.zeros(N, dtype=bool)}, None),
    "unknown": ({"snow": np.zeros(N)}, None),
    "an output": ({"hfls": np.zeros(N)}, None),
    "units": ({}, {"tas": "degC"}),
    "missing": ({"rlds": None}, None),
}


def _fields(change: dict[str, Any]) -> dict[str, Any]:
    f: dict[str, Any] = {**forcing(1), **change}
    return {k: v for k, v in f.items() if v is not None}


def _refusal(session: Any, fields: dict[str, Any], units: dict[str, str] | None) -> Any:
    with pytest.raises(CouplerRpcError) as info:
        session.step(1, fields, units)
    return info.value


@pytest.mark.parametrize("case", sorted(BAD_STEPS))
def test_same_refusals_in_process_and_over_grpc(service: Service, case: str) -> None:
    change, units = BAD_STEPS[case]
    with (
        CouplerClient(f"127.0.0.1:{service.port}") as remote_client,
        InProcessClient(service.manager, owner="local") as local_client,
    ):
        remote = remote_client.open_session(**open_kwargs())
        local = local_client.open_session(**open_kwargs())
        first = [s.step(0, forcing(0)) for s in (remote, local)]
        if case == "booleans":  # the client cannot even encode it; in-process: the same rule
            with pytest.raises(Exception) as enc:
                remote.step(1, _fields(change))
            a = _refusal(local, _fields(change), units)
            assert (a.code(), a.field, a.rule) == (grpc.StatusCode.INVALID_ARGUMENT, "pr", "dtype")
            assert getattr(enc.value, "rule", None) == "dtype"
        else:
            a = _refusal(remote, _fields(change), units)
            b = _refusal(local, _fields(change), units)
            assert a.code() is b.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert (a.field, a.rule) == (b.field, b.rule)
            assert a.details() == b.details()
        again = [s.step(0, forcing(0)) for s in (remote, local)]
        for x, y in zip(first, again, strict=True):
            assert all(x[k].tobytes() == y[k].tobytes() for k in OUTPUTS)
        remote.close()
        local.close()


def test_in_process_sessions_have_the_client_interface(service: Service, tmp_path: Any) -> None:
    with InProcessClient(service.manager, owner="me") as client:
        assert "reference" in client.describe()["backends"]
        s = client.open_session(**open_kwargs(checkpoint_url=str(tmp_path)))
        assert (s.next_index, s.cells, s.outputs, s.start) == (
            0,
            N,
            OUTPUTS,
            "2001-06-01T00:00:00Z",
        )
        reply = s.step(0, forcing(0))
        assert s.next_index == 1 and s.last_time == "2001-06-01T00:00:00Z"
        assert set(reply) == set(OUTPUTS)
        url = s.checkpoint()
        assert url.endswith(f"{s.id}.ckpt")
        with pytest.raises(CouplerRpcError) as info:  # a session without assimilation
            s.assimilate("ts", [290.0], [1.0], [40.0], [-90.0], ["2001-06-01T01:00:00Z"])
        assert (info.value.field, info.value.rule) == ("assimilation", "enabled")
        with pytest.raises(CouplerRpcError) as info:
            s.step(5, forcing(5))
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        resumed = client.open_session(resume_from=url)
        assert resumed.next_index == 1
        # another principal cannot use the session
        foreign = InProcessSession(InProcessClient(service.manager, owner="other"),
                                   service.manager.get(s.id, "me"))  # fmt: skip
        with pytest.raises(CouplerRpcError) as info:
            foreign.step(1, forcing(1))
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert s.step(1, forcing(1))
        s.close()
        resumed.close()
