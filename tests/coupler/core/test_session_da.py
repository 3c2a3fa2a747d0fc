"""Online assimilation inside coupler sessions, through a real gRPC server on 127.0.0.1:0.

A small reference-backend domain (3 grassland cells, hourly steps, 10 members) runs 9 days once
(so that 8-day LAI composites are complete) and is checkpointed to memory; the tests resume that
checkpoint, so each starts from the same ensemble.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import torch
import xarray as xr

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient, ObservationBatch
from coupler.core.session import Session
from coupler.metrics import ServiceMetrics
from coupler.wire.server import ServerConfig, Service, start_service
from tests.coupler.da_helpers import forcing, write_observations

Code = grpc.StatusCode
LAT = np.array([45.0, 48.0, 50.0])
LON = np.array([5.0, 8.0, 12.0])
START = "2001-06-01T00:00:00"
OUTPUTS = ["hfls", "hfss", "ts", "lai"]
DAYS = 9
K0 = DAYS * 24  # first step after the base run (2001-06-10T00:00)
OPTIONS: dict[str, Any] = {"initial_leaf_carbon_sd": 0.2, "leaf_carbon_sd": 0.05, "seed": 1}
OWNER = "da-tester"
BASE_URL = "memory://da-session-tests/base.ckpt"


def open_kwargs(**over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        lat=LAT, lon=LON, start=START, timestep=3600, outputs=OUTPUTS, land_cover="grassland",
        members=10, assimilation=dict(OPTIONS),
    )  # fmt: skip
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = start_service("127.0.0.1:0", ServerConfig(max_workers=4), metrics=ServiceMetrics())
    yield svc
    svc.server.stop(None)
    svc.manager.shutdown(checkpoint=False)


@pytest.fixture()
def client(service: Service) -> Iterator[CouplerClient]:
    with CouplerClient(f"127.0.0.1:{service.port}", client_name=OWNER, retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def base(service: Service) -> str:
    """A DA session run for 9 days over gRPC and checkpointed (no observations yet)."""
    with CouplerClient(f"127.0.0.1:{service.port}", client_name=OWNER, retries=0) as c:
        with c.open_session(**open_kwargs()) as s:
            assert s.members == 10
            for k in range(K0):
                s.step(k, forcing(k))
            return s.checkpoint(BASE_URL)


def core(service: Service, session_id: str) -> Session:
    return service.manager.get(session_id, OWNER)


def lai_columns(session: Session) -> torch.Tensor:
    """(member, cell) LAI of the session's ensemble (one grassland tile per cell)."""
    da = session.assimilation
    assert da is not None
    E = da.da.layout.to_vector(session.state, session.static)
    cols = [i for i, name in enumerate(da.da.layout.names()) if name == "lai"]
    return E[:, cols]


