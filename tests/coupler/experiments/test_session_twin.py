"""The LAI twin through sessions (short): a free and an assimilating torchscript session with
the same seed reply identically until the first LAI composite is assimilated, then differ; the
full run's numbers are in docs/assimilation.md."""

from __future__ import annotations

import math

from coupler.experiments.session_twin import run_session_twin


def test_short_session_twin() -> None:
    r = run_session_twin("torchscript", members=4, cells=2, days=17, spinup_days=8)
    assert r["lai_observations"] == 2 * 2  # composites after days 8 and 16, at both cells
    # days 0-7 identical (same members, forcing noise and parameters); the composite sent
    # after day 8 (index 7) is analysed at the first step of day index 8
    assert r["first_analysed_day"] == 8
    for key in ("lai_rmsd_free", "lai_rmsd_analysis", "lai_rmsd_ratio"):
        assert math.isfinite(r[key]) and r[key] > 0.0, key
