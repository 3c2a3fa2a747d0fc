"""Sessions step the real reference backend: malformed input is refused with the field and the
rule and leaves the session exactly as it was; retries and ordering; in-process equivalence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from coupler.core import landstep
from coupler.core.manager import SessionManager
from coupler.core.session import Session
from coupler.errors import FailedPrecondition, InvalidArgument
from emulators import constraints
from emulators.reference import ReferenceBackend

from .conftest import (
    assert_replies_identical,
    assert_unchanged,
    config,
    forcing,
    snapshot,
)

N = 6


def _advanced(manager: SessionManager, steps: int = 3, **kw: Any) -> Session:
    session = manager.open(config(N, **kw), owner="alice")
    for i in range(steps):
        session.step(i, forcing(i, N))
    return session


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(f: dict[str, Any]) -> None:
        f[name] = value

    return mutate


def _poke(name: str, value: float) -> Callable[[dict[str, Any]], None]:
    def mutate(f: dict[str, Any]) -> None:
        a = f[name].copy()
        a[N // 2] = value
        f[name] = a

    return mutate


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(f: dict[str, Any]) -> None:
        del f[name]

    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown name", _set("temperature", np.full(N, 290.0)), "temperature", "known_name"),
    ("output sent as input", _set("hfls", np.zeros(N)), "hfls", "direction"),
    ("wrong dtype int", _set("tas", np.full(N, 290, dtype=np.int32)), "tas", "dtype"),
    ("wrong dtype float16", _set("tas", np.full(N, 290, dtype=np.float16)), "tas", "dtype"),
    ("not an array", _set("tas", [290.0] * N), "tas", "dtype"),
    ("wrong shape short", _set("ps", np.full(N - 1, 1e5)), "ps", "shape"),
    ("wrong shape 2-D", _set("ps", np.full((1, N), 1e5)), "ps", "shape"),
    ("NaN", _poke("rsds", np.nan), "rsds", "finite"),
    ("inf", _poke("rlds", np.inf), "rlds", "finite"),
    ("-inf", _poke("pr", -np.inf), "pr", "finite"),
    ("above range", _poke("tas", 400.0), "tas", "valid_range"),
    ("below range", _poke("pr", -1e-6), "pr", "valid_range"),
    ("missing required", _drop("huss"), "huss", "required"),
]


@pytest.mark.parametrize(
    ("case", "mutate", "field", "rule"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_field_is_refused_and_state_unchanged(
    manager: SessionManager,
    case: str,
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    rule: str,
) -> None:
    session = _advanced(manager)
    before = snapshot(session)
    bad: dict[str, Any] = dict(forcing(3, N))
    mutate(bad)
    with pytest.raises(InvalidArgument) as err:
        session.step(3, bad)
    assert (err.value.field, err.value.rule) == (field, rule), case
    assert repr(field) in str(err.value) and rule in str(err.value)
    assert_unchanged(session, before)
    # the corrected step goes through and equals an uninterrupted run
    reply = session.step(3, forcing(3, N))
    reference = _advanced(manager, steps=4)
    assert_replies_identical(reply, reference.last_reply or {})


def test_wrong_units_are_refused(manager: SessionManager) -> None:
    session = _advanced(manager)
    before = snapshot(session)
    units = {"tas": "degC", "huss": "1"}
    with pytest.raises(InvalidArgument) as err:
        session.step(3, forcing(3, N), units=units)
    assert (err.value.field, err.value.rule) == ("tas", "units")
    assert_unchanged(session, before)
    with pytest.raises(InvalidArgument) as err:
        session.step(3, forcing(3, N), units={"ps": ""})
    assert (err.value.field, err.value.rule) == ("ps", "units")
    # documented aliases spell the same unit
    ok = session.step(3, forcing(3, N), units={"huss": "kg kg-1", "sfcWind": "m s-1", "tas": "K"})
    assert set(ok) == set(config(N).outputs)


def test_all_fields_are_validated_before_anything_runs(manager: SessionManager) -> None:
    """A bad field listed last still refuses the step; nothing was computed or recorded."""
    session = _advanced(manager)
    before = snapshot(session)
    bad = dict(forcing(3, N))
    bad["co2"] = np.full(N, 5000.0)  # optional field, out of range
    with pytest.raises(InvalidArgument) as err:
        session.step(3, bad)
    assert (err.value.field, err.value.rule) == ("co2", "valid_range")
    assert_unchanged(session, before)


def test_retry_returns_identical_reply_and_does_not_advance(manager: SessionManager) -> None:
    session = _advanced(manager, steps=2)
    reply = session.step(2, forcing(2, N))
    before = snapshot(session)
    # a retry may even carry different (or no) fields: the stored reply is returned
    again = session.step(2, {})
    assert_replies_identical(again, reply)
    assert_unchanged(session, before)
    assert session.next_index == 3
    for arr in again.values():
        assert not arr.flags.writeable


@pytest.mark.parametrize("index", [4, 5, 0, 1, -1, 100])
def test_out_of_order_index_is_refused(manager: SessionManager, index: int) -> None:
    session = _advanced(manager, steps=3)
    before = snapshot(session)
    with pytest.raises(FailedPrecondition) as err:
        session.step(index, forcing(index % 24, N))
    assert (err.value.field, err.value.rule) == ("index", "step_order")
    assert "next step is 3" in str(err.value)
    assert_unchanged(session, before)


def test_first_step_must_be_zero_and_index_type(manager: SessionManager) -> None:
    session = manager.open(config(N), owner="alice")
    with pytest.raises(FailedPrecondition):
        session.step(-1, forcing(0, N))
    with pytest.raises(FailedPrecondition):
        session.step(1, forcing(0, N))
    with pytest.raises(InvalidArgument) as err:
        session.step(0.0, forcing(0, N))  # type: ignore[arg-type]
    assert err.value.field == "index"
    assert session.next_index == 0
    session.step(np.int64(0), forcing(0, N))  # type: ignore[arg-type]
    assert session.next_index == 1


def test_closed_session_refuses_steps(manager: SessionManager) -> None:
    session = _advanced(manager, steps=1)
    manager.close(session.id, "alice")
    with pytest.raises(FailedPrecondition) as err:
        session.step(1, forcing(1, N))
    assert (err.value.field, err.value.rule) == ("session_id", "open")


def test_replies_equal_the_in_process_reference_model_bit_for_bit(
    manager: SessionManager,
) -> None:
    cfg = config(N, land_cover="dfw")
    session = manager.open(cfg, owner="alice")
    backend = ReferenceBackend()
    static = landstep.build_static(cfg)
    state = backend.initial_state(static, landstep.clock_for(cfg, 0))
    for i in range(30):
        f = forcing(i, N)
        reply = session.step(i, f)
        tensors = {k: torch.from_numpy(v).unsqueeze(0) for k, v in f.items()}
        state, out = backend.step(state, static, tensors, landstep.clock_for(cfg, i))
        for name in cfg.outputs:
            assert reply[name].tobytes() == out[name][0].numpy().tobytes(), (i, name)
        residual = constraints.energy_residual(
            *(torch.from_numpy(np.array(reply[k])) for k in ("rns", "hfls", "hfss", "hfdsl"))
        )
        assert float(residual.abs().max()) < 1e-3
    assert session.state.equal(state)


def test_float32_input_equals_its_float64_widening(manager: SessionManager) -> None:
    a = manager.open(config(N), owner="alice")
    b = manager.open(config(N), owner="alice")
    for i in range(4):
        f32 = {k: v.astype(np.float32) for k, v in forcing(i, N).items()}
        f64 = {k: v.astype(np.float64) for k, v in f32.items()}
        assert_replies_identical(a.step(i, f32), b.step(i, f64))


def test_ensemble_members_identical_without_perturbations(manager: SessionManager) -> None:
    single = manager.open(config(N), owner="alice")
    ens = manager.open(config(N, members=4, output_spread=True), owner="alice")
    for i in range(5):
        one = single.step(i, forcing(i, N))
        many = ens.step(i, forcing(i, N))
    assert set(many) == set(one) | {f"{k}_spread" for k in one}
    for k in one:
        np.testing.assert_allclose(many[k], one[k], rtol=1e-14, atol=1e-300)
        assert np.array_equal(many[f"{k}_spread"], np.zeros(N))
    for t in ens.state.tensors.values():
        assert t.shape[0] == 4
        assert torch.equal(t[0], t[3])


def test_caller_arrays_are_not_kept(manager: SessionManager) -> None:
    """The session copies its input: changing the caller's arrays later changes nothing."""
    a = manager.open(config(N), owner="alice")
    b = manager.open(config(N), owner="alice")
    f = forcing(0, N)
    a.step(0, f)
    b.step(0, forcing(0, N))
    f["tas"][:] = 250.0
    assert_replies_identical(a.step(1, forcing(1, N)), b.step(1, forcing(1, N)))


def test_residuals_reach_the_metrics(manager: SessionManager) -> None:
    session = _advanced(manager, steps=3)
    text = manager.metrics.exposition()
    assert "landcoupler_energy_residual_w_m2_count 3.0" in text
    assert "landcoupler_water_residual_kg_m2_count 2.0" in text  # not on the first step
    energy = [ln for ln in text.splitlines() if ln.startswith("landcoupler_energy_residual_last")]
    assert float(energy[0].split()[-1]) < 1e-9
    water = [ln for ln in text.splitlines() if ln.startswith("landcoupler_water_residual_last")]
    assert float(water[0].split()[-1]) < 1e-9
    assert f"landcoupler_cells_total {3.0 * N}" in text
    assert session.next_index == 3
