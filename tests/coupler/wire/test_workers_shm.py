"""The co-located fast path through a front (``serve --workers 2``): a worker's direct peer is
the front's Unix socket, so the front forwards its caller's peer and the worker judges that
one. A loopback caller steps through shared memory bitwise as in-process; a caller off the node
is refused ``shared_memory``/``colocated`` through the front exactly as by one process."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.wire.front import Front, start_front
from coupler.wire.server import ServerConfig

from .conftest import forcing, grid, open_kwargs
from .test_shared_memory import _outside_address


@pytest.fixture(scope="module")
def front() -> Iterator[Front]:
    running = start_front("0.0.0.0:0", ServerConfig(max_workers=8, workers=2, grace_period=5.0))
    try:
        yield running
    finally:
        running.stop(5.0)


def test_loopback_caller_steps_through_shared_memory_on_both_workers(front: Front) -> None:
    with CouplerClient(f"127.0.0.1:{front.port}", retries=0) as client, InProcessClient() as local:
        pairs = []
        for n in (5, 6, 7):
            kw = open_kwargs(**grid(n))
            pairs.append(
                (n, client.open_session(**kw, shared_memory=True), local.open_session(**kw))
            )
        assert {front.router.worker_of(s.id).index for _, s, _ in pairs} == {0, 1}  # type: ignore[union-attr]
        for i in range(4):
            for n, shm, ref in pairs:
                got, want = shm.step(i, forcing(i, n)), ref.step(i, forcing(i, n))
                assert got.keys() == want.keys()
                for name in want:
                    np.testing.assert_array_equal(got[name], want[name], strict=True)
        for _, shm, ref in pairs:
            shm.close()
            ref.close()


def test_caller_off_the_node_is_refused_colocated_through_the_front(front: Front) -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address to call the front through")
    with CouplerClient(f"{address}:{front.port}", retries=0) as client:
        shm = client.open_session(**open_kwargs(), shared_memory=True)
        with pytest.raises(CouplerRpcError) as caught:
            shm.step(0, forcing(0))
        err = caught.value
        assert (err.code(), err.field, err.rule) == (
            grpc.StatusCode.FAILED_PRECONDITION, "shared_memory", "colocated",
        )  # fmt: skip
        assert address in err.details()
        assert shm.next_index == 0
        wire = client.open_session(**open_kwargs())  # the same caller on the wire: served
        wire.step(0, forcing(0))
        shm.close()
        wire.close()
