"""The forcing tensors of a coupled step (``coupler.core.landstep.forcing_tensors``): (member,
cell) views of the checked arrays, made without dispatched torch ops for one member."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coupler.core import landstep


@pytest.mark.parametrize("members", [1, 4])
def test_forcing_tensors_are_member_views_of_the_checked_arrays(members: int) -> None:
    fields = {"tas": np.linspace(280.0, 300.0, 64), "pr": np.full(64, 1e-5)}
    tensors = landstep.forcing_tensors(fields, members)
    for name, values in fields.items():
        t = tensors[name]
        assert t.shape == (members, 64) and t.dtype == torch.float64
        assert t.stride()[1] == 1 and (members == 1 or t.stride()[0] == 0)
        assert all(np.array_equal(t[m].numpy(), values) for m in range(members))
        values[5] = 1.0  # shares the array's memory (no copy)
        assert float(t[members - 1, 5]) == 1.0
