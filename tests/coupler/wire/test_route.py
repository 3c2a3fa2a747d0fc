"""``coupler.wire.route`` reads what protobuf reads: the session id of every request and reply
that names one, and an Exchange frame's kind and trailing_fields, from serialized bytes (as
protobuf writes them, and as ``coupler.wire.encoded`` writes them from arrays); unreadable bytes
route nowhere instead of raising."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import route

ids = st.text(min_size=0, max_size=40)
indices = st.integers(min_value=-(2**40), max_value=2**40)
counts = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=200, deadline=None)
@given(ids, indices, counts, st.integers(min_value=0, max_value=3))
def test_step_requests_and_frames(session: str, index: int, trailing: int, n: int) -> None:
    fields = [F.encode(f"f{k}", np.arange(k + 3, dtype=np.float64), "K") for k in range(n)]
    request = pb.StepRequest(session_id=session, index=index, fields=fields,
                             trailing_fields=trailing)  # fmt: skip
    request.reply_codec.id = "zstd"
    data = request.SerializeToString()
    assert route.session_id(data) == session
    frame = pb.ExchangeRequest(step=request).SerializeToString()
    assert route.exchange_frame(frame) == ("step", session, trailing)
    reply = pb.ExchangeReply(step=pb.StepReply(session_id=session, trailing_fields=trailing))
    assert route.exchange_frame(reply.SerializeToString()) == ("step", session, trailing)
    if fields:
        assert route.exchange_frame(pb.ExchangeRequest(field=fields[0]).SerializeToString()) == (
            "field", "", 0,
        )  # fmt: skip
    raw = E.step_request(session, index, [E.raw_field("tas", np.ones(5), "K")]).tobytes()
    assert route.session_id(raw) == session
    assert route.exchange_frame(E.exchange_step(E.step_request(session, index, [])).tobytes())[
        :2
    ] == ("step", session)


@given(ids)
def test_every_session_request(session: str) -> None:
    for message in (
        pb.AssimilateRequest(session_id=session),
        pb.UpdateLandCoverRequest(session_id=session, index=3),
        pb.CheckpointRequest(session_id=session, url="memory://x"),
        pb.CloseSessionRequest(session_id=session),
        pb.OpenSessionReply(session_id=session, next_index=4, outputs=["hfls"]),
    ):
        assert route.session_id(message.SerializeToString()) == session


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_raises(data: bytes) -> None:
    route.session_id(data)
    kind, _session, trailing = route.exchange_frame(data)
    assert kind in ("step", "field", "other") and trailing >= 0


def test_truncated_and_empty() -> None:
    data = pb.StepRequest(session_id="abc", index=2).SerializeToString()
    assert route.session_id(data[:3]) == ""
    assert route.session_id(b"") == ""
    assert route.exchange_frame(pb.ExchangeRequest().SerializeToString()) == ("other", "", 0)
    assert route.exchange_frame(pb.ExchangeRequest(step=pb.StepRequest()).SerializeToString()) == (
        "step", "", 0,
    )  # fmt: skip
    assert route.elsewhere([(route.ELSEWHERE_KEY, "7")]) == 7
    assert route.elsewhere([(route.ELSEWHERE_KEY, "-1")]) == 0
    assert route.elsewhere([(route.ELSEWHERE_KEY, "x")]) == 0
    assert route.elsewhere(None) == 0
