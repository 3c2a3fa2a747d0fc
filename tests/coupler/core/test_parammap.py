"""The session option ``parameters_url``: a calibrated parameter map (Zarr) opened over gRPC and
in-process reproduces the offline reference run with those parameters bitwise; bad maps are
refused naming the field and rule, before a session exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from grpc import StatusCode

from coupler.client import CouplerRpcError, local_client
from coupler.spec import SessionSpec
from emulators import io
from emulators import parameters as P
from emulators.calibration.experiment import parameter_map
from emulators.calibration.sites import TwinConfig, make_sites, run_reference
from emulators.variables import REQUIRED_FORCING


@pytest.fixture(scope="module")
def twin() -> Any:
    return make_sites(TwinConfig(sites_per_class=1, classes=4, days=30, spinup_days=5, seed=3))


def _session_kwargs(sites: Any, url: str) -> dict[str, Any]:
    return dict(
        lat=sites.lat, lon=sites.lon, start=str(sites.time[0]), timestep=86_400,
        outputs=["hfls", "hfss"], land_cover=np.eye(P.N_CLASSES)[sites.tile],
        parameters_url=url,
    )  # fmt: skip


def test_session_with_calibrated_map_reproduces_offline_fluxes(twin: Any, tmp_path: Path) -> None:
    sites = twin
    # parameters away from the defaults (the twin's hidden ones stand in for a calibration)
    params = sites.hidden
    url = io.write_zarr(parameter_map(sites, params, "test"), str(tmp_path / "map.zarr"))
    offline = run_reference(sites.forcing, sites.time, sites.lat, sites.lon, sites.tile, params)
    default = run_reference(
        sites.forcing,
        sites.time,
        sites.lat,
        sites.lon,
        sites.tile,
        P.default_table().numpy()[sites.tile],
    )
    assert not np.array_equal(offline["hfls"], default["hfls"])  # the map matters
    replies: dict[str, list[dict[str, np.ndarray]]] = {}
    for transport in ("grpc", "inprocess"):
        with local_client(transport) as client:
            with client.open_session(**_session_kwargs(sites, url)) as session:
                replies[transport] = [
                    session.step(i, {k: sites.forcing[k][i].copy() for k in REQUIRED_FORCING})
                    for i in range(len(sites.time))
                ]
    for i, (a, b) in enumerate(zip(replies["grpc"], replies["inprocess"], strict=True)):
        for k in ("hfls", "hfss"):
            assert np.array_equal(a[k], b[k])
            assert np.array_equal(a[k], offline[k][i]), (k, i)


def _refused(sites: Any, url: str) -> tuple[str | None, str | None]:
    with local_client("grpc") as client:
        with pytest.raises(CouplerRpcError) as err:
            client.open_session(**_session_kwargs(sites, url))
    assert err.value.code() is StatusCode.INVALID_ARGUMENT
    return err.value.field, err.value.rule


def test_bad_maps_are_refused_naming_the_rule(twin: Any, tmp_path: Path) -> None:
    sites = twin
    good = parameter_map(sites, sites.hidden, "test")

    def write(ds: xr.Dataset, name: str) -> str:
        return io.write_zarr(ds, str(tmp_path / name))

    assert _refused(sites, str(tmp_path / "absent.zarr")) == ("parameters_url", "readable")
    assert _refused(sites, write(good.isel(cell=slice(0, 2)), "short.zarr")) == (
        "parameters_url",
        "shape",
    )
    moved = good.assign_coords(lat=good["lat"] + 1.0)
    assert _refused(sites, write(moved, "moved.zarr")) == ("parameters_url", "grid_match")
    assert _refused(sites, write(good.drop_vars("gradm"), "nogradm.zarr")) == (
        "parameters_url",
        "parameters",
    )
    high = good.copy()
    high["vegh"] = high["vegh"] * 0 + 41.0
    assert _refused(sites, write(high, "high.zarr")) == ("parameters_url", "valid_range")
    wrong = good.assign_coords(land_cover=good["land_cover"] * 0 + 9)
    assert _refused(sites, write(wrong, "class.zarr")) == ("parameters_url", "land_cover")


def test_spec_carries_the_url_through_json_and_refuses_blank() -> None:
    kw: dict[str, Any] = dict(
        lat=[1.0], lon=[2.0], start="2001-01-01T00:00:00", timestep=3600, outputs=["hfls"]
    )
    spec = SessionSpec.of(**kw, parameters_url="memory://map.zarr")
    assert SessionSpec.from_dict(spec.to_dict()).parameters_url == "memory://map.zarr"
    assert SessionSpec.of(**kw, parameters_url="").parameters_url is None
    with pytest.raises(Exception) as err:
        SessionSpec(**{**SessionSpec.of(**kw).__dict__, "parameters_url": "  "})
    assert (getattr(err.value, "field", None), getattr(err.value, "rule", None)) == (
        "parameters_url",
        "url",
    )


def test_resumed_session_keeps_the_calibrated_map(twin: Any, tmp_path: Path) -> None:
    """A checkpoint of a session with a map resumes (reading the map again) and goes on bitwise
    like the uninterrupted offline run."""
    sites = twin
    url = io.write_zarr(parameter_map(sites, sites.hidden, "test"), str(tmp_path / "map.zarr"))
    offline = run_reference(
        sites.forcing, sites.time, sites.lat, sites.lon, sites.tile, sites.hidden
    )
    forcing = [{k: sites.forcing[k][i].copy() for k in REQUIRED_FORCING} for i in range(12)]
    with local_client("grpc") as client:
        with client.open_session(**_session_kwargs(sites, url)) as session:
            for i in range(6):
                session.step(i, forcing[i])
            ckpt = session.checkpoint(str(tmp_path / "ckpt"))
        with client.open_session(resume_from=ckpt) as resumed:
            for i in range(6, 12):
                reply = resumed.step(i, forcing[i])
                assert np.array_equal(reply["hfls"], offline["hfls"][i])
