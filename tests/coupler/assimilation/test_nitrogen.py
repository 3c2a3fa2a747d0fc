"""Leaf nitrogen in the analysis: an LAI analysis moves leaf carbon and leaf nitrogen together,
N/C stays 1/CN per tile, and the increment rule is what the EAKF itself does to a column
perfectly correlated with leaf carbon."""

from __future__ import annotations

import numpy as np
import torch

from coupler.assimilation.config import FilterConfig
from coupler.assimilation.filters import analyse
from coupler.assimilation.landstate import LandLayout
from coupler.assimilation.online import EnsembleAssimilator
from coupler.assimilation.operators import ObservationSet
from coupler.assimilation.settings import AssimilationConfig
from emulators import parameters as P
from emulators.landstep import NITROGEN
from emulators.protocol import LandState, LandStatic
from emulators.reference.classes import leaf_cn

from .test_land import run_reference_days

T0 = np.datetime64("2001-06-01T00:00:00", "s")
LAT, LON = np.array([45.0, 50.0]), np.array([5.0, 10.0])


def _static(members: int) -> LandStatic:
    cover = torch.zeros(2, P.N_CLASSES, dtype=torch.float64)
    cover[0, int(P.LandCover.GRASSLAND)] = 0.7
    cover[0, int(P.LandCover.EVERGREEN_BROADLEAF_FOREST)] = 0.3
    cover[1, int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)] = 1.0
    return LandStatic.from_cover(torch.tensor(LAT), torch.tensor(LON), cover, members=members)


def _days(da: EnsembleAssimilator, members: int, days: int) -> tuple[LandState, LandStatic]:
    """``days`` days of the reference model from a leaf-carbon-perturbed initial ensemble."""
    static = da.perturb_static(_static(members))
    return run_reference_days(da, static, days, perturb_initial=True), static


def test_lai_analysis_moves_leaf_nitrogen_with_carbon() -> None:
    members = 8
    cfg = AssimilationConfig(initial_leaf_carbon_sd=0.3, filter=FilterConfig())
    da = EnsembleAssimilator(cfg, _static(members).cover, LAT, LON)
    state, static = _days(da, members, 8)
    cn = leaf_cn()
    c0, n0 = state.tensors["cleaf"], state.tensors[NITROGEN]
    assert torch.equal(n0, c0 / cn)  # the model step keeps N = C / CN
    # an 8-day LAI composite of cell 0 (days 0-7), 0.5 above the prior mean
    prior = da.buffer.observed(
        ObservationSet(("lai",), np.array([0]), np.array([T0]), np.zeros(1), np.ones(1))
    )[:, 0]
    obs = ObservationSet(
        ("lai",), np.array([0]), np.array([T0]), np.array([float(prior.mean()) + 0.5]), np.ones(1)
    )
    da.submit([obs])
    new, _, diag = da.analyse(state, static)
    assert diag is not None and diag.n_used == 1
    c1, n1 = new.tensors["cleaf"], new.tensors[NITROGEN]
    g = int(P.LandCover.GRASSLAND)
    assert float((c1[:, 0, g] - c0[:, 0, g]).abs().max()) > 1e-4  # carbon moved ...
    assert float((n1[:, 0, g] - n0[:, 0, g]).abs().max()) > 1e-4 / 30  # ... and nitrogen too
    veg = c1 > 0
    ratio = n1[veg] * cn.expand_as(c1)[veg] / c1[veg]
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=1e-13, atol=0)
    # tiles the analysis did not touch keep N bitwise
    same = c1 == c0
    assert same.any() and torch.equal(n1[same], n0[same])


def test_increment_rule_equals_the_eakf_on_a_nitrogen_column() -> None:
    """ΔN = ΔC / CN is the EAKF's own update of the column N = C / CN (linear regression of
    the observation increments on the column's ensemble anomalies)."""
    members = 10
    cfg = AssimilationConfig(initial_leaf_carbon_sd=0.3, filter=FilterConfig())
    da = EnsembleAssimilator(cfg, _static(members).cover, LAT, LON)
    state, static = _days(da, members, 1)
    layout = LandLayout(static.cover, ("lai",))
    E = layout.to_vector(state, static)  # LAI columns
    b = layout.blocks[0]
    c, k = torch.from_numpy(b.cell), torch.from_numpy(b.tile)
    n_cols = state.tensors[NITROGEN][:, c, k]
    hE = E[:, :1] * 0.9 + 0.1  # an observation of the first LAI column
    Z = torch.cat([E, n_cols, hE], dim=1)
    m = Z.shape[1] - 1
    y = torch.tensor([float(hE.mean()) + 0.4], dtype=torch.float64)
    joint = analyse(Z, lambda X: X[:, m:], y, torch.tensor([0.25]), FilterConfig()).ensemble
    lai_only = torch.cat([E, hE], dim=1)
    e = E.shape[1]
    post = analyse(lai_only, lambda X: X[:, e:], y, torch.tensor([0.25]), FilterConfig()).ensemble
    # to round-off: the wider joint matrix may be reduced in another order (1 ulp on an AVX-512
    # machine, 2026-12-07; bitwise on the machines before)
    torch.testing.assert_close(
        joint[:, :e], post[:, :e], rtol=4 * torch.finfo(torch.float64).eps, atol=0
    )
    new, _ = layout.from_vector(post[:, :e], state, static)
    torch.testing.assert_close(
        new.tensors[NITROGEN][:, c, k], joint[:, e : e + c.numel()], rtol=1e-12, atol=1e-18
    )
