"""The daily flux emulator (``flux_lstm_daily``) behind the emulator backends: the artifact is
picked by the session's timestep, the LAI step runs when every coupling step is a whole day, and
through a gRPC session at daily steps energy and water close every step."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from coupler.client import CouplerClient, CouplerRpcError
from coupler.wire.server import ServerConfig, Service, start_service
from emulators import forcing as sources
from emulators import parameters as P
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.manifest import Manifest
from emulators.protocol import StepClock
from emulators.recipes import ARTIFACTS
from tests.contracts.backend_contract import contract_daily_forcing, contract_static

DAY = 86_400
OUTPUTS = ("hfls", "hfss", "hfdsl", "rns", "evspsbl", "mrro", "mrso", "lai")


@pytest.fixture(scope="module")
def backend() -> EmulatorBackend:
    return EmulatorBackend(EmulatorConfig(device="cpu"))


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = start_service("127.0.0.1:0", ServerConfig(max_workers=4))
    yield svc
    svc.stop(grace=1.0, checkpoint=False)


def test_the_daily_artifact_is_picked_by_the_session_timestep(backend: EmulatorBackend) -> None:
    daily = Manifest.load(ARTIFACTS / "flux_lstm_daily")
    assert daily.timestep_seconds == DAY and daily.name == "flux-lstm-daily"
    assert backend.timesteps == (3600.0, float(DAY))
    assert backend.flux_for(DAY).manifest.hash() == daily.hash()
    assert backend.flux_for(3600).manifest.name == "flux-lstm"
    static = contract_static(4, 1, seed=2)
    state = backend.initial_state(static, StepClock(0, np.datetime64("2001-01-01"), DAY))
    assert state.tensors["lstm_h"].shape[-1] == int(daily.recurrent_state["hidden"])


@pytest.mark.parametrize("start", ["2001-04-01T00:00", "2001-04-01T05:00"])
def test_leaf_carbon_advances_every_whole_day_step(backend: EmulatorBackend, start: str) -> None:
    """Every daily step ends a day's phenology (also when steps do not start at 00 UTC, as with
    station years aggregated over local days); LAI stays within [0, LAI_max]."""
    static = contract_static(12, 1, seed=13)
    clock = StepClock(0, np.datetime64(start), DAY)
    state = backend.initial_state(static, clock)
    veg = backend._const["vegetated"].bool().expand_as(state.tensors["cleaf"])
    changed = []
    for _ in range(20):
        before = state.tensors["cleaf"].clone()
        state, _ = backend.step(state, static, contract_daily_forcing(static, clock, 3), clock)
        changed.append(bool((state.tensors["cleaf"] != before)[veg].any()))
        assert float(state.tensors["acc_time"].abs().max()) == 0.0  # accumulators reset
        clock = clock.advance()
    assert all(changed)
    lai = backend._const["sla"] * state.tensors["cleaf"]
    assert bool((lai >= 0).all()) and bool((lai <= backend._const["lai_max"] + 1e-9).all())
    bare = [int(c) for c in (P.LandCover.BARE, P.LandCover.URBAN, P.LandCover.WATER_ICE)]
    assert float(state.tensors["cleaf"][..., bare].abs().max()) == 0.0


def test_grpc_session_at_daily_steps_closes_energy_and_water_every_step(
    service: Service,
) -> None:
    """60 days of synthetic daily forcing at 16 random land cells (tropics to boreal), mixed
    land cover, backend torchscript over gRPC: |Rn − LE − H − G| ≤ 1e-3 W m-2 and
    |ΔS − (P − E − R)·dt| ≤ 1e-6 kg m-2 in every reply."""
    rng = np.random.default_rng(5)
    lat = rng.uniform(-40.0, 65.0, 16)
    lon = rng.uniform(-180.0, 180.0, 16)
    ds = sources.load(
        "synthetic", lat=lat, lon=lon, start="2003-03-01", days=60, seed=5, timestep=DAY
    )
    cover = rng.dirichlet(np.ones(P.N_CLASSES) * 0.5, size=16)
    names = ("tas", "huss", "ps", "sfcWind", "pr", "rsds", "rlds")
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="daily") as client:
        session = client.open_session(
            lat=ds["lat"].values, lon=ds["lon"].values, start="2003-03-01T00:00:00",
            timestep=DAY, outputs=list(OUTPUTS), backend="torchscript", land_cover=cover,
        )  # fmt: skip
        storage = None
        worst_e = worst_w = 0.0
        for i in range(ds.sizes["time"]):
            f = {k: ds[k].values[i] for k in names}
            r = session.step(i, f)
            worst_e = max(
                worst_e, float(np.abs(r["rns"] - r["hfls"] - r["hfss"] - r["hfdsl"]).max())
            )
            if storage is not None:
                budget = storage + (f["pr"] - r["evspsbl"] - r["mrro"]) * DAY
                worst_w = max(worst_w, float(np.abs(r["mrso"] - budget).max()))
            storage = r["mrso"]
            assert np.isfinite(r["hfls"]).all() and (r["lai"] >= 0).all()
        session.close()
    assert worst_e <= 1e-3
    assert worst_w <= 1e-6


def test_a_session_at_an_untrained_timestep_is_refused(service: Service) -> None:
    """Opening a 1800 s session on the emulator backend gets INVALID_ARGUMENT (the backend raises
    ``TimestepError``, field ``dt``, naming 3600 s and 86400 s; test_emulator_backend checks the
    message) and leaves no session behind; a daily session opens afterwards."""
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="daily", retries=0) as client:
        kw = dict(
            lat=np.array([10.0]), lon=np.array([20.0]), start="2003-03-01T00:00:00",
            outputs=["hfls"], backend="torchscript", land_cover="grass",
        )  # fmt: skip
        before = len(service.manager._sessions)
        with pytest.raises(CouplerRpcError) as err:
            client.open_session(timestep=1800, **kw)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.field, err.value.rule) == ("dt", "trained_timestep")
        assert "86400 s" in err.value.details()
        assert len(service.manager._sessions) == before
        session = client.open_session(timestep=DAY, **kw)
        session.close()
