"""The step's checks read float32 fields as sent and convert once: same precise refusals as on
float64, a new writable float64 array back, the input never written or kept."""

from __future__ import annotations

import numpy as np
import pytest

from coupler.core import validation
from coupler.errors import InvalidArgument

N = 1000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("bad", "rule", "message"),
    [
        (np.nan, "finite", "2 non-finite value(s)"),
        (np.inf, "finite", "2 non-finite value(s)"),
        (-np.inf, "finite", "2 non-finite value(s)"),
        (500.0, "valid_range", "values span [290, 500] K"),
    ],
)
def test_refusals_name_the_field_rule_and_count(
    dtype: type, bad: float, rule: str, message: str
) -> None:
    values = np.full(N, 290.0, dtype=dtype)
    values[[3, N - 1]] = bad
    values.flags.writeable = False
    with pytest.raises(InvalidArgument) as err:
        validation.check_field("tas", values, N, "K")
    assert err.value.field == "tas" and err.value.rule == rule
    assert message in str(err.value)


def test_a_float32_wire_view_is_converted_once_into_a_new_float64_array() -> None:
    wire = np.linspace(280.0, 300.0, N, dtype="<f4").tobytes()
    view = np.frombuffer(wire, dtype="<f4")  # what the wire decode hands over: read-only
    out = validation.check_field("tas", view, N, "K")
    assert out.dtype == np.float64 and out.flags.writeable and out.flags.c_contiguous
    assert not np.shares_memory(out, view)
    assert np.array_equal(out, view.astype(np.float64))
    assert validation.check_values("tas", view, N, "K") is view  # the checks copy nothing


def test_float64_input_is_copied_so_the_caller_keeps_its_array() -> None:
    mine = np.full(N, 290.0)
    out = validation.check_field("tas", mine, N, "K")
    out[0] = 0.0
    assert mine[0] == 290.0 and mine.flags.writeable
