"""Screening, bounds, purity, configuration errors and parameter estimation by augmentation."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from coupler.assimilation.config import (
    FilterConfig,
    FilterKind,
    InflationConfig,
    InflationKind,
    QualityControl,
)
from coupler.assimilation.filters import analyse, linear_forward, select_forward
from coupler.assimilation.localization import Localization
from coupler.assimilation.qc import Reject
from coupler.assimilation.state import Block, Bounds, StateLayout
from coupler.errors import InvalidArgument

KINDS = [FilterKind.EAKF, FilterKind.ENKF, FilterKind.ETKF, FilterKind.LETKF]


def _ensemble(n: int = 30, m: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, dtype=torch.float64, generator=g)
    return 2.0 + base + 0.5 * torch.randn(n, m, dtype=torch.float64, generator=g)


def _loc(m: int, p: int) -> Localization:
    return Localization.from_dense(
        torch.ones(p, m, dtype=torch.float64), torch.ones(p, p, dtype=torch.float64)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_forward_rejects_only_that_observation(kind: FilterKind) -> None:
    E = _ensemble()
    y = torch.tensor([2.5, 1.5, 2.2], dtype=torch.float64)
    R = torch.full((3,), 0.25, dtype=torch.float64)

    def forward(X: torch.Tensor) -> torch.Tensor:
        hx = X[:, [0, 2, 4]].clone()
        hx[3, 1] = math.nan  # one member's operator fails for observation 1
        return hx

    cfg = FilterConfig(kind=kind)
    out = analyse(E, forward, y, R, cfg, localization=_loc(6, 3))
    assert torch.isfinite(out.ensemble).all()
    assert out.reason.tolist() == [0, int(Reject.NONFINITE_FORWARD), 0]
    assert out.diagnostics.n_used == 2 and out.diagnostics.n_rejected == 1
    assert out.diagnostics.rejected["nonfinite_forward"] == 1
    # identical to assimilating the two good observations alone
    ref = analyse(
        E, select_forward(torch.tensor([0, 4])), y[[0, 2]], R[[0, 2]], cfg, localization=_loc(6, 2)
    )
    torch.testing.assert_close(out.ensemble, ref.ensemble)


def test_gross_error_and_zero_spread_are_rejected_and_counted() -> None:
    E = _ensemble()
    E[:, 5] = 3.0  # a column without spread
    y = torch.tensor([2.0, 50.0, 3.1], dtype=torch.float64)
    R = torch.full((3,), 0.25, dtype=torch.float64)
    out = analyse(
        E,
        select_forward(torch.tensor([0, 1, 5])),
        y,
        R,
        FilterConfig(qc=QualityControl(gross_error_k=3.0)),
    )
    assert out.reason.tolist() == [0, int(Reject.GROSS_ERROR), int(Reject.ZERO_SPREAD)]
    assert out.diagnostics.rejected == {"nonfinite_forward": 0, "zero_spread": 1, "gross_error": 1}
    # with the check disabled the outlier is used
    loose = analyse(
        E,
        select_forward(torch.tensor([0, 1])),
        y[:2],
        R[:2],
        FilterConfig(qc=QualityControl(gross_error_k=math.inf)),
    )
    assert loose.diagnostics.n_used == 2


def test_all_rejected_leaves_the_ensemble_unchanged() -> None:
    E = _ensemble()
    out = analyse(
        E,
        lambda X: torch.full((X.shape[0], 1), math.inf),
        torch.tensor([1.0]),
        torch.tensor([1.0]),
        FilterConfig(),
    )
    assert torch.equal(out.ensemble, E)
    assert math.isnan(out.diagnostics.innovation_mean)
    assert out.diagnostics.to_dict()["innovation_mean"] is None


@pytest.mark.parametrize(
    ("y", "R", "field", "rule"),
    [
        ([1.0, math.nan], [1.0, 1.0], "y", "finite"),
        ([1.0, 2.0], [1.0, 0.0], "R", "positive_finite"),
        ([1.0, 2.0], [1.0, math.inf], "R", "positive_finite"),
        ([1.0, 2.0], [1.0], "R", "shape"),
    ],
)
def test_malformed_observations_are_named(y: list, R: list, field: str, rule: str) -> None:
    E = _ensemble()
    with pytest.raises(InvalidArgument) as err:
        analyse(
            E,
            select_forward(torch.tensor([0, 1])),
            torch.tensor(y, dtype=torch.float64),
            torch.tensor(R, dtype=torch.float64),
            FilterConfig(),
        )
    assert (err.value.field, err.value.rule) == (field, rule)


def test_bad_ensemble_and_forward_shapes_are_named() -> None:
    E = _ensemble()
    y, R = torch.tensor([1.0]), torch.tensor([1.0])
    bad = E.clone()
    bad[0, 0] = math.nan
    with pytest.raises(InvalidArgument) as err:
        analyse(bad, select_forward(torch.tensor([0])), y, R, FilterConfig())
    assert (err.value.field, err.value.rule) == ("ensemble", "finite")
    with pytest.raises(InvalidArgument) as err:
        analyse(E, select_forward(torch.tensor([0, 1])), y, R, FilterConfig())
    assert (err.value.field, err.value.rule) == ("forward", "shape")
    with pytest.raises(InvalidArgument) as err:
        analyse(E, select_forward(torch.tensor([0])), y, R, FilterConfig(kind=FilterKind.LETKF))
    assert (err.value.field, err.value.rule) == ("localization", "required")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: InflationConfig(kind=InflationKind.FIXED, factor=0.9), "inflation.factor"),
        (lambda: InflationConfig(sd=0.0), "inflation.sd"),
        (lambda: InflationConfig(damping=1.5), "inflation.damping"),
        (lambda: InflationConfig(initial=0.5), "inflation.initial"),
        (lambda: QualityControl(gross_error_k=-1.0), "qc.gross_error_k"),
        (lambda: FilterConfig(kind="eakf"), "filter.kind"),  # type: ignore[arg-type]
        (lambda: FilterConfig(seed=-1), "filter.seed"),
    ],
)
def test_config_validation(make: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        make()
    assert err.value.field == field


@pytest.mark.parametrize("kind", KINDS)
def test_analysis_is_pure_and_bounded(kind: FilterKind) -> None:
    E = _ensemble()
    keep = E.clone()
    y = torch.tensor([-5.0, 2.0], dtype=torch.float64)  # pulls column 0 below its bound
    R = torch.full((2,), 0.01, dtype=torch.float64)
    lo = torch.full((6,), 0.0, dtype=torch.float64)
    bounds = Bounds(lo, torch.full((6,), math.inf, dtype=torch.float64))
    cfg = FilterConfig(
        kind=kind,
        qc=QualityControl(gross_error_k=math.inf),
        inflation=InflationConfig(kind=InflationKind.FIXED, factor=1.1),
    )
    out = analyse(
        E,
        select_forward(torch.tensor([0, 3])),
        y,
        R,
        cfg,
        bounds=bounds,
        localization=_loc(6, 2),
        truth=torch.full((6,), 2.0, dtype=torch.float64),
    )
    assert torch.equal(E, keep)
    assert (out.ensemble >= 0).all()
    assert out.diagnostics.n_clipped > 0
    assert out.diagnostics.prior_spread > out.diagnostics.posterior_spread
    assert out.diagnostics.rmse_prior is not None and out.diagnostics.rmse_posterior is not None
    torch.testing.assert_close(out.inflation, torch.full((6,), 1.1**2, dtype=torch.float64))


def test_bounds_validation() -> None:
    with pytest.raises(InvalidArgument) as err:
        Bounds(torch.tensor([1.0]), torch.tensor([0.0]))
    assert err.value.rule == "ordered"


def test_parameter_estimation_by_state_augmentation() -> None:
    """A slope parameter is recovered from observations of the state it controls, within its
    bounds: x = θ · u with known forcing u; θ_true = 2.5, prior θ ~ U(0.5, 4)."""
    g = torch.Generator().manual_seed(5)
    n, cells = 40, 8
    layout = StateLayout(
        (Block("x", cells, lo=0.0, site=tuple(range(cells))), Block("theta", 1, lo=0.5, hi=4.0))
    )
    theta = 0.5 + 3.5 * torch.rand(n, 1, dtype=torch.float64, generator=g)
    truth_theta = 2.5
    errors = [abs(float(theta.mean()) - truth_theta)]
    for _ in range(15):
        u = 1.0 + torch.rand(cells, dtype=torch.float64, generator=g)
        x = theta * u  # model forecast per member
        E = layout.pack({"x": x, "theta": theta})
        y = truth_theta * u + 0.1 * torch.randn(cells, dtype=torch.float64, generator=g)
        out = analyse(
            E,
            select_forward(torch.arange(cells)),
            y,
            torch.full((cells,), 0.01, dtype=torch.float64),
            FilterConfig(qc=QualityControl(gross_error_k=math.inf)),
            bounds=layout.bounds(),
        )
        theta = layout.unpack(out.ensemble)["theta"]
        errors.append(abs(float(theta.mean()) - truth_theta))
    assert errors[-1] < 0.05 < errors[0]
    assert float(theta.std()) < 0.1  # the ensemble collapsed onto the right value
    assert ((theta >= 0.5) & (theta <= 4.0)).all()
    assert layout.sites().tolist() == [*range(cells), -1]


def test_layout_rejects_wrong_shapes() -> None:
    layout = StateLayout((Block("a", 2), Block("b", 3)))
    with pytest.raises(InvalidArgument) as err:
        layout.pack({"a": torch.zeros(4, 2), "b": torch.zeros(4, 2)})
    assert (err.value.field, err.value.rule) == ("b", "shape")
    with pytest.raises(InvalidArgument) as err:
        layout.pack({"a": torch.zeros(4, 2)})
    assert (err.value.field, err.value.rule) == ("b", "missing")
    with pytest.raises(InvalidArgument):
        StateLayout((Block("a", 2), Block("a", 3)))


def test_linear_forward() -> None:
    H = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    E = _ensemble()
    torch.testing.assert_close(linear_forward(H)(E)[:, 0], E[:, 0] + E[:, 1])


def test_letkf_sharing_local_analyses_per_site_changes_nothing() -> None:
    import numpy as np

    from coupler.assimilation.etkf import letkf

    rng = np.random.default_rng(3)
    s_lat, s_lon = rng.uniform(40, 50, 30), rng.uniform(0, 10, 30)
    o_lat, o_lon = rng.uniform(40, 50, 12), rng.uniform(0, 10, 12)
    sites = np.concatenate([np.arange(30), np.arange(30), [-1]])  # 2 variables per cell + 1
    loc = Localization.sphere(s_lat, s_lon, sites, o_lat, o_lon, 200.0)
    g = torch.Generator().manual_seed(0)
    E = torch.randn(10, 61, dtype=torch.float64, generator=g)
    HE = E[:, :12] + 0.1 * torch.randn(10, 12, dtype=torch.float64, generator=g)
    y = torch.randn(12, dtype=torch.float64, generator=g)
    R = torch.full((12,), 0.5, dtype=torch.float64)
    used = torch.ones(12, dtype=torch.bool)
    shared = letkf(E, HE, y, R, used, loc)
    own = letkf(E, HE, y, R, used, loc, column_site=torch.arange(61))
    torch.testing.assert_close(shared, own)
    assert not torch.allclose(shared, E)
