"""The emulator backends' water tile is the reference model's own physics (``open_water``): from
the same state, a pure water cell and the water tile of a mixed cell follow the reference
exactly (state bitwise, fluxes to round-off), hourly and daily; without it they do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emulators import forcing as sources
from emulators import landstep
from emulators import parameters as P
from emulators.compiled import open_water
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.protocol import LandStatic, StepClock
from emulators.reference import ReferenceBackend
from emulators.variables import REQUIRED_FORCING

WATER = int(P.LandCover.WATER_ICE)


def _static() -> LandStatic:
    """Three cells at Greensboro: pure water, half grass half water, pure deciduous forest."""
    n = 3
    lat = torch.full((n,), 36.1, dtype=torch.float64)
    lon = torch.full((n,), -79.95, dtype=torch.float64)
    cover = torch.zeros(n, P.N_CLASSES, dtype=torch.float64)
    cover[0, WATER] = 1.0
    cover[1, int(P.LandCover.GRASSLAND)] = cover[1, WATER] = 0.5
    cover[2, int(P.LandCover.DECIDUOUS_FOREST_WOODLAND)] = 1.0
    return LandStatic.from_cover(lat, lon, cover)


def _run(emulator: EmulatorBackend, dt: float, steps: int) -> dict[str, float]:
    """Largest |reference − emulator| of the water tile's state and the pure water cell's
    fluxes over ``steps`` steps of real June weather, both backends from the same state."""
    ds = sources.load("tmy3-greensboro", timestep=int(dt))
    first = 150 * int(86_400 // dt) if dt < 86_400 else 150
    ds = ds.isel(time=slice(first, first + steps))
    static = _static()
    forcing = {
        k: torch.as_tensor(ds[k].values[:, 0], dtype=torch.float64) for k in REQUIRED_FORCING
    }
    clock = StepClock(0, ds["time"].values[0].astype("datetime64[s]"), dt)
    ref = ReferenceBackend()
    r_state, e_state = ref.initial_state(static, clock), emulator.initial_state(static, clock)
    for key in ("w", "ts", "tsoil", "cleaf"):
        e_state.tensors[key] = r_state.tensors[key].clone()
    worst: dict[str, float] = {}
    for i in range(steps):
        f = {k: v[i].expand(1, 3) for k, v in forcing.items()}
        r_state, r_out = ref.step(r_state, static, f, clock)
        e_state, e_out = emulator.step(e_state, static, f, clock)
        for k in ("hfls", "hfss", "ts", "hfdsl"):
            d = float((r_out[k][0, 0] - e_out[k][0, 0]).abs())
            worst[k] = max(worst.get(k, 0.0), d)
        for k in ("w", "ts", "tsoil"):
            d = float(
                (r_state.tensors[k][0, :2, WATER] - e_state.tensors[k][0, :2, WATER]).abs().max()
            )
            worst[f"state {k}"] = max(worst.get(f"state {k}", 0.0), d)
        clock = clock.advance()
    return worst


@pytest.mark.parametrize(("dt", "steps"), [(3600.0, 48), (86_400.0, 8)])
def test_the_water_tile_follows_the_reference_exactly(dt: float, steps: int) -> None:
    worst = _run(EmulatorBackend(EmulatorConfig(device="cpu")), dt, steps)
    for k in ("state w", "state ts", "state tsoil"):
        assert worst[k] == 0.0, (k, worst[k])
    for k in ("hfls", "hfss", "hfdsl"):  # LE is λE with E = (LE*/λ): round-off only
        assert worst[k] <= 1e-10, (k, worst[k])
    assert worst["ts"] == 0.0


def test_without_open_water_the_network_predicts_the_water_tile() -> None:
    worst = _run(EmulatorBackend(EmulatorConfig(device="cpu", open_water=False)), 3600.0, 48)
    assert worst["hfls"] > 1.0 and worst["state ts"] > 0.01  # W m-2, K: the network's own error


def test_replace_takes_only_the_given_rows() -> None:
    n = 5
    fluxes = landstep.Fluxes(*(torch.arange(n, dtype=torch.float64) + 10 * k for k in range(5)))
    exact = landstep.Fluxes(*(torch.full((2,), -1.0 - k, dtype=torch.float64) for k in range(5)))
    index = torch.tensor([1, 3])
    out = open_water.replace(fluxes, index, exact)
    for k, name in enumerate(("ts", "hfss", "evap_demand", "tran_share", "gpp")):
        want = np.arange(n, dtype=np.float64) + 10 * k
        want[[1, 3]] = -1.0 - k
        np.testing.assert_array_equal(getattr(out, name).numpy(), want)
    assert open_water.rows(torch.tensor([7, 0, 7, 3])).tolist() == [0, 2]
