"""Land pieces of the assimilation: observation operators and their history, state vector
mapping (LAI <-> leaf carbon, bounds), perturbations, and one online analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coupler.assimilation.config import FilterConfig
from coupler.assimilation.landstate import LandLayout
from coupler.assimilation.online import EnsembleAssimilator
from coupler.assimilation.operators import ObservationBuffer, ObservationSet, locate
from coupler.assimilation.perturb import forcing_noise, perturb_forcing, perturb_parameters
from coupler.assimilation.settings import (
    AssimilationConfig,
    ForcingPerturbation,
    ParameterPerturbation,
    ParameterPrior,
)
from coupler.errors import InvalidArgument
from emulators import parameters as P
from emulators.constants import SECONDS_PER_DAY as DAY
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference import ReferenceBackend
from emulators.reference.classes import class_table

T0 = np.datetime64("2001-06-01T00:00:00", "s")
DAY0 = int(T0.astype(np.int64)) // DAY


def _fill(buf: ObservationBuffer, days: int, members: int = 3, cells: int = 2) -> None:
    """Hourly outputs whose value encodes (member, cell, hour): lai = day index + member."""
    for h in range(days * 24):
        d = h // 24
        m = torch.arange(members, dtype=torch.float64)[:, None].expand(members, cells)
        c = torch.arange(cells, dtype=torch.float64)[None, :].expand(members, cells)
        out = {
            "lai": d + m + 0 * c,
            "hfls": 10.0 * (h % 24) + c,
            "hfss": 0 * m + 5.0,
            "ts": 280.0 + h + m,
        }
        buf.record(out, T0 + np.timedelta64(3600 * h, "s"), 3600.0)


def _obs(var: str, seconds: int, cell: int = 0) -> ObservationSet:
    t = np.array([T0 + np.timedelta64(seconds, "s")])
    return ObservationSet((var,), np.array([cell]), t, np.array([1.0]), np.array([0.5]))


def test_operators_are_window_means_and_overpass_values() -> None:
    buf = ObservationBuffer(keep_days=9, keep_steps=48)
    _fill(buf, days=9)
    # 8-day LAI composite starting day 1: mean over days 1..8 of (day + member)
    lai = buf.observed(_obs("lai", DAY))
    torch.testing.assert_close(lai[:, 0], torch.tensor([4.5, 5.5, 6.5], dtype=torch.float64))
    # daily mean LE of day 8 in cell 1: mean of 10*h + 1 over h = 0..23
    le = buf.observed(_obs("hfls", 8 * DAY, cell=1))
    assert le[:, 0].tolist() == pytest.approx([116.0] * 3)
    # LST at 10:30 on day 8 -> the step starting 10:00 (hour index 8*24+10)
    ts = buf.observed(_obs("ts", 8 * DAY + 10 * 3600 + 1800))
    assert ts[:, 0].tolist() == [280.0 + 202 + m for m in range(3)]


def test_windows_not_complete_or_too_old_are_refused() -> None:
    buf = ObservationBuffer(keep_days=9, keep_steps=48)
    _fill(buf, days=9)
    for obs in (_obs("lai", 2 * DAY), _obs("hfls", 9 * DAY), _obs("ts", 5 * 3600)):
        with pytest.raises(InvalidArgument) as err:
            buf.check(obs, prefix="batches[0].")
        assert (err.value.field, err.value.rule) == ("batches[0].times", "window")
    buf.check(_obs("hfls", 0))  # the oldest day still kept
    _fill(buf, days=1)  # history moves on: now day 0 is gone (time restarts, same days)


def test_locate_maps_to_nearest_cell_and_refuses_far_or_misaligned() -> None:
    glat, glon = np.array([45.0, 50.0]), np.array([5.0, 10.0])
    times = np.array([T0, T0])
    obs = locate(
        "lai",
        np.array([1.0, 2.0]),
        np.array([0.3, 0.3]),
        np.array([49.9, 45.1]),
        np.array([10.1, 4.9]),
        times,
        glat,
        glon,
        match_km=50.0,
    )
    assert obs.cell.tolist() == [1, 0]
    with pytest.raises(InvalidArgument) as err:
        locate(
            "lai",
            np.array([1.0]),
            np.array([0.3]),
            np.array([0.0]),
            np.array([0.0]),
            times[:1],
            glat,
            glon,
            50.0,
            prefix="batches[0].",
        )
    assert (err.value.field, err.value.rule) == ("batches[0].lat", "in_domain")
    with pytest.raises(InvalidArgument) as err:
        locate(
            "hfls",
            np.array([1.0]),
            np.array([3.0]),
            glat[:1],
            glon[:1],
            np.array([T0 + np.timedelta64(60, "s")]),
            glat,
            glon,
            50.0,
        )
    assert err.value.rule == "day_aligned"
    with pytest.raises(InvalidArgument) as err:
        locate(
            "mrsos",
            np.array([1.0]),
            np.array([3.0]),
            glat[:1],
            glon[:1],
            times[:1],
            glat,
            glon,
            50.0,
        )
    assert err.value.rule == "observable"


def _static(members: int = 4) -> LandStatic:
    cover = torch.zeros(2, P.N_CLASSES, dtype=torch.float64)
    cover[0, int(P.LandCover.GRASSLAND)] = 0.7
    cover[0, int(P.LandCover.BARE)] = 0.3
    cover[1, int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)] = 1.0
    return LandStatic.from_cover(
        torch.tensor([45.0, 50.0]), torch.tensor([5.0, 10.0]), cover, members=members
    )


def test_layout_round_trip_and_lai_moves_leaf_carbon() -> None:
    static = _static()
    state = ReferenceBackend().initial_state(static, StepClock(0, T0, 3600.0))
    prior = ParameterPrior("vmax0", 1e-5, 1e-4, log=True)
    layout = LandLayout(static.cover, ("lai", "w", "ts", "tsoil"), (prior,))
    E = layout.to_vector(state, static)
    # grass + deciduous tiles have LAI; 3 tiles have w and ts; tsoil 3 layers; vmax0 on 2
    assert layout.names().count("lai") == 2 and layout.names().count("w") == 3
    assert layout.names().count("tsoil") == 9 and layout.names().count("param:vmax0") == 2
    new_state, new_static = layout.from_vector(E, state, static)
    assert new_state.equal(state)
    torch.testing.assert_close(new_static.params, static.params)
    sla = class_table()["sla"]
    E2 = E.clone()
    E2[:, 0] = 1.234  # first LAI column: cell 0, grass tile
    s2, st2 = layout.from_vector(E2, state, static)
    g = int(P.LandCover.GRASSLAND)
    torch.testing.assert_close(
        s2.tensors["cleaf"][:, 0, g], torch.full((4,), 1.234, dtype=torch.float64) / sla[g]
    )
    assert torch.equal(s2.tensors["w"], state.tensors["w"])  # untouched fields shared
    E2[:, -1] = math.log(2e-5)
    _, st2 = layout.from_vector(E2, state, static)
    d = int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)
    assert st2.params[:, 1, d, P.PARAMETER_NAMES.index("vmax0")].tolist() == pytest.approx(
        [2e-5] * 4
    )
    b = layout.bounds()
    w_cols = [i for i, n in enumerate(layout.names()) if n == "w"]
    assert (b.lo[w_cols] > 0).all() and (b.hi[w_cols] > b.lo[w_cols]).all()
    with pytest.raises(InvalidArgument):
        LandLayout(static.cover, ("lai", "soil_carbon"))


def test_forcing_perturbations_are_seeded_mean_one_and_correlated() -> None:
    cfg = ForcingPerturbation()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = forcing_noise(None, (2000, 3), 3600.0, cfg, g1)
    b = forcing_noise(None, (2000, 3), 3600.0, cfg, g2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    nxt = forcing_noise(a, (2000, 3), 3600.0, cfg, g1)
    r = float(torch.corrcoef(torch.stack([a["pr"].ravel(), nxt["pr"].ravel()]))[0, 1])
    assert r == pytest.approx(math.exp(-1 / 24), abs=0.02)
    base = {
        "pr": torch.full((1, 3), 1e-4, dtype=torch.float64),
        "tas": torch.full((1, 3), 290.0, dtype=torch.float64),
        "rsds": torch.full((1, 3), 400.0, dtype=torch.float64),
        "huss": torch.full((1, 3), 0.008, dtype=torch.float64),
    }
    out = perturb_forcing(base, a, cfg)
    assert float(out["pr"].mean()) == pytest.approx(1e-4, rel=0.05)
    assert float(out["tas"].std()) == pytest.approx(1.0, rel=0.1)
    assert (out["rsds"] >= 0).all() and (out["huss"] > 0).all()
    assert torch.equal(base["pr"], torch.full((1, 3), 1e-4, dtype=torch.float64))
    with pytest.raises(InvalidArgument) as err:
        ForcingPerturbation(tas=-1.0)
    assert err.value.field == "perturbation.tas"


def test_parameter_perturbation_within_prior() -> None:
    static = _static(members=50)
    priors = (ParameterPrior("vmax0", 2e-5, 8e-5, log=True), ParameterPrior("psicr", -300, -100))
    out = perturb_parameters(
        static.params, ParameterPerturbation(priors), torch.Generator().manual_seed(0)
    )
    v = out[..., P.PARAMETER_NAMES.index("vmax0")]
    assert float(v.min()) >= 2e-5 and float(v.max()) <= 8e-5 and float(v.std()) > 0
    P.check_parameters(out)
    with pytest.raises(InvalidArgument) as err:
        ParameterPrior("vmax0", 1e-7, 1e-4)
    assert err.value.rule == "within_range"
    with pytest.raises(InvalidArgument):
        ParameterPrior("leafiness", 0.0, 1.0)


FORCING = {"tas": 295.0, "huss": 0.01, "ps": 98_000.0, "sfcWind": 3.0, "pr": 1e-5,
           "rsds": 500.0, "rlds": 350.0}  # fmt: skip


def run_reference_days(
    da: EnsembleAssimilator, static: LandStatic, days: int, perturb_initial: bool = False
) -> LandState:
    """``days`` days of the reference model under constant summer forcing, perturbed by ``da``
    and recorded for its analyses, from the initial state (perturbed too with
    ``perturb_initial``)."""
    backend = ReferenceBackend()
    clock = StepClock(0, T0, 3600.0)
    state = backend.initial_state(static, clock)
    if perturb_initial:
        state = da.perturb_initial(state)
    members = static.params.shape[0]
    for _ in range(24 * days):
        f = {k: torch.full((members, 2), v, dtype=torch.float64) for k, v in FORCING.items()}
        state, out = backend.step(state, static, da.perturb(f, clock, members), clock)
        da.record(out, clock)
        clock = clock.advance()
    return state


def _ensemble_day(da: EnsembleAssimilator, members: int = 8) -> tuple[LandState, LandStatic]:
    """One perturbed day of the reference model over the two cells of ``_static``."""
    static = da.perturb_static(_static(members))
    return run_reference_days(da, static, 1), static


def test_online_analysis_moves_towards_observations_within_bounds() -> None:
    priors = (ParameterPrior("psicr", -400.0, -60.0),)
    cfg = AssimilationConfig(parameters=ParameterPerturbation(priors), filter=FilterConfig())
    da = EnsembleAssimilator(cfg, _static().cover, np.array([45.0, 50.0]), np.array([5.0, 10.0]))
    state, static = _ensemble_day(da)
    noon = T0 + np.timedelta64(12 * 3600, "s")
    ts_prior = da.buffer.observed(
        ObservationSet(("ts",), np.array([1]), np.array([noon]), np.zeros(1), np.ones(1))
    )[:, 0]
    target = float(ts_prior.mean()) + 2.0
    obs = da.locate(
        "ts",
        np.array([target]),
        np.array([0.5]),
        np.array([50.0]),
        np.array([10.0]),
        np.array([noon]),
    )
    le_prior = da.buffer.observed(
        ObservationSet(("hfls",), np.array([0]), np.array([T0]), np.zeros(1), np.ones(1))
    )[:, 0]
    le = da.locate(
        "hfls",
        np.array([float(le_prior.mean()) - 10.0]),
        np.array([5.0]),
        np.array([45.0]),
        np.array([5.0]),
        np.array([T0]),
    )
    assert da.submit([obs, le]) == 2
    before = state.clone()
    new_state, new_static, diag = da.analyse(state, static)
    assert diag is not None and diag.n_used == 2 and diag.n_obs == 2
    assert state.equal(before)  # inputs untouched
    # impact: LE at cell 0 updates its soil water, LST at cell 1 its skin temperature only
    w_new, w_old = new_state.tensors["w"], state.tensors["w"]
    assert not torch.equal(w_new[:, 0], w_old[:, 0]) and torch.equal(w_new[:, 1], w_old[:, 1])
    d = int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)
    ts_new, ts_old = new_state.tensors["ts"][:, 1, d], state.tensors["ts"][:, 1, d]
    assert float((ts_new - ts_old).mean()) > 0.1  # towards the warmer observation
    bounds = da.layout.bounds()
    E = da.layout.to_vector(new_state, new_static)
    assert ((E >= bounds.lo - 1e-9) & (E <= bounds.hi + 1e-9)).all()
    # no LAI obs and no inflation: leaf carbon untouched (impact: only LAI obs update LAI)
    torch.testing.assert_close(
        new_state.tensors["cleaf"], state.tensors["cleaf"], rtol=1e-12, atol=0
    )
    # nothing queued any more: a second analysis is a no-op
    s2, st2, d2 = da.analyse(new_state, new_static)
    assert d2 is None and s2 is new_state and st2 is new_static


def test_online_refuses_bad_observations_and_keeps_the_queue() -> None:
    da = EnsembleAssimilator(
        AssimilationConfig(), _static().cover, np.array([45.0, 50.0]), np.array([5.0, 10.0])
    )
    _ensemble_day(da, members=4)
    cases = [
        ("ts", 10.0, 60.0, T0, "lat", "in_domain"),
        ("ts", 50.0, 10.0, T0 + np.timedelta64(30, "h"), "times", "window"),
        ("lai", 50.0, 10.0, T0, "times", "window"),
        ("mrro", 50.0, 10.0, T0, "type", "observable"),
    ]
    for var, lat, lon, t, field, rule in cases:
        with pytest.raises(InvalidArgument) as err:
            da.locate(
                var,
                np.array([1.0]),
                np.array([0.5]),
                np.array([lat]),
                np.array([lon]),
                np.array([t]),
                prefix="batches[0].",
            )
        assert (err.value.field, err.value.rule) == (f"batches[0].{field}", rule)
    assert da.pending == []
    with pytest.raises(InvalidArgument):
        AssimilationConfig(impact=(("lai", ("leaves",)),))
    with pytest.raises(InvalidArgument):
        AssimilationConfig(half_width_km=0.0)