def _same(a: Any, b: Any) -> bool:
    """Deep equality with bit-identical tensors."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _state(session: Session) -> dict[str, Any]:
    da = session.assimilation
    assert da is not None
    return {
        "state": {k: v.clone() for k, v in session.state.tensors.items()},
        "params": session.static.params.clone(),
        "da": da.state_dict(session.static),
    }


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of one sample in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise KeyError(f"{name}{labels} not exported")


def _lai_batch(values: Any, day: str = "2001-06-01", sd: float = 0.1) -> dict[str, Any]:
    return dict(type="lai", values=list(values), errors=[sd] * 3, lat=LAT, lon=LON,
                times=[f"{day}T00:00:00Z"] * 3)  # fmt: skip


MALFORMED: list[tuple[dict[str, Any], str, str]] = [
    (dict(type="tas"), "batches[0].type", "observable"),
    (dict(type="precipitation"), "batches[0].type", "observable"),
    (dict(values=[2.0, np.nan, 2.0]), "batches[0].values", "finite"),
    (dict(errors=[0.1, np.nan, 0.1]), "batches[0].errors", "finite"),
    (dict(errors=[0.1, -0.1, 0.1]), "batches[0].errors", "positive"),
    (dict(lat=[45.0, 48.0, 95.0]), "batches[0].lat", "valid_range"),
    (dict(lat=[45.0, 48.0, 20.0]), "batches[0].lat", "in_domain"),
    (dict(lon=[5.0, 8.0, 40.0]), "batches[0].lat", "in_domain"),
    (dict(times=["2001-06-05T00:00:00Z"] * 3), "batches[0].times", "window"),  # not complete
    (dict(times=["2001-05-20T00:00:00Z"] * 3), "batches[0].times", "window"),  # before the run
    (dict(times=["2001-06-02T06:00:00Z"] * 3), "batches[0].times", "day_aligned"),
    (dict(times=["tomorrow"] * 3), "batches[0].times", "rfc3339"),
    (dict(type="ts", values=[290.0] * 3, errors=[1.0] * 3,
          times=["2001-06-01T10:30:00Z"] * 3), "batches[0].times", "window"),  # too old
    (dict(type="hfls", values=[50.0] * 3, errors=[5.0] * 3,
          times=["2001-06-10T00:00:00Z"] * 3), "batches[0].times", "window"),  # future
]  # fmt: skip


def test_malformed_observations_are_refused_and_change_nothing(
    service: Service, client: CouplerClient, base: str
) -> None:
    s = client.open_session(resume_from=base)
    control = client.open_session(resume_from=base)
    before = _state(core(service, s.id))
    good = _lai_batch([2.0, 2.0, 2.0])
    for change, field, rule in MALFORMED:
        with pytest.raises(CouplerRpcError) as info:
            s.assimilate(**{**good, **change})
        assert info.value.code() is Code.INVALID_ARGUMENT, info.value
        assert (info.value.field, info.value.rule) == (field, rule), info.value
    # a request is refused as a whole: a good first batch is not queued either
    far = {**good, "lat": [45.0, 48.0, 20.0]}
    with pytest.raises(CouplerRpcError) as info:
        s.assimilate_batches([ObservationBatch(**good), ObservationBatch(**far)])
    assert (info.value.field, info.value.rule) == ("batches[1].lat", "in_domain")
    after = core(service, s.id)
    assert after.assimilation is not None and after.assimilation.pending == 0
    assert _same(before, _state(after))
    # the next step is exactly what a session that never saw the bad requests computes
    a, b = s.step(K0, forcing(K0)), control.step(K0, forcing(K0))
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    s.close()
    control.close()


def test_sessions_without_assimilation_refuse_assimilate(client: CouplerClient) -> None:
    with client.open_session(**open_kwargs(assimilation=None, members=2)) as s:
        with pytest.raises(CouplerRpcError) as info:
            s.assimilate(**_lai_batch([2.0, 2.0, 2.0]))
        assert info.value.code() is Code.FAILED_PRECONDITION
        assert (info.value.field, info.value.rule) == ("assimilation", "enabled")


def test_lai_observations_move_the_ensemble_and_the_reply(
    service: Service, client: CouplerClient, base: str
) -> None:
    s = client.open_session(resume_from=base)
    control = client.open_session(resume_from=base)
    prior = lai_columns(core(service, s.id))
    obs = (prior.mean(0) - 0.4).tolist()  # LAI 0.4 below the ensemble mean in every cell
    assert s.assimilate(**_lai_batch(obs, day="2001-06-02", sd=0.1)) == 3
    reply, free = s.step(K0, forcing(K0)), control.step(K0, forcing(K0))
    post = lai_columns(core(service, s.id))
    y = np.array(obs)
    assert (np.abs(post.mean(0).numpy() - y) < np.abs(prior.mean(0).numpy() - y)).all()
    assert (post.std(0) < prior.std(0)).all()
    # the atmosphere receives the analysed ensemble's mean (LAI of this step's state)
    np.testing.assert_allclose(reply["lai"], post.mean(0).numpy(), rtol=1e-12)
    assert (np.abs(reply["lai"] - y) < np.abs(free["lai"] - y)).all()
    assert any(reply[k].tobytes() != free[k].tobytes() for k in ("hfls", "ts"))
    # (c) the analysis is exported as Prometheus metrics, labelled by session and type
    text = service.metrics.exposition()
    sid = s.id
    assert f'landcoupler_assimilation_analyses_total{{session="{sid}"}} 1.0' in text
    used = f'landcoupler_assimilation_observations_total{{obs_type="lai",outcome="used",session="{sid}"}} 3.0'  # noqa: E501
    assert used in text
    diag = core(service, s.id).assimilation.da.history[-1]  # type: ignore[union-attr]
    lai = diag.by_type["lai"]
    labels = {"session": sid, "obs_type": "lai"}
    for family, key in (
        ("innovation_mean", "innovation_mean"),
        ("innovation_rms", "innovation_rms"),
        ("obs_spread", "obs_prior_spread"),
    ):
        assert _sample(text, f"landcoupler_assimilation_{family}", labels) == lai[key]
    assert lai["innovation_mean"] < 0  # the observations lie below the ensemble
    assert f'landcoupler_assimilation_state_spread{{session="{sid}",stage="posterior"}}' in text
    s.close()
    control.close()
    assert f'session="{sid}"' not in service.metrics.exposition()  # forgotten on close


def test_checkpoint_resume_continues_identically(client: CouplerClient, base: str) -> None:
    a = client.open_session(resume_from=base)
    a.assimilate(**_lai_batch([1.8, 1.9, 2.0]))
    for k in range(K0, K0 + 11):
        a.step(k, forcing(k))
    # a queued observation travels in the checkpoint (LST of 10:30 today)
    a.assimilate(type="ts", values=[291.0, 292.0, 293.0], errors=[1.0] * 3, lat=LAT, lon=LON,
                 times=["2001-06-10T10:30:00Z"] * 3)  # fmt: skip
    url = a.checkpoint("memory://da-session-tests/mid.ckpt")
    ahead = [a.step(k, forcing(k)) for k in range(K0 + 11, K0 + 27)]  # crosses 00:00 UTC
    a.close()
    b = client.open_session(resume_from=url)
    assert b.next_index == K0 + 11
    again = [b.step(k, forcing(k)) for k in range(K0 + 11, K0 + 27)]
    b.close()
    for x, y in zip(ahead, again, strict=True):
        assert all(x[k].tobytes() == y[k].tobytes() for k in x)


def test_a_failed_step_leaves_the_assimilator_unchanged(tmp_path: Any) -> None:
    """A step that fails after the analysis and the backend step (here: its periodic checkpoint
    cannot be written) restores the assimilator (queue, history, noise, generators)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with InProcessClient(owner=OWNER) as c:
        s = c.open_session(**open_kwargs(checkpoint_url=str(blocker / "sub"), checkpoint_every=12))
        for k in range(11):
            s.step(k, forcing(k))
        s.assimilate(type="ts", values=[290.0] * 3, errors=[1.0] * 3, lat=LAT, lon=LON,
                     times=["2001-06-01T10:30:00Z"] * 3)  # fmt: skip
        session = c.manager.get(s.id, OWNER)
        before = _state(session)
        with pytest.raises(CouplerRpcError) as info:
            s.step(11, forcing(11))
        assert (info.value.field, info.value.rule) == ("checkpoint_url", "writable")
        assert session.next_index == 11
        assert session.assimilation is not None and session.assimilation.pending == 3
        assert _same(before, _state(session))


