"""The ensemble filter's state-augmentation estimate on a tiny MdPL twin (4 sites, 2 classes, a
5-day spin-up and 40 summer days, 8 members): the assimilating session goes through the client
API (gRPC and in-process give bit-identical estimates); with the other parameters at their
hidden values (a parameter map), its estimate of the most sensitive parameter (gradm, the
Ball-Berry slope) goes from a prior over the whole range to the hidden value at every site;
the client refuses a checkpoint of a session without assimilation by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coupler.client import local_client
from coupler.client.checkpoints import session_parameters
from coupler.errors import InvalidArgument
from coupler.experiments.calibration_da import FilterConfig, cell_lonlat, run_filter
from emulators import parameters as P
from emulators.calibration.sites import TwinConfig, make_sites

TINY = TwinConfig(sites_per_class=2, classes=2, days=40, spinup_days=5, first_day=150, seed=1)
CFG = FilterConfig(members=8, parameters=("gradm",), progress=False)
GRADM = P.PARAMETER_NAMES.index("gradm")


@pytest.fixture(scope="module")
def sites() -> Any:
    return make_sites(TINY)


@pytest.fixture(scope="module")
def inprocess(sites: Any) -> Any:
    return run_filter(sites, CFG, TINY.noise_wm2, base=sites.hidden)


def test_cells_are_apart_and_keep_the_sites_latitudes(sites: Any) -> None:
    lat, lon = cell_lonlat(sites)
    assert np.array_equal(lat, sites.lat) and len(set(lon.tolist())) == sites.n
    assert np.diff(lon).min() >= 14.0  # > 2 half-widths of the localisation at any latitude


def test_estimate_moves_towards_the_hidden_parameter(sites: Any, inprocess: Any) -> None:
    r = inprocess
    assert r.observations == 2 * sites.n * (TINY.days - 1)  # LE and H; the last day's unused
    width = P.PARAMETERS[GRADM].high - P.PARAMETERS[GRADM].low
    prior = np.abs(r.prior_mean[:, GRADM] - sites.hidden[:, GRADM]) / width
    est = np.abs(r.estimate[:, GRADM] - sites.hidden[:, GRADM]) / width
    assert np.all(est < 0.2 * prior) and est.max() < 0.05, (prior, est)
    assert np.all(r.spread[-1, :, GRADM] < r.spread[0, :, GRADM])  # the posterior narrows
    assert np.array_equal(r.final, r.trajectory[-1]) and np.array_equal(r.estimate, r.final)
    # the other parameters are not estimated: every member keeps the map's (hidden) values
    others = np.arange(P.N_PARAMETERS) != GRADM
    np.testing.assert_allclose(r.estimate[:, others], sites.hidden[:, others], rtol=1e-12)
    assert np.all(r.spread[:, :, others] <= 1e-12 * np.abs(sites.hidden[:, others]))


def test_grpc_and_inprocess_sessions_give_the_same_estimate(sites: Any, inprocess: Any) -> None:
    with local_client("grpc") as client:
        remote = run_filter(sites, CFG, TINY.noise_wm2, client=client, base=sites.hidden)
    assert remote.session_id != inprocess.session_id
    assert np.array_equal(remote.trajectory, inprocess.trajectory)
    assert np.array_equal(remote.estimate, inprocess.estimate)


def test_parameters_of_a_session_without_assimilation_are_refused(tmp_path: Path) -> None:
    with local_client("inprocess") as client:
        s = client.open_session(lat=[50.0], lon=[5.0], start="2001-06-01T00:00:00",
                                timestep=86400, outputs=["hfls"])  # fmt: skip
        url = s.checkpoint(str(tmp_path / "plain.ckpt"))
    with pytest.raises(InvalidArgument) as info:
        session_parameters(url)
    assert (info.value.field, info.value.rule) == ("checkpoint", "assimilation")


def test_filter_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="members"):
        FilterConfig(members=1)
    with pytest.raises(ValueError, match="parameters"):
        FilterConfig(parameters=("nope",))
    with pytest.raises(ValueError, match="inflation"):
        FilterConfig(inflation="fixed")
