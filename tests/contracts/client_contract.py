"""The contract every client passes (``coupler.client.Client`` / ``Session``).

Subclass :class:`ClientContract` as ``TestSomething`` and implement ``make_client`` (a context
manager yielding a client of a fresh service), as zarr-python's ``StoreTests``. The checks use
only the Protocol: open (keyword arguments or a ``SessionSpec``), step, safe retry, refusals that
name the field and rule and change nothing, checkpoint and resume, close. A new transport (the
C/Fortran one's Python twin, a replay source) gets the suite by subclassing.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest
from grpc import StatusCode

from coupler.client import Client, CouplerRpcError, Session, SessionSpec

N = 4
OUTPUTS = ("hfls", "hfss", "ts")


def spec_kwargs(**over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        lat=np.linspace(35.0, 50.0, N), lon=np.linspace(-100.0, -80.0, N),
        start="2001-06-01T00:00:00", timestep=3600, outputs=list(OUTPUTS),
    )  # fmt: skip
    kw.update(over)
    return kw


def forcing(index: int) -> dict[str, np.ndarray]:
    day = max(0.0, float(np.cos((index % 24 - 12.0) / 12.0 * np.pi)))
    ramp = np.linspace(0.0, 1.0, N)
    return {
        "tas": 290.0 + 5.0 * day + ramp, "huss": 0.007 + 0.001 * ramp,
        "ps": np.full(N, 99_000.0), "sfcWind": 2.0 + ramp, "pr": np.zeros(N),
        "rsds": 800.0 * day * (0.8 + 0.2 * ramp), "rlds": np.full(N, 330.0),
    }  # fmt: skip


class ClientContract(abc.ABC):
    @abc.abstractmethod
    def make_client(self) -> AbstractContextManager[Client]:
        """A context manager yielding a client of a fresh service."""

    @pytest.fixture()
    def client(self) -> Iterator[Client]:
        with self.make_client() as c:
            yield c

    def test_implements_the_protocols(self, client: Client) -> None:
        assert isinstance(client, Client)
        with client.open_session(**spec_kwargs()) as session:
            assert isinstance(session, Session)
            assert (session.cells, session.members, session.timestep) == (N, 1, 3600)
            assert session.outputs == OUTPUTS and session.next_index == 0
            assert session.start == "2001-06-01T00:00:00Z" and session.backend == "reference"
        d = client.describe()
        assert "reference" in d["backends"] and "hfls" in d["variables"]

    def test_a_spec_object_and_its_keywords_open_the_same_session(self, client: Client) -> None:
        spec = SessionSpec.of(**spec_kwargs())
        with client.open_session(spec) as a, client.open_session(**spec_kwargs()) as b:
            for i in range(3):
                ra, rb = a.step(i, forcing(i)), b.step(i, forcing(i))
                assert all(np.array_equal(ra[k], rb[k]) for k in OUTPUTS)
        with pytest.raises(TypeError):
            client.open_session(spec, timestep=60)

    def test_step_retry_and_order(self, client: Client) -> None:
        with client.open_session(**spec_kwargs()) as s:
            first = s.step(0, forcing(0))
            assert set(first) == set(OUTPUTS) and all(v.shape == (N,) for v in first.values())
            again = s.step(0, forcing(0))
            assert all(np.array_equal(first[k], again[k]) for k in OUTPUTS)
            with pytest.raises(CouplerRpcError) as err:
                s.step(2, forcing(2))
            assert err.value.code() is StatusCode.FAILED_PRECONDITION
            assert s.last_time == "2001-06-01T00:00:00Z"

    @pytest.mark.parametrize(
        ("over", "field", "rule"),
        [
            ({"timestep": 7}, "timestep", "divides_day"),
            ({"outputs": ["tas"]}, "outputs", "direction"),
            ({"lat": np.full(N, 95.0)}, "lat", "valid_range"),
            ({"backend": "magic"}, "backend", "known_backend"),
            ({"members": 1, "assimilation": {}}, "members", "ensemble"),
            ({"assimilation": {"filter": "kalman"}}, "assimilation.filter", "known"),
        ],
    )
    def test_a_bad_spec_is_refused_naming_field_and_rule(
        self, client: Client, over: dict[str, Any], field: str, rule: str
    ) -> None:
        with pytest.raises(CouplerRpcError) as err:
            client.open_session(**spec_kwargs(**over))
        assert err.value.code() is StatusCode.INVALID_ARGUMENT
        assert (err.value.field, err.value.rule) == (field, rule)

    def test_a_bad_step_changes_nothing(self, client: Client) -> None:
        with client.open_session(**spec_kwargs()) as s, client.open_session(**spec_kwargs()) as t:
            bad = {**forcing(0), "tas": np.full(N, np.nan)}
            with pytest.raises(CouplerRpcError) as err:
                s.step(0, bad)
            assert err.value.code() is StatusCode.INVALID_ARGUMENT
            assert (err.value.field, err.value.rule) == ("tas", "finite")
            rs, rt = s.step(0, forcing(0)), t.step(0, forcing(0))
            assert all(np.array_equal(rs[k], rt[k]) for k in OUTPUTS)

    def test_land_cover_update_conserves_and_bad_cover_changes_nothing(
        self, client: Client
    ) -> None:
        crop = np.zeros((N, 8))  # the sessions start as grass (the spec's default)
        crop[:, 2], crop[:, 3] = 0.4, 0.6
        with client.open_session(**spec_kwargs()) as s, client.open_session(**spec_kwargs()) as t:
            s.step(0, forcing(0))
            t.step(0, forcing(0))
            with pytest.raises(CouplerRpcError) as err:
                s.update_land_cover(1, crop * 1.1)
            assert err.value.code() is StatusCode.INVALID_ARGUMENT
            assert (err.value.field, err.value.rule) == ("land_cover", "sums_to_one")
            rs, rt = s.step(1, forcing(1)), t.step(1, forcing(1))
            assert all(np.array_equal(rs[k], rt[k]) for k in OUTPUTS)
            up = s.update_land_cover(2, crop)
            assert up.cells_changed == N
            assert max(up.water_residual, up.carbon_residual) <= 1e-12
            assert up.energy_residual <= 1e-6
            assert not np.array_equal(s.step(2, forcing(2))["hfls"], t.step(2, forcing(2))["hfls"])

    def test_checkpoint_and_resume_continue_bit_for_bit(self, client: Client) -> None:
        url = f"memory://client-contract/{type(self).__name__}/{id(client)}"
        with client.open_session(**spec_kwargs()) as s:
            for i in range(3):
                s.step(i, forcing(i))
            written = s.checkpoint(url)
            expected = s.step(3, forcing(3))
        with client.open_session(resume_from=written) as r:
            assert r.next_index == 3
            got = r.step(3, forcing(3))
        assert all(np.array_equal(expected[k], got[k]) for k in OUTPUTS)

    def test_close_is_idempotent(self, client: Client) -> None:
        s = client.open_session(**spec_kwargs())
        s.close()
        s.close()
        with pytest.raises(CouplerRpcError) as err:
            s.step(0, forcing(0))
        assert err.value.code() is StatusCode.NOT_FOUND
