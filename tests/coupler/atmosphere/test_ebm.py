"""The global two-layer model and the column model's calibration (ECS, control balance)."""

from __future__ import annotations

import numpy as np
import pytest

from coupler.atmosphere import calibrate, ebm
from coupler.atmosphere.column import ColumnConfig
from coupler.atmosphere.grid import regular
from coupler.atmosphere.scenario import F2X_AR6


def test_two_layer_equilibrium_and_transient() -> None:
    m = ebm.TwoLayer(lam=1.31)
    t, d = m.run(np.full(3000, F2X_AR6))
    assert t[-1] == pytest.approx(m.ecs(F2X_AR6), rel=1e-3)  # equilibrium F / λ
    assert d[-1] == pytest.approx(t[-1], rel=2e-3)
    tcr = m.tcr(F2X_AR6)
    assert 1.4 < tcr < m.ecs(F2X_AR6)  # transient below equilibrium (deep ocean uptake)
    t_end, d_end = m.state_at_end(np.full(50, 2.0))
    t50, _d50 = m.run(np.full(50, 2.0))
    assert t_end == pytest.approx(t50[-1], abs=0.05) and d_end > 0
    with pytest.raises(ValueError, match="lam: must be > 0"):
        ebm.TwoLayer(lam=0.0)


def test_column_model_sensitivity_is_calibrated_to_about_3_K() -> None:
    """B of the Budyko OLR was chosen so the column model's ECS is ~3 K (AR6 best estimate):
    3.0 K after 35 years (docs/atmosphere.md). Here a 10° grid, mixed-layer-only ocean and 15
    years of 2×CO2, ~93 % equilibrated (2.79 K measured), still warming slowly."""
    out = calibrate.sensitivity(regular(10.0), ColumnConfig(), years=15, average=3)
    assert 2.6 < out["ecs"] < 3.3
    assert 0.0 < out["drift_last_years"] < 0.15
    assert abs(out["control_toa"]) < 2.5  # A balances the control climate