def test_zarr_observation_file_and_record_diagnostics(
    service: Service, client: CouplerClient, tmp_path: Any
) -> None:
    obs_url, record_url = str(tmp_path / "obs.zarr"), str(tmp_path / "record.zarr")
    rows = [
        ("ts", 287.0, 1.0, 45.0, 5.0, "2001-06-01T10:30"),  # due after step 10
        ("ts", 289.0, 1.0, 48.1, 8.1, "2001-06-01T10:30"),
        ("hfls", 60.0, 10.0, 50.0, 12.0, "2001-06-01T00:00"),  # daily mean: due after step 23
        ("ts", 288.0, 1.0, 45.0, 5.0, "2001-05-31T10:30"),  # before the run: skipped (window)
        ("lai", 2.0, 0.2, 45.0, 5.0, "2001-06-01T00:00"),  # 8-day window: not due in 30 steps
    ]
    write_observations(obs_url, rows)
    options = {**OPTIONS, "observations_url": obs_url}
    s = client.open_session(**open_kwargs(assimilation=options, record_url=record_url))
    for k in range(30):
        s.step(k, forcing(k))
    session = core(service, s.id)
    da = session.assimilation
    assert da is not None and da.file is not None and len(da.file) == 5
    history = da.da.history
    assert [h.n_obs for h in history] == [2, 1]  # 2 ts (a 3rd skipped) at step 11, hfls at 24
    assert history[1].by_type["hfls"]["n_obs"] == 1.0
    assert da.pending == 0 and da.file.cursor == 4  # the LAI composite is not due yet
    text = service.metrics.exposition()
    skipped = f'landcoupler_assimilation_observations_total{{obs_type="ts",outcome="window",session="{s.id}"}} 1.0'  # noqa: E501
    assert skipped in text
    s.close()
    # (d) the record holds the diagnostics of each analysis at the step it ran in
    rec = xr.open_zarr(record_url, consolidated=False).transpose("time", ...)
    n_obs = rec["assim_n_obs"].values
    assert n_obs.shape == (30,)
    assert np.flatnonzero(np.isfinite(n_obs)).tolist() == [11, 24]
    assert n_obs[11] == 2.0 and n_obs[24] == 1.0
    assert rec["assim_hfls_n_used"].values[24] == history[1].by_type["hfls"]["n_used"]
    assert np.isfinite(rec["assim_prior_spread"].values[[11, 24]]).all()
    assert rec["lai"].shape == (30, 3)


