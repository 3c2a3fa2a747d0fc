from __future__ import annotations

import numpy as np
import torch

from emulators import parameters as P
from emulators.protocol import LandStatic


def random_static(n: int, seed: int, members: int = 1) -> LandStatic:
    """Random cells: random cover over all 8 classes and parameters uniform in their ranges."""
    g = torch.Generator().manual_seed(seed)
    lat = torch.rand(n, generator=g, dtype=torch.float64) * 150 - 75
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    cover = torch.rand(n, P.N_CLASSES, generator=g, dtype=torch.float64) ** 3
    cover /= cover.sum(-1, keepdim=True)
    params = P.sample_parameters(members * n * P.N_CLASSES, g).reshape(
        members, n, P.N_CLASSES, P.N_PARAMETERS
    )
    return LandStatic(lat, lon, cover, params)


def random_forcing(n: int, g: torch.Generator, members: int = 1) -> dict[str, torch.Tensor]:
    """Physically valid random forcing: humidity below saturation, rain intermittent."""
    from emulators.physics import saturation_specific_humidity

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(members, n, generator=g, dtype=torch.float64)

    tas = u(235.0, 318.0)
    ps = u(60_000.0, 105_000.0)
    qs, _ = saturation_specific_humidity(tas, ps)
    rain = (torch.rand(members, n, generator=g, dtype=torch.float64) < 0.15).double()
    return {
        "tas": tas,
        "huss": (qs * u(0.05, 1.0)).clamp(max=0.05),
        "ps": ps,
        "sfcWind": u(0.0, 20.0),
        "pr": rain * u(0.0, 0.01) ** 2 * 100.0,
        "rsds": u(0.0, 1.0) ** 2 * 1100.0,
        "rlds": u(150.0, 480.0),
    }


def clock_at(index: int = 0, dt: float = 3600.0):
    from emulators.protocol import StepClock

    return StepClock(index, np.datetime64("2001-01-01T00:00:00"), dt)
