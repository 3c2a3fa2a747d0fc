"""``phases.PhaseTimes``: each part's wall time counts for its own name only, so a part inside
another (joining the network's per-call outputs, "scatter", inside "network") is not counted
twice. Time comes from a fake clock: no timing asserts."""

from __future__ import annotations

import pytest

from emulators.compiled import phases


def test_nested_parts_count_for_their_own_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(phases.time, "perf_counter", lambda: now[0])
    timer = phases.PhaseTimes()

    def spend(seconds: float) -> None:
        now[0] += seconds

    with timer("network"):
        spend(3.0)
        with timer("scatter"):
            spend(0.5)
            with timer("gather"):
                spend(0.25)
        spend(1.0)
    with timer("scatter"):
        spend(2.0)
    assert timer.seconds == {"network": 4.0, "scatter": 2.5, "gather": 0.25}
    assert sum(timer.seconds.values()) == now[0]  # every second counted once
    timer.reset()
    assert timer.seconds == {}
