"""The pure pieces of a coupled step (``coupler.core.landstep``) that a busy server runs in
numpy rather than as torch ops: the forcing tensors (views of the checked arrays) and the
closure residuals (the same value as the torch expressions they replace, NaN included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coupler.core import landstep


def _torch_energy(o: dict[str, torch.Tensor]) -> float:
    return float((o["rns"] - o["hfls"] - o["hfss"] - o["hfdsl"]).abs().max())


def _torch_water(before: torch.Tensor, o: dict[str, torch.Tensor], pr: torch.Tensor) -> float:
    return float(((o["mrso"] - before) - (pr - o["evspsbl"] - o["mrro"]) * 3600.0).abs().max())


def _outputs(dtype: torch.dtype, members: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    names = ("rns", "hfls", "hfss", "hfdsl", "mrso", "evspsbl", "mrro")
    scale = {"rns": 400.0, "hfls": 200.0, "hfss": 150.0, "hfdsl": 50.0, "mrso": 300.0,
             "evspsbl": 1e-4, "mrro": 1e-5}  # fmt: skip
    return {k: scale[k] * torch.rand(members, 64, generator=g, dtype=dtype) for k in names}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("members", [1, 3])
def test_the_residuals_are_the_torch_expressions_value(dtype: torch.dtype, members: int) -> None:
    for seed in range(5):
        out = _outputs(dtype, members, seed)
        before = out["mrso"] * 0.999
        pr = torch.rand(64, dtype=dtype).expand(members, 64) * 1e-4
        energy = landstep.energy_residual(out)
        water = landstep.water_residual(before, out, pr, 3600.0)
        assert energy == _torch_energy(out) and water == _torch_water(before, out, pr)
        assert energy > 0.0 and water > 0.0


def test_a_nan_term_gives_a_nan_residual_and_missing_terms_nan() -> None:
    out = _outputs(torch.float64, 1, 0)
    out["hfss"][0, 17] = math.nan
    assert math.isnan(landstep.energy_residual(out))
    out["evspsbl"][0, 3] = math.nan
    pr = torch.zeros(1, 64, dtype=torch.float64)
    assert math.isnan(landstep.water_residual(out["mrso"], out, pr, 3600.0))
    del out["rns"]
    assert math.isnan(landstep.energy_residual(out))
    assert math.isnan(landstep.water_residual(None, out, pr, 3600.0))


def test_tensors_numpy_cannot_view_take_the_torch_path() -> None:
    out16 = {k: v.to(torch.bfloat16) for k, v in _outputs(torch.float64, 2, 1).items()}
    assert landstep.energy_residual(out16) == _torch_energy(out16)
    assert landstep.energy_residual(out16) != _torch_energy(_outputs(torch.float64, 2, 1))


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
