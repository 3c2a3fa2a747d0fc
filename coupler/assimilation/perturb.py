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
from dataclasses import dataclass, field

import torch

from coupler.errors import InvalidArgument
from emulators import parameters as P
from emulators import variables as V

#: variable -> True for multiplicative (lognormal), False for additive perturbations
KIND = {"pr": True, "rsds": True, "tas": False, "huss": False}


@dataclass(frozen=True)
class ForcingPerturbation:
    """Standard deviations of the perturbations: ``pr`` and ``rsds`` of the log of their
    multiplicative factors (1), ``tas`` in K, ``huss`` in kg kg-1; ``tau_hours`` the AR(1)
    e-folding time (h). Zero switches a variable off."""

    pr: float = 0.5
    rsds: float = 0.15
    tas: float = 1.0
    huss: float = 5e-4
    tau_hours: float = 24.0

    def __post_init__(self) -> None:
        for name in (*KIND, "tau_hours"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise InvalidArgument(
                    f"perturbation.{name}: must be a finite number >= 0, got {v!r}",
                    field=f"perturbation.{name}",
                    rule="non_negative",
                )
        if self.tau_hours <= 0:
            raise InvalidArgument(
                "perturbation.tau_hours: must be > 0",
                field="perturbation.tau_hours",
                rule="positive",
            )

    def sigma(self, name: str) -> float:
        return float(getattr(self, name))


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


@dataclass(frozen=True)
class ParameterPrior:
    """A parameter to perturb (and possibly estimate): uniform in [low, high] (log-uniform with
    ``log``), inside the published range of ``name`` (``emulators.parameters``)."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.name not in P.PARAMETER_NAMES:
            raise InvalidArgument(
                f"parameters: unknown parameter {self.name!r}", field="parameters", rule="known"
            )
        spec = P.PARAMETERS[P.PARAMETER_NAMES.index(self.name)]
        if not spec.low <= self.low < self.high <= spec.high:
            raise InvalidArgument(
                f"parameters: {self.name} prior [{self.low}, {self.high}] must be an increasing "
                f"interval inside [{spec.low}, {spec.high}]",
                field="parameters",
                rule="within_range",
            )
        if self.log and self.low <= 0:
            raise InvalidArgument(
                f"parameters: {self.name} log prior needs low > 0", field="parameters", rule="log"
            )

    @property
    def index(self) -> int:
        return P.PARAMETER_NAMES.index(self.name)


@dataclass(frozen=True)
class ParameterPerturbation:
    priors: tuple[ParameterPrior, ...] = field(default_factory=tuple)


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
