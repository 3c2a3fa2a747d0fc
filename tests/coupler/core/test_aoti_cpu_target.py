"""A server on a CPU that cannot run the shipped AOTInductor packages keeps running: the ``aoti``
backend reports itself unavailable (``emulators.cpu_target``)."""

from __future__ import annotations

import pytest

from coupler.core import registry
from coupler.errors import FailedPrecondition
from emulators import cpu_target


def test_the_aoti_backend_reports_itself_unavailable_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a CPU without the packages' ISA (simulated: no vector ISA at all) the ``aoti`` backend
    is not built: a FailedPrecondition naming the package and the ISA, and the server lives."""
    monkeypatch.setattr(cpu_target, "supported_isa", lambda: frozenset())
    with pytest.raises(FailedPrecondition) as err:
        registry.create("aoti")
    assert err.value.field == "backend" and err.value.rule == "available"
    assert ".pt2" in str(err.value) and "lacks AVX2" in str(err.value)
