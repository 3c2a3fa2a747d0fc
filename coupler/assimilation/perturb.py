"""Ensemble generation: perturbed forcing and perturbed parameters, seeded.

Forcing (as in land data assimilation systems, Reichle et al. 2007, JGR 112:D09108; Kumar et al.
2008, LIS): every member and cell carries, per perturbed variable, a standard-normal AR(1) series
``ε_t = φ ε_{t-1} + sqrt(1-φ²) η_t`` with ``φ = exp(-dt/τ)``. Precipitation and shortwave are
multiplied by the mean-one lognormal factor ``exp(σ ε - σ²/2)``; air temperature and specific
humidity get ``σ ε`` added. Results are clipped into the variable registry's valid range (and
specific humidity to >= 1e-6 kg kg-1). Cross-correlations between variables are not modelled.

Parameters: chosen MdPL parameters are drawn independently per member, cell and class, uniform
(or log-uniform) within a given sub-range of their published range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from coupler.assimilation.settings import KIND, ForcingPerturbation, ParameterPerturbation
from emulators import variables as V


def forcing_noise(
    previous: Mapping[str, torch.Tensor] | None,
    shape: tuple[int, int],
    dt: float,
    cfg: ForcingPerturbation,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Next standard-normal AR(1) state (member, cell) per perturbed variable; ``previous``
    None starts from the stationary distribution."""
    phi = math.exp(-dt / (cfg.tau_hours * 3600.0))
    out = {}
    for name in KIND:
        if cfg.sigma(name) == 0.0:
            continue
        eta = torch.randn(shape, dtype=torch.float64, generator=generator)
        if previous is None or name not in previous:
            out[name] = eta
        else:
            out[name] = phi * previous[name] + math.sqrt(1.0 - phi * phi) * eta
    return out


def perturb_forcing(
    forcing: Mapping[str, torch.Tensor], noise: Mapping[str, torch.Tensor], cfg: ForcingPerturbation
) -> dict[str, torch.Tensor]:
    """Perturbed copy of ``forcing`` (member, cell) tensors (broadcast views are fine)."""
    out = dict(forcing)
    for name, eps in noise.items():
        if name not in forcing:
            continue
        s = cfg.sigma(name)
        base = forcing[name].expand_as(eps)
        var = V.REGISTRY[name]
        if KIND[name]:
            value = base * torch.exp(s * eps - 0.5 * s * s)
        else:
            value = base + s * eps
        lo = 1e-6 if name == "huss" else var.valid_min
        out[name] = value.clamp(lo, var.valid_max)
    return out


def perturb_parameters(
    params: torch.Tensor, cfg: ParameterPerturbation, generator: torch.Generator
) -> torch.Tensor:
    """Copy of ``params`` (member, cell, class, 12) with each prior's parameter drawn
    independently per member, cell and class."""
    out = params.clone()
    shape = params.shape[:-1]
    for prior in cfg.priors:
        u = torch.rand(shape, dtype=torch.float64, generator=generator)
        if prior.log:
            lo, hi = math.log(prior.low), math.log(prior.high)
            out[..., prior.index] = torch.exp(lo + (hi - lo) * u).clamp(prior.low, prior.high)
        else:
            out[..., prior.index] = prior.low + (prior.high - prior.low) * u
    return out


def perturb_leaf_carbon(cleaf: torch.Tensor, sd: float, generator: torch.Generator) -> torch.Tensor:
    """Model-error perturbation of leaf carbon (member, cell, tile): multiplied by a mean-one
    lognormal factor ``exp(sd ε - sd²/2)``, ε ~ N(0, 1) per member and cell (tiles of a cell
    move together). A stochastic representation of phenology error, applied once a day, as
    the state perturbations of land data assimilation systems (Reichle et al. 2007; Kumar et
    al. 2008)."""
    eps = torch.randn(cleaf.shape[:2], dtype=torch.float64, generator=generator)
    return cleaf * torch.exp(sd * eps - 0.5 * sd * sd).unsqueeze(-1)
