"""The data-assimilation contract every land backend passes inside a coupler session.

Subclass :class:`SessionDAContract` as ``TestSomething`` and set ``backend`` (a registry name).
The checks go through the client API (``InProcessClient``: the same calls as over gRPC) and read
the session's ensemble only through the assimilation layout (``coupler.assimilation``), never a
backend's internals:

- a DA session (``members`` members, three cells of two vegetated classes, hourly steps) runs
  nine days once, so that 8-day LAI composites are complete, and is checkpointed to memory; the
  tests resume that checkpoint;
- LAI (8-day composite) and LE (daily mean) observations below the ensemble move the analysed
  LAI and the observed ensembles toward them, shrink the spread of every updated column, keep
  the state within its bounds (also for observations far outside them) and change the next
  reply (the backend steps from the analysed leaf carbon and soil water);
- the same seed gives bit-identical sessions, another seed does not;
- refused observations leave the ensemble, the queue and the next step exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from coupler.assimilation.operators import ObservationSet
from coupler.client import CouplerRpcError, InProcessClient, InProcessSession, ObservationBatch
from coupler.core.session import Session
from emulators import parameters as P
from emulators.variables import check
from tests.coupler.da_helpers import forcing

LAT = np.array([45.0, 48.0, 50.0])
LON = np.array([5.0, 8.0, 12.0])
START = "2001-06-01T00:00:00"
DAYS = 9
K0 = DAYS * 24  # first step after the base run (2001-06-10T00:00)
OUTPUTS = ["hfls", "hfss", "ts", "lai", "mrso"]
OWNER = "da-contract"
LAST_DAY = "2001-06-09"  # the last complete UTC day of the base run
LAI_WINDOW = "2001-06-02"  # an 8-day window complete after the base run


def cover() -> np.ndarray:
    """(cell, class): two vegetated tiles per cell (deciduous forest or cropland with grass)."""
    c = np.zeros((3, P.N_CLASSES))
    c[0, int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)] = 0.7
    c[0, int(P.LandCover.GRASSLAND)] = 0.3
    c[1, int(P.LandCover.GRASSLAND)] = 0.8
    c[1, int(P.LandCover.CROPLAND)] = 0.2
    c[2, int(P.LandCover.CROPLAND)] = 0.6
    c[2, int(P.LandCover.GRASSLAND)] = 0.4
    return c


def batch(var: str, values: Any, errors: Any, day: str) -> ObservationBatch:
    return ObservationBatch(type=var, values=np.asarray(values, dtype=float),
                            errors=np.asarray(errors, dtype=float), lat=LAT, lon=LON,
                            times=[f"{day}T00:00:00Z"] * 3)  # fmt: skip


class SessionDAContract:
    """Base class of the session-DA contract (not collected itself: no ``Test`` prefix)."""

    backend: ClassVar[str]
    members: ClassVar[int] = 8
    #: no inflation, so that "the analysis never widens a column" is a property of the filter
    options: ClassVar[dict[str, Any]] = {
        "initial_leaf_carbon_sd": 0.3, "seed": 3, "inflation": "none",
    }  # fmt: skip

    # ---- fixtures --------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def client(cls) -> Iterator[InProcessClient]:
        with InProcessClient(owner=OWNER) as c:
            yield c

    @pytest.fixture(scope="class")
    @classmethod
    def base(cls, client: InProcessClient) -> str:
        """The nine-day base run of this backend, checkpointed to memory."""
        with client.open_session(**cls.open_kwargs()) as s:
            assert s.members == cls.members
            for k in range(K0):
                s.step(k, forcing(k))
            return s.checkpoint(f"memory://da-contract/{cls.backend}/base.ckpt")

    @classmethod
    def open_kwargs(cls, **options: Any) -> dict[str, Any]:
        return dict(
            lat=LAT, lon=LON, start=START, timestep=3600, outputs=OUTPUTS, land_cover=cover(),
            members=cls.members, backend=cls.backend, assimilation={**cls.options, **options},
        )  # fmt: skip

    # ---- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def core(client: InProcessClient, s: InProcessSession) -> Session:
        return client.manager.get(s.id, OWNER)

    @staticmethod
    def vector(session: Session) -> tuple[torch.Tensor, list[str]]:
        """The ensemble as the analysis sees it: (member, column) and each column's block."""
        da = session.assimilation
        assert da is not None
        layout = da.da.layout
        return layout.to_vector(session.state, session.static), layout.names()

    @staticmethod
    def observed(session: Session, var: str, day: str) -> torch.Tensor:
        """(member, cell) prior observed ensemble of ``var`` for a window starting at ``day``."""
        da = session.assimilation
        assert da is not None
        t = np.full(3, np.datetime64(f"{day}T00:00:00", "s"))
        obs = ObservationSet((var,) * 3, np.arange(3), t, np.zeros(3), np.ones(3))
        return da.da.buffer.observed(obs)

    @staticmethod
    def cell_lai(session: Session) -> torch.Tensor:
        """(member, cell) cover-weighted LAI of the session's state."""
        da = session.assimilation
        assert da is not None
        layout = da.da.layout
        lai = session.state.tensors["cleaf"] * layout.sla
        return (lai * session.static.cover).sum(-1)

    @staticmethod
    def snapshot(session: Session) -> dict[str, Any]:
        da = session.assimilation
        assert da is not None
        return {
            "state": {k: v.clone() for k, v in session.state.tensors.items()},
            "params": session.static.params.clone(),
            "pending": da.pending,
            "buffer": da.da.buffer.state_dict(),
        }

    # ---- the contract ----------------------------------------------------------------------------
    def test_lai_and_le_analysis_moves_the_ensemble_toward_the_observations(
        self, client: InProcessClient, base: str
    ) -> None:
        s = client.open_session(resume_from=base)
        control = client.open_session(resume_from=base)
        session = self.core(client, s)
        E0, names = self.vector(session)
        lai0 = self.cell_lai(session)
        h_lai = self.observed(session, "lai", LAI_WINDOW)
        h_le = self.observed(session, "hfls", LAST_DAY)
        assert (h_lai.std(0) > 0).all() and (h_le.std(0) > 0).all(), "no ensemble spread"
        # observations below the prior observed mean: 1.5 prior spreads (within gross-error k)
        y_lai = (h_lai.mean(0) - 1.5 * h_lai.std(0)).clamp_min(0.05)
        y_le = h_le.mean(0) - 1.5 * h_le.std(0)
        sd_le = torch.full((3,), 5.0, dtype=torch.float64)
        lai_obs = batch("lai", y_lai, 0.1 + 0.1 * y_lai, LAI_WINDOW)
        n = s.assimilate_batches([lai_obs, batch("hfls", y_le, sd_le, LAST_DAY)])
        assert n == 6
        reply, free = s.step(K0, forcing(K0)), control.step(K0, forcing(K0))
        diag = session.assimilation.da.history[-1]  # type: ignore[union-attr]
        assert diag.n_used == 6, diag.rejected
        # observation space: the analysed observed ensembles are closer to y and narrower
        for var in ("lai", "hfls"):
            st = diag.by_type[var]
            assert st["innovation_mean"] > 0 or st["innovation_mean"] < 0
            assert abs(st["posterior_innovation_mean"]) < abs(st["innovation_mean"]), var
            assert st["posterior_innovation_rms"] < st["innovation_rms"], var
            assert st["obs_posterior_spread"] < st["obs_prior_spread"], var
        # state space (leaf carbon changes only at the end of a day, so the LAI after this
        # step is the analysed LAI the backend stepped from): lower in every cell, narrower in
        # every column; over the whole state vector the analysis narrows the ensemble
        E1, _ = self.vector(session)
        lai1 = self.cell_lai(session)
        assert (lai1.mean(0) < lai0.mean(0)).all()
        assert (lai1.std(0) < lai0.std(0)).all()
        cols = [i for i, b in enumerate(names) if b == "lai"]
        assert (E1[:, cols].std(0) < E0[:, cols].std(0)).all()
        assert diag.posterior_spread < diag.prior_spread
        # the reply is the backend's step from the analysed ensemble
        assert (reply["lai"] < free["lai"]).all()
        assert reply["hfls"].tobytes() != free["hfls"].tobytes()
        # LE updates soil water (LAI observations do not: the impact table), so the soil water
        # after this step differs from the free session's
        w, w_free = session.state.tensors["w"], self.core(client, control).state.tensors["w"]
        assert not torch.equal(w, w_free)
        s.close()
        control.close()

    @pytest.mark.parametrize("high", [True, False])
    def test_state_stays_within_bounds(
        self, client: InProcessClient, base: str, high: bool
    ) -> None:
        """Observations far outside the state's range (LAI 12 or 0 with a wide error, so that
        they are not gross errors; LE far below) clip at the bounds; the next steps are valid."""
        s = client.open_session(resume_from=base)
        session = self.core(client, s)
        lai = np.full(3, 12.0 if high else 0.0)
        h_le = self.observed(session, "hfls", LAST_DAY)
        y_le = h_le.mean(0) + (1.0 if high else -1.0) * 3.0 * (h_le.std(0) + 5.0)
        s.assimilate_batches([
            batch("lai", lai, [4.0] * 3, LAI_WINDOW), batch("hfls", y_le, [5.0] * 3, LAST_DAY),
        ])  # fmt: skip
        outs = [s.step(k, forcing(k)) for k in range(K0, K0 + 25)]  # through a day's end
        da = session.assimilation
        assert da is not None
        diag = da.da.history[-1]
        assert diag.n_used >= 3, diag.rejected
        bounds = da.da.layout.bounds()
        E, _ = self.vector(session)
        assert ((E >= bounds.lo) & (E <= bounds.hi)).all()
        assert (session.state.tensors["cleaf"] >= 0).all()
        for out in outs:
            for name, value in out.items():
                check(name, value)
        s.close()

    def test_same_seed_is_bitwise_reproducible(self, client: InProcessClient) -> None:
        """Two fresh sessions with the same seed give identical ensembles and replies through an
        LST analysis (instantaneous: assimilable after the first morning); another seed does
        not."""

        def run(seed: int) -> tuple[list[dict[str, np.ndarray]], dict[str, torch.Tensor]]:
            with client.open_session(**self.open_kwargs(seed=seed)) as s:
                outs = [s.step(k, forcing(k)) for k in range(12)]
                s.assimilate(type="ts", values=[291.0, 292.0, 293.0], errors=[1.0] * 3,
                             lat=LAT, lon=LON, times=["2001-06-01T10:30:00Z"] * 3)  # fmt: skip
                outs += [s.step(k, forcing(k)) for k in range(12, 16)]
                session = self.core(client, s)
                assert session.assimilation is not None
                assert session.assimilation.da.history[-1].n_used == 3
                state = {k: v.clone() for k, v in session.state.tensors.items()}
                return outs, state

        a, b, c = run(5), run(5), run(6)
        for x, y in zip(a[0], b[0], strict=True):
            assert all(x[k].tobytes() == y[k].tobytes() for k in x)
        assert all(torch.equal(a[1][k], b[1][k]) for k in a[1])
        assert any(a[0][-1][k].tobytes() != c[0][-1][k].tobytes() for k in a[0][-1])

    def test_refused_observations_leave_the_ensemble_unchanged(
        self, client: InProcessClient, base: str
    ) -> None:
        s = client.open_session(resume_from=base)
        control = client.open_session(resume_from=base)
        session = self.core(client, s)
        before = self.snapshot(session)
        good: dict[str, Any] = dict(type="lai", values=[2.0] * 3, errors=[0.2] * 3, lat=LAT,
                                    lon=LON, times=[f"{LAI_WINDOW}T00:00:00Z"] * 3)  # fmt: skip
        refused: list[tuple[dict[str, Any], str, str]] = [
            (dict(type="tas"), "batches[0].type", "observable"),
            (dict(values=[2.0, np.nan, 2.0]), "batches[0].values", "finite"),
            (dict(errors=[0.2, 0.0, 0.2]), "batches[0].errors", "positive"),
            (dict(lat=[45.0, 48.0, 20.0]), "batches[0].lat", "in_domain"),
            (dict(times=["2001-06-05T00:00:00Z"] * 3), "batches[0].times", "window"),
            (dict(times=["2001-06-02T06:00:00Z"] * 3), "batches[0].times", "day_aligned"),
            (dict(type="hfls", values=[50.0] * 3, errors=[5.0] * 3,
                  times=["2001-06-10T00:00:00Z"] * 3), "batches[0].times", "window"),
        ]  # fmt: skip
        for change, field, rule in refused:
            with pytest.raises(CouplerRpcError) as info:
                s.assimilate(**{**good, **change})
            assert (info.value.field, info.value.rule) == (field, rule), info.value
        # a request is refused as a whole: its good first batch is not queued either
        far = ObservationBatch(**{**good, "lat": [45.0, 48.0, 20.0]})
        with pytest.raises(CouplerRpcError) as info:
            s.assimilate_batches([ObservationBatch(**good), far])
        assert (info.value.field, info.value.rule) == ("batches[1].lat", "in_domain")
        after = self.snapshot(session)
        assert after["pending"] == 0
        assert all(torch.equal(before["state"][k], v) for k, v in after["state"].items())
        assert torch.equal(before["params"], after["params"])
        a, b = s.step(K0, forcing(K0)), control.step(K0, forcing(K0))
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)
        s.close()
        control.close()
