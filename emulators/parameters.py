"""Land-cover parameter sets as tensors: defaults, bounds, range checks, perturbed draws.

The classes and the 12 MdPL parameters themselves are plain data in :mod:`emulators.landcover`
(importable without torch); they are re-exported here, so ``from emulators import parameters as
P`` gives both.
"""

from __future__ import annotations

import torch

from emulators.landcover import (
    DEFAULTS,
    N_CLASSES,
    N_PARAMETERS,
    PARAMETER_NAMES,
    PARAMETERS,
    VEGETATED,
    LandCover,
    ParameterRangeError,
    ParameterSpec,
)

__all__ = [
    "DEFAULTS",
    "N_CLASSES",
    "N_PARAMETERS",
    "PARAMETERS",
    "PARAMETER_NAMES",
    "VEGETATED",
    "LandCover",
    "ParameterRangeError",
    "ParameterSpec",
    "bounds",
    "check_parameters",
    "default_table",
    "sample_parameters",
]


def default_table(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(class, parameter) tensor of defaults."""
    return torch.tensor([DEFAULTS[lc] for lc in LandCover], dtype=dtype)


def bounds(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) tensors of shape (parameter,)."""
    low = torch.tensor([p.low for p in PARAMETERS], dtype=dtype)
    high = torch.tensor([p.high for p in PARAMETERS], dtype=dtype)
    return low, high


def check_parameters(params: torch.Tensor) -> None:
    """Raise :class:`ParameterRangeError` naming the first parameter outside its range.

    ``params`` has the parameter axis last (any leading shape).
    """
    if params.shape[-1] != N_PARAMETERS:
        raise ParameterRangeError(
            "params", f"parameter axis has length {params.shape[-1]}, expected {N_PARAMETERS}"
        )
    for i, spec in enumerate(PARAMETERS):
        col = params[..., i]
        if not torch.isfinite(col).all():
            raise ParameterRangeError(spec.name, f"{spec.name}: non-finite value")
        lo, hi = float(col.min()), float(col.max())
        if lo < spec.low or hi > spec.high:
            raise ParameterRangeError(
                spec.name,
                f"{spec.name} ({spec.long_name}): values span [{lo:.4g}, {hi:.4g}] {spec.units}, "
                f"outside the range [{spec.low:g}, {spec.high:g}]",
            )


def sample_parameters(
    n: int,
    generator: torch.Generator,
    spread: float = 1.0,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Perturbed parameter sets (MdPL recipe): uniform in the published range, or, with
    ``base`` (n, 12) given, ``base`` perturbed by ±``spread``·half-range and clipped to range."""
    low, high = bounds()
    u = torch.rand(n, N_PARAMETERS, generator=generator, dtype=torch.float64)
    if base is None:
        return low + (high - low) * u
    return torch.clamp(base + spread * (high - low) * (u - 0.5), low, high)
