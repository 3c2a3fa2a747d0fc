"""Replies in float32 (``StepRequest.reply_dtype``, ``open_session(reply_dtype="float32")``):
every transport (unary, Exchange inline and split, compressed, in-process) returns the float64
reply rounded to float32, bitwise the same; a retry returns the same; a dtype that is not a
reply dtype is refused before the step (field ``reply_dtype``, rule ``dtype``) and changes
nothing; float64 stays the default."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.wire import fields as F
from coupler.wire.server import Service
from emulators import variables as V
from tests.coupler.wire.conftest import forcing, open_kwargs

TRANSPORTS = {
    "unary": {},
    "stream inline": {"stream": True},
    "stream split": {"stream": True, "split_bytes": 1},
    "unary zstd": {"codec": "zstd"},
    "stream split zstd": {"stream": True, "split_bytes": 1, "codec": "zstd"},
}


def _steps(session: Any, n: int = 3) -> list[dict[str, np.ndarray]]:
    return [session.step(k, forcing(k)) for k in range(n)]


@pytest.mark.parametrize("transport", TRANSPORTS.values(), ids=TRANSPORTS.keys())
def test_float32_replies_are_the_float64_replies_rounded_on_every_transport(
    client: CouplerClient, service: Service, transport: dict[str, Any]
) -> None:
    wide = client.open_session(**open_kwargs(), **transport)
    narrow = client.open_session(**open_kwargs(), **transport, reply_dtype="float32")
    with InProcessClient(service.manager, owner="local") as local:
        here = local.open_session(**open_kwargs(), reply_dtype=np.float32)
        expected, got, in_process = _steps(wide), _steps(narrow), _steps(here)
    for want, have, near in zip(expected, got, in_process, strict=True):
        assert want.keys() == have.keys() == near.keys()
        for name in want:
            assert want[name].dtype == np.float64
            assert have[name].dtype == np.float32 and not have[name].flags.writeable
            assert np.array_equal(have[name], want[name].astype(np.float32))
            assert have[name].tobytes() == near[name].tobytes()
    again = narrow.step(2, forcing(2))  # a retry: the stored reply, rounded again
    assert all(again[k].tobytes() == got[2][k].tobytes() for k in again)
    for s in (wide, narrow):
        s.close()


def test_float64_stays_the_default_and_can_be_asked_for(client: CouplerClient) -> None:
    default = client.open_session(**open_kwargs())
    asked = client.open_session(**open_kwargs(), reply_dtype="float64")
    assert default.reply_dtype == asked.reply_dtype == pb.DTYPE_UNSPECIFIED  # nothing sent
    a, b = default.step(0, forcing(0)), asked.step(0, forcing(0))
    assert all(a[k].dtype == np.float64 and a[k].tobytes() == b[k].tobytes() for k in a)
    default.close()
    asked.close()


@pytest.mark.parametrize("code", [pb.DTYPE_INT32, pb.DTYPE_FLOAT16, 99])
def test_another_reply_dtype_is_refused_before_the_step(client: CouplerClient, code: int) -> None:
    session = client.open_session(**open_kwargs())
    first = session.step(0, forcing(0))
    request = pb.StepRequest(session_id=session.id, index=1, reply_dtype=code)  # type: ignore[arg-type]
    for name, values in forcing(1).items():
        F.encode_into(request.fields.add(), name, values, _units(name))
    with pytest.raises(CouplerRpcError) as info:
        client.call(client.steps.Step, request)
    err = info.value
    assert err.code().name == "INVALID_ARGUMENT"
    assert (err.field, err.rule) == ("reply_dtype", "dtype")
    label = pb.DType.Name(code) if code in pb.DType.values() else str(code)
    assert f"reply_dtype: {label} is not a reply dtype" in err.details()
    again = session.step(0, forcing(0))  # still a retry of step 0: nothing advanced
    assert all(again[k].tobytes() == first[k].tobytes() for k in first)
    assert session.step(1, forcing(1)).keys() == first.keys()
    session.close()


@pytest.mark.parametrize("value", ["int8", "float16", "nonsense", np.int64])
def test_a_client_refuses_a_reply_dtype_it_cannot_ask_for(
    client: CouplerClient, service: Service, value: Any
) -> None:
    with InProcessClient(service.manager, owner="local") as local:
        for c in (client, local):
            before = service.manager.open_sessions
            with pytest.raises(CouplerRpcError) as info:
                c.open_session(**open_kwargs(), reply_dtype=value)
            assert info.value.code().name == "INVALID_ARGUMENT"
            assert (info.value.field, info.value.rule) == ("reply_dtype", "dtype")
            assert service.manager.open_sessions == before


def _units(name: str) -> str:
    return V.REGISTRY[name].units
