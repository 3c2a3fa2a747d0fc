"""What a joined step hands its members besides the step itself (``coupler.core.batching``):
the reply's ensemble means computed once for the batch (``StepBatcher.step_means``), bitwise
what each session computes alone, with 1 and 3 members; and parts that are ordinary tensors
owning exactly their own cells (the joined step runs in inference mode and is cut through
numpy)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from coupler.core import landstep
from coupler.core.batching import StepBatcher, member_means
from coupler.core.telemetry import NullMetrics
from coupler.errors import FailedPrecondition
from emulators import parameters as P
from emulators.landstep import CheckedForcing
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference import ReferenceBackend
from tests.coupler.core.conftest import OUTPUTS, START, forcing, grid, run_threads

CLOCK = StepClock(0, START + np.timedelta64(11 * 3600, "s"), 3600.0)


def _domain(n: int, seed: int, members: int) -> tuple[LandState, LandStatic, CheckedForcing]:
    g = grid(n, seed)
    rng = np.random.default_rng(seed)
    cover = rng.uniform(0.0, 1.0, (n, P.N_CLASSES))
    cover /= cover.sum(1, keepdims=True)
    lat, lon = torch.from_numpy(np.array(g.lat)), torch.from_numpy(np.array(g.lon))
    static = LandStatic.from_cover(lat, lon, torch.from_numpy(cover), members=members)
    f = CheckedForcing(
        {k: torch.from_numpy(v).expand(members, n) for k, v in forcing(2, n, seed).items()}
    )
    state = ReferenceBackend().initial_state(static, CLOCK)
    if members > 1:  # members that differ, so the mean is a real reduction
        state = LandState({k: v * (1.0 + 0.01 * torch.arange(members, dtype=v.dtype).view(
            -1, *[1] * (v.dim() - 1))) if v.is_floating_point() else v
            for k, v in state.tensors.items()})  # fmt: skip
    return state, static, f


def _joined(domains: list[Any], names: tuple[str, ...]) -> dict[int, Any]:
    """Each domain's ``step_means`` from rounds of concurrent steps (the same inputs each
    round) until one round was a single batch of all (the first rounds make the domains each
    other's peers; a batch closes when every recent peer has joined)."""
    backend = ReferenceBackend()
    sizes: list[int] = []
    cells = sum(d[1].n_cells for d in domains)
    batcher = StepBatcher(0.5, max_cells=cells, metrics=_Sizes(sizes))
    got: dict[int, Any] = {}
    for _ in range(6):
        barrier = threading.Barrier(len(domains))
        sizes.clear()

        def one(i: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            got[i] = batcher.step_means(backend, *domains[i], CLOCK, names)

        errors = run_threads([lambda i=i: one(i) for i in range(len(domains))])
        assert not errors, errors
        if sizes == [len(domains)]:
            return got
    raise AssertionError(f"the domains were never joined in one batch: {sizes}")


class _Sizes(NullMetrics):
    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes

    def observe_batch(self, sessions: int, cells: int) -> None:
        self.sizes.append(sessions)


@pytest.mark.parametrize("members", [1, 3])
def test_a_joined_steps_means_are_bitwise_each_sessions_own(members: int) -> None:
    sizes = (64, 192, 128)
    domains = [_domain(n, seed, members) for seed, n in enumerate(sizes)]
    names = (*OUTPUTS, "no_such_output")
    got = _joined(domains, names)
    backend = ReferenceBackend()
    for i, (state, static, f) in enumerate(domains):
        want_state, want = backend.step(state, static, f, CLOCK)
        new_state, outputs, means = got[i]
        assert new_state.equal(want_state)
        assert all(torch.equal(want[k], outputs[k]) for k in want)
        assert set(means) == set(OUTPUTS)  # the names asked for that the backend makes
        alone = landstep.reply_fields(want, OUTPUTS, static.n_cells, False)
        for name in OUTPUTS:
            assert means[name].dtype == np.float64 and means[name].shape == (static.n_cells,)
            assert not means[name].flags.writeable
            assert np.array_equal(means[name].view(np.uint8), alone[name].view(np.uint8)), name
        replied = landstep.reply_fields(outputs, OUTPUTS, static.n_cells, False, means)
        assert all(replied[k] is means[k] for k in OUTPUTS)  # used, not recomputed


def test_parts_of_a_joined_step_are_ordinary_tensors_that_own_their_cells() -> None:
    domains = [_domain(64, seed, 1) for seed in range(3)]
    got = _joined(domains, ())
    for i in range(3):
        new_state, outputs, means = got[i]
        assert means == {}
        for t in (*new_state.tensors.values(), *outputs.values()):
            assert not t.is_inference() and not t.requires_grad and t.is_contiguous()
            assert t.shape[1] == 64
            assert t.untyped_storage().nbytes() == t.numel() * t.element_size()
        before = new_state.tensors["w"].clone()
        new_state.tensors["w"].add_(1.0)  # a session may update its state in place
        assert torch.equal(new_state.tensors["w"], before + 1.0)
        assert not torch.equal(got[(i + 1) % 3][0].tensors["w"][:, :1], before[:, :1] + 1.0)


def test_a_step_alone_gets_no_means_and_the_session_computes_its_own() -> None:
    state, static, f = _domain(64, 0, 1)
    new_state, _outputs, means = StepBatcher(0.5).step_means(
        ReferenceBackend(), state, static, f, CLOCK, OUTPUTS
    )
    assert means == {}
    want_state, _ = ReferenceBackend().step(state, static, f, CLOCK)
    assert new_state.equal(want_state)


def test_given_means_do_not_skip_the_checks_of_the_outputs() -> None:
    outputs = {"hfls": torch.zeros(1, 4)}
    means = {"hfls": np.ones(4), "hfss": np.ones(4)}
    with pytest.raises(FailedPrecondition) as err:
        landstep.reply_fields(outputs, ("hfls", "hfss"), 4, False, means)
    assert err.value.field == "outputs" and err.value.rule == "backend_outputs"
    # a mean of the wrong shape is not used: the session's own mean is
    reply = landstep.reply_fields(outputs, ("hfls",), 4, False, {"hfls": np.ones(3)})
    assert np.array_equal(reply["hfls"], np.zeros(4))


def test_member_means_skip_what_is_not_member_by_cell() -> None:
    outputs = {"a": torch.ones(2, 128), "b": torch.ones(2, 128, 3)}
    parts = member_means(outputs, ("a", "b", "c"), [slice(0, 64), slice(64, 128)])
    assert [set(p) for p in parts] == [{"a"}, {"a"}]
    assert all(np.array_equal(p["a"], np.ones(64)) for p in parts)