def test_observation_file_is_checked_when_the_session_opens(
    client: CouplerClient, tmp_path: Any
) -> None:
    cases = [
        (("ts", 290.0, 1.0, 10.0, 5.0, "2001-06-01T10:30"), "lat", "in_domain"),
        (("ts", np.nan, 1.0, 45.0, 5.0, "2001-06-01T10:30"), "value", "finite"),
        (("hfss", 10.0, -1.0, 45.0, 5.0, "2001-06-01T00:00"), "error", "positive"),
        (("lai", 2.0, 0.2, 45.0, 5.0, "2001-06-01T12:00"), "time", "day_aligned"),
    ]
    for i, (row, name, rule) in enumerate(cases):
        url = str(tmp_path / f"bad{i}.zarr")
        write_observations(url, [row])
        with pytest.raises(CouplerRpcError) as info:
            client.open_session(**open_kwargs(assimilation={"observations_url": url}))
        assert info.value.code() is Code.INVALID_ARGUMENT
        assert (info.value.field, info.value.rule) == (
            f"assimilation.observations_url.{name}",
            rule,
        ), info.value
    with pytest.raises(CouplerRpcError) as info:
        client.open_session(**open_kwargs(assimilation={"observations_url": str(tmp_path / "no")}))
    assert info.value.code() is Code.FAILED_PRECONDITION
    assert info.value.field == "assimilation.observations_url"


def test_assimilation_options_travel_and_are_checked(
    service: Service, client: CouplerClient
) -> None:
    from coupler.assimilation.configio import from_options

    options = {"filter": "etkf", "inflation": "fixed", "inflation_factor": 1.05,
               "parameters": [{"name": "vmax0", "low": 2e-5, "high": 8e-5, "log": True}],
               "impact": {"lai": ["lai", "param"], "ts": ["ts"]}, "half_width_km": 80.0,
               "perturbation": {"pr": 0.3}, "seed": 7}  # fmt: skip
    with client.open_session(**open_kwargs(assimilation=options, members=None)) as s:
        assert s.members == 20  # the default ensemble with assimilation
        cfg = core(service, s.id).config.assimilation
        assert cfg == from_options(options)
    bad: list[tuple[dict[str, Any], str, str]] = [
        ({"inflation_sd": 0.0}, "assimilation.inflation.sd", "positive"),
        ({"filter": "kalman"}, "assimilation.filter", "known"),
        ({"half_width_km": -1.0}, "assimilation.half_width_km", "positive"),
        ({"fields": ["lai", "snow"]}, "assimilation.fields", "known"),
        ({"parameters": [{"name": "vmax0", "low": 1.0, "high": 2.0}]},
         "assimilation.parameters", "within_range"),
    ]  # fmt: skip
    for opts, field, rule in bad:
        with pytest.raises(CouplerRpcError) as info:
            client.open_session(**open_kwargs(assimilation=opts))
        assert info.value.code() is Code.INVALID_ARGUMENT
        assert (info.value.field, info.value.rule) == (field, rule), info.value
    with pytest.raises(CouplerRpcError) as info:
        client.open_session(**open_kwargs(members=1))
    assert (info.value.field, info.value.rule) == ("members", "ensemble")


def test_in_process_client_assimilates_like_the_wire(service: Service, base: str) -> None:
    with InProcessClient(service.manager, owner=OWNER) as c:
        s = c.open_session(resume_from=base)
        with pytest.raises(CouplerRpcError) as info:
            s.assimilate(**{**_lai_batch([2.0] * 3), "lat": [45.0, 48.0, 20.0]})
        assert (info.value.code(), info.value.field, info.value.rule) == (
            Code.INVALID_ARGUMENT, "batches[0].lat", "in_domain"
        )  # fmt: skip
        assert s.assimilate(**_lai_batch([2.0] * 3)) == 3
        s.step(K0, forcing(K0))
        session = c.manager.get(s.id, OWNER)
        assert session.assimilation is not None and len(session.assimilation.da.history) == 1
